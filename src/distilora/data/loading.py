"""Load train / validation / test splits into one clean, counted form.

Every row that cannot be used (empty text, missing or unknown label) is dropped *and counted*
per split; every file that cannot be used at all is a :class:`DataError` naming the file. A label written as a
missing value (``NA``, ``NaN``, ``null``, ``None``, …: :data:`MISSING_LABELS`) is a missing label in every format,
while the same words in the text column stay text (a tweet may say "NA").
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import datasets
import numpy as np
from sklearn.model_selection import train_test_split

from distilora.config import DataConfig
from distilora.data.cells import MISSING_LABELS
from distilora.data.multi_label import (
    MultiLabelError,
    check_train_labels,
    clean_multi_label_split,
    combination_ids,
    header_columns,
    label_columns_of,
    positives_per_label,
    split_warnings,
)

logger = logging.getLogger(__name__)

SPLIT_ALIASES = {
    "train": ("train",),
    "validation": ("validation", "valid", "val", "dev"),
    "test": ("test",),
}
FORMATS = {".csv": "csv", ".jsonl": "json", ".json": "json", ".parquet": "parquet"}


class DataError(ValueError):
    """The dataset cannot be used as given; the message says which file and what to fix."""


@dataclass
class TaskData:
    """Clean splits with columns ``text`` (str) and ``label`` (int id; multi-label: a 0/1 list, one per label), plus
    what was dropped."""

    splits: datasets.DatasetDict
    labels: list[str]
    report: dict[str, dict[str, Any]] = field(default_factory=dict)
    multi_label: bool = False
    """Independent 0/1 labels (one column each in the files) rather than exclusive classes."""
    fingerprint: str = field(init=False)
    """Content hash of the labels and every kept row: same data, same hash (computed once, here)."""

    def __post_init__(self) -> None:
        digest = hashlib.sha256(json.dumps(self.labels).encode())
        for split in ("train", "validation", "test"):
            digest.update(split.encode())
            for text, label in zip(self.splits[split]["text"], self.splits[split]["label"], strict=True):
                digest.update(f"{label}\t{text}\n".encode())
        self.fingerprint = digest.hexdigest()

    def label_counts(self, split: str) -> list[int]:
        """How many kept rows of ``split`` each class has (multi-label: each label is on in)."""
        if self.multi_label:
            return [int(count) for count in positives_per_label(self.splits[split], len(self.labels))]
        counts = [0] * len(self.labels)
        for label in self.splits[split]["label"]:
            counts[label] += 1
        return counts


def load_task_data(config: DataConfig, seed: int = 42) -> TaskData:
    """Read, validate and clean the dataset named by ``config.dataset``."""
    raw, names, source, label_columns = _read_raw_splits(config)
    if "train" not in raw:
        raise DataError(f"{source}: no train split found (expected a file named train.csv/.jsonl/.parquet)")
    if "test" not in raw:
        raise DataError(
            f"{source}: no test split found. distilora evaluates every model on held-out test data: "
            "add test.csv (or .jsonl / .parquet) beside train."
        )
    if label_columns is None:
        labels, splits, report = _single_label_splits(raw, names, config, source)
    else:
        labels, splits, report = _multi_label_splits(raw, label_columns, source)

    if "validation" not in splits:
        splits["train"], splits["validation"] = _stratified_split(splits["train"], config.validation_fraction, seed)
        report["validation"] = {"rows": len(splits["validation"]), "dropped": 0,
                                "note": f"seeded stratified {config.validation_fraction:.0%} of train"}
        report["train"]["rows"] = len(splits["train"])
        logger.info("No validation split: held out a stratified %.0f%% of train", 100 * config.validation_fraction)

    _subsample(splits, report, "train", config.max_train_samples, seed)
    for split in ("validation", "test"):
        _subsample(splits, report, split, config.max_eval_samples, seed)

    for split in ("train", "validation", "test"):
        info = report[split]
        reasons = ", ".join(f"{k}={v}" for k, v in info.get("reasons", {}).items() if v)
        logger.info("%-10s %6d rows kept, %d dropped%s", split, info["rows"], info["dropped"],
                    f" ({reasons})" if reasons else "")
        warnings = _split_warnings(split, splits[split], labels, label_columns is not None)
        if warnings and split != "train":
            info["warnings"] = warnings
            logger.warning("%s", warnings[0])
    return TaskData(datasets.DatasetDict(splits), labels, report, multi_label=label_columns is not None)


def _single_label_splits(raw: dict, names: list[str] | None, config: DataConfig, source: str
                         ) -> tuple[list[str], dict[str, datasets.Dataset], dict[str, dict[str, Any]]]:
    missing = MISSING_LABELS - set(names or ())
    raw = {split: (texts, _normalised_labels(values, origin, missing), origin)
           for split, (texts, values, origin) in raw.items()}
    labels, to_id = _label_mapping(raw["train"], names, config)
    splits: dict[str, datasets.Dataset] = {}
    report: dict[str, dict[str, Any]] = {}
    for split, (texts, values, origin) in raw.items():
        splits[split], report[split] = _clean_split(texts, values, to_id, labels, origin, names is not None)
    if len(set(splits["train"]["label"])) < 2:
        raise DataError(f"{source}: the train split has fewer than 2 classes after cleaning; nothing to learn")
    return labels, splits, report


def _multi_label_splits(raw: dict, label_columns: list[str], source: str
                        ) -> tuple[list[str], dict[str, datasets.Dataset], dict[str, dict[str, Any]]]:
    splits: dict[str, datasets.Dataset] = {}
    report: dict[str, dict[str, Any]] = {}
    try:
        for split, (texts, rows, origin) in raw.items():
            splits[split], report[split] = clean_multi_label_split(
                texts, rows, label_columns, lambda row, origin=origin: _where(origin, row))
        check_train_labels(splits["train"], label_columns, source)
    except MultiLabelError as error:
        raise DataError(str(error)) from error
    logger.info("Multi-label task: %d labels (%s)", len(label_columns), ", ".join(label_columns))
    for split, table in splits.items():
        on = positives_per_label(table, len(label_columns))
        logger.info("%-10s positives per label: %s", split,
                    ", ".join(f"{label} {count}" for label, count in zip(label_columns, on, strict=True)))
    return list(label_columns), splits, report


def _split_warnings(split: str, table: datasets.Dataset, labels: list[str], multi_label: bool) -> list[str]:
    """A class (or label) the split never has: its F1 there is 0."""
    if multi_label:
        return split_warnings(split, table, labels)
    missing = [label for i, label in enumerate(labels) if i not in set(table["label"])]
    if not missing:
        return []
    return [f"the {split} split has no items of class {', '.join(map(repr, missing))}: that class's F1 is 0 there and "
            f"caps macro-F1 at {1 - len(missing) / len(labels):.2f}"]


def _read_raw_splits(config: DataConfig) -> tuple[dict[str, tuple[list, list, str]], list[str] | None, str,
                                                    list[str] | None]:
    """Return ``{split: (texts, labels, origin)}``, the class names if declared, a source name, and a multi-label
    dataset's label columns (None: single-label; its ``labels`` are then rows of those columns' cells)."""
    path = Path(config.dataset).expanduser()
    if path.exists():
        if not path.is_dir():
            raise DataError(f"{path}: --dataset must be a directory holding train/validation/test files")
        return _read_directory(path, config)
    if config.dataset.startswith((".", "/", "~")):
        raise DataError(f"{config.dataset}: no such directory")
    return _read_hub(config)


def _read_directory(path: Path, config: DataConfig) -> tuple[dict, list[str] | None, str, list[str] | None]:
    files = {}
    for split, aliases in SPLIT_ALIASES.items():
        found = [p for p in sorted(path.iterdir()) if p.stem in aliases and p.suffix in FORMATS]
        if len(found) > 1:
            raise DataError(f"{path}: several files for split {split!r}: {', '.join(p.name for p in found)}")
        if found:
            files[split] = found[0]
    names = _declared_names(path)
    label_columns = None
    if "train" in files:
        try:
            label_columns = label_columns_of(config, header_columns(files["train"]), names, str(files["train"]))
        except MultiLabelError as error:
            raise DataError(str(error)) from error
    raw = {split: _read_file(file, config, label_columns) for split, file in files.items()}
    return raw, names, str(path), label_columns


def _declared_names(path: Path) -> list[str] | None:
    """The class (or label) names of labels.txt, if the dataset has one."""
    names = None
    labels_file = path / "labels.txt"
    if labels_file.exists():
        text = labels_file.read_text(encoding="utf-8-sig")  # a byte-order mark is not part of the first name
        names = [line.strip() for line in text.splitlines() if line.strip()]
        if len(names) < 2:
            raise DataError(f"{labels_file}: needs at least 2 class names (one per line), found {len(names)}")
        if len(set(names)) != len(names):
            raise DataError(f"{labels_file}: class names must be unique")
    return names


def _read_file(file: Path, config: DataConfig, label_columns: list[str] | None = None) -> tuple[list, list, str]:
    # Text and label as strings: otherwise a column's type depends on its cells (a blank label among integers) and
    # on the chunk it is read in.
    table = read_table(file, string_columns=(config.text_column, *(label_columns or [config.label_column])))
    return _columns(table, config, str(file), label_columns)


def read_table(file: Path, string_columns: tuple[str, ...] = ()) -> datasets.Dataset:
    """A local CSV / JSON Lines / Parquet file as a table; :class:`DataError` naming the file if it cannot be read.

    CSV cells are kept exactly as written (pandas would turn the tweet "NA" into a missing value), and the
    ``string_columns`` of a CSV are read as text whatever they hold.
    """
    builder = FORMATS[file.suffix.lower()]
    kwargs = {"keep_default_na": False, "encoding_errors": "strict",
              "converters": {column: str for column in string_columns}} if builder == "csv" else {}
    # A local file reads in a moment: no "Generating train split" progress bars (a CLI error stays one line).
    bars_were_disabled = datasets.are_progress_bars_disabled()
    datasets.disable_progress_bars()
    try:
        return datasets.load_dataset(builder, data_files=str(file), split="train", **kwargs)
    except Exception as error:  # datasets wraps decoding errors in several exception types
        cause = error.__cause__ or error
        raise DataError(f"{file}: could not be read as {builder.upper()}: {type(cause).__name__}: {cause}") from error
    finally:
        if not bars_were_disabled:
            datasets.enable_progress_bars()


def _read_hub(config: DataConfig) -> tuple[dict, list[str] | None, str, list[str] | None]:
    try:
        loaded = datasets.load_dataset(config.dataset, config.dataset_config)
    except Exception as error:
        raise DataError(
            f"{config.dataset}: not a local directory, and loading it from the dataset hub failed "
            f"({type(error).__name__}: {error}). Pass a directory holding train/validation/test files."
        ) from error
    raw, names = {}, None
    label_columns = list(config.label_columns) or None
    for split, aliases in SPLIT_ALIASES.items():
        name = next((a for a in aliases if a in loaded), None)
        if name is not None:
            raw[split] = _columns(loaded[name], config, f"{config.dataset}[{name}]", label_columns)
            feature = loaded[name].features.get(config.label_column)
            if isinstance(feature, datasets.ClassLabel):
                names = list(feature.names)
    return raw, names, config.dataset, label_columns


def _columns(table: datasets.Dataset, config: DataConfig, origin: str,
             label_columns: list[str] | None = None) -> tuple[list, list, str]:
    """The texts and labels of a table; a multi-label table's labels are rows of its label columns' cells."""
    wanted = (config.text_column, *(label_columns or [config.label_column]))
    missing = [c for c in wanted if c not in table.column_names]
    if missing:
        raise DataError(
            f"{origin}: missing column(s) {missing}; found {table.column_names}. "
            "Use --text-column / --label-column to name yours (a multi-label dataset: --label-columns)."
        )
    if label_columns:
        return table[config.text_column], list(zip(*(table[c] for c in label_columns), strict=True)), origin
    return table[config.text_column], table[config.label_column], origin


NUMBER = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?")


def _where(origin: str, row: int) -> str:
    """How a user finds row ``row`` (0-based) of ``origin``: a CSV's line (after the header) or a row number."""
    return f"{origin}, line {row + 2}" if origin.endswith(".csv") else f"{origin}, row {row + 1}"


def _as_label_value(value: Any, origin: str, row: int, missing: frozenset[str] = MISSING_LABELS) -> int | str | None:
    """One raw label cell, normalised: None for missing (empty, NaN, or a spelling in ``missing``), int for a whole
    number (``1``, ``1.0``, `` 1 ``), else the stripped string. A number that is not whole is a :class:`DataError`
    naming the file and row."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    if isinstance(value, bool | int | np.integer):
        return int(value)
    text = str(value).strip()
    if not text or text in missing:
        return None
    if isinstance(value, float | np.floating) or NUMBER.fullmatch(text):
        number = float(text)
        if not number.is_integer():
            raise DataError(f"{_where(origin, row)}: label {text!r} is not a whole number; labels are class ids "
                            "(0, 1, …) or class names")
        return int(number)
    return text


def _normalised_labels(values: list, origin: str, missing: frozenset[str]) -> list[int | str | None]:
    return [_as_label_value(value, origin, row, missing) for row, value in enumerate(values)]


def _label_mapping(train: tuple[list, list, str], names: list[str] | None, config: DataConfig):
    """Class names and a function mapping a normalised label value to its id (or None if unknown)."""
    # Integer labels are class ids when the class names are declared (labels.txt or a hub ClassLabel).
    declared = names is not None
    if names is None:
        values = {v for v in train[1] if v is not None}
        if any(isinstance(v, str) for v in values):
            names = sorted(str(v) for v in values)
        else:
            names = [str(v) for v in sorted(values)]
        if len(names) < 2:
            raise DataError(f"{train[2]}: column {config.label_column!r} has fewer than 2 distinct labels")
    index = {name: i for i, name in enumerate(names)}
    ints_are_ids = names == [str(i) for i in range(len(names))] or declared

    def to_id(value: int | str) -> int | None:
        if isinstance(value, int) and ints_are_ids:
            return value if 0 <= value < len(names) else None
        return index.get(str(value))

    return names, to_id


def _clean_split(texts, values, to_id, labels, origin: str, declared: bool):
    """Keep the usable rows; count the dropped ones by reason. A label outside the classes is an error: dropping
    it would quietly evaluate on fewer (or no) items."""
    kept_text, kept_label = [], []
    reasons: Counter[str] = Counter()
    for row, (text, label) in enumerate(zip(texts, values, strict=True)):
        if text is None or not str(text).strip():
            reasons["empty_text"] += 1
            continue
        if label is None:
            reasons["missing_label"] += 1
            continue
        label_id = to_id(label)
        if label_id is None:
            source = "declared in labels.txt" if declared else "found in train"
            raise DataError(f"{_where(origin, row)}: label {label!r} is not one of the {len(labels)} classes "
                            f"{labels} {source}")
        kept_text.append(str(text))
        kept_label.append(label_id)
    table = datasets.Dataset.from_dict(
        {"text": kept_text, "label": kept_label},
        features=datasets.Features({"text": datasets.Value("string"), "label": datasets.Value("int64")}),
    )
    dropped = sum(reasons.values())
    return table, {"rows": len(table), "rows_read": len(texts), "dropped": dropped, "reasons": dict(reasons)}


def _stratified_split(train: datasets.Dataset, fraction: float, seed: int):
    labels = np.asarray(train["label"])
    if labels.ndim == 2:  # multi-label: stratified on the label combination
        labels = combination_ids(labels)
    counts = np.bincount(labels)
    classes, n_test = int((counts > 0).sum()), math.ceil(fraction * len(labels))
    # Stratify where scikit-learn can: every class twice, and room for every class on both sides.
    stratify = labels if counts[counts > 0].min() >= 2 and min(n_test, len(labels) - n_test) >= classes else None
    train_idx, val_idx = train_test_split(np.arange(len(train)), test_size=fraction, random_state=seed,
                                          stratify=stratify)
    return train.select(sorted(train_idx)), train.select(sorted(val_idx))


def _subsample(splits: dict, report: dict, split: str, limit: int | None, seed: int) -> None:
    if limit is None or len(splits[split]) <= limit:
        return
    rng = np.random.default_rng(seed)
    chosen = np.sort(rng.choice(len(splits[split]), size=limit, replace=False))
    report[split]["sampled_from"] = len(splits[split])
    splits[split] = splits[split].select(chosen)
    report[split]["rows"] = limit
