"""Read a behavioural test suite (CSV / JSON Lines / Parquet) and map its gold labels onto a run's labels.

Two layouts are understood: a plain table (``--text-column``, ``--label-column``, ``--group-columns``) and
HateCheck's published columns (``functionality``, ``test_case``, ``label_gold``, ``target_ident``, …), detected by
its column names. A multi-label run's suite has one 0/1 gold column per label instead of a label column, named as
the run's labels (as in its training data) or mapped onto them with ``--label-map column=label``. Every problem is a
``ValueError`` / ``FileNotFoundError`` raised before any model runs.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import datasets

from distilora.config import CheckConfig
from distilora.data.loading import FORMATS, DataError
from distilora.data.loading import read_table as read_table_file
from distilora.data.multi_label import flag

logger = logging.getLogger(__name__)

HATECHECK_COLUMNS = ("functionality", "test_case", "label_gold")
"""Columns that mark a file as HateCheck's format."""
HATECHECK_TEXT, HATECHECK_LABEL = "test_case", "label_gold"
HATECHECK_GROUPS = ("functionality", "target_ident")
IDENTITY_COLUMN = "target_ident"
"""The identity column the bias metrics use when ``--identity-column`` is not given (HateCheck's)."""
HATECHECK_POSITIVE, HATECHECK_NEGATIVE = "hateful", "non-hateful"
NO_GROUP = "(none)"
"""The group of a case whose grouping cell is empty."""
ALL = "all"
"""The one group when a suite has no grouping columns."""


@dataclass
class Suite:
    """The usable cases of a suite, with gold labels as run class ids, and what was dropped and how labels map."""

    file: Path
    format: str
    """``hatecheck`` or ``table``."""
    texts: list[str]
    gold: list[int] | list[list[int]]
    """Run class ids; for a multi-label run, a 0/1 row per case (one value per run label)."""
    groups: dict[str, list[str]]
    """Grouping column → each kept case's group."""
    text_column: str
    label_column: str
    label_mapping: dict[str, str]
    """Gold label → run label (multi-label: gold column → run label)."""
    mapping_source: str
    """How the mapping was chosen, in words."""
    rows: int
    dropped: dict[str, dict[str, int]] = field(default_factory=dict)
    """Grouping column → group → cases dropped for a blank text."""
    notes: list[str] = field(default_factory=list)
    identity_column: str | None = None
    """The column naming each case's identity (bias metrics), None when the suite has none."""
    identities: list[str] | None = None
    """Each kept case's identity (``NO_GROUP`` when its cell is empty)."""

    @property
    def group_columns(self) -> list[str]:
        return list(self.groups)

    @property
    def dropped_total(self) -> int:
        return sum(next(iter(self.dropped.values()), {}).values())


def parse_label_map(text: str | None) -> dict[str, str] | None:
    """``hateful=hate,non-hateful=not-hate`` → ``{"hateful": "hate", "non-hateful": "not-hate"}``."""
    if text is None:
        return None
    mapping: dict[str, str] = {}
    for item in text.split(","):
        gold, sep, run_label = item.partition("=")
        if not sep or not gold.strip() or not run_label.strip():
            raise ValueError(f"--label-map {text!r}: expected gold=run pairs separated by commas, got {item!r}")
        mapping[gold.strip()] = run_label.strip()
    return mapping


def read_table(file: Path) -> datasets.Dataset:
    """The suite file as a ``datasets.Dataset`` (texts kept exactly as written: no NA guessing)."""
    if not file.is_file():
        raise FileNotFoundError(f"{file}: suite file not found")
    builder = FORMATS.get(file.suffix.lower())
    if builder is None:
        raise ValueError(f"{file}: unknown suite format; use .csv, .jsonl or .parquet")
    if file.stat().st_size == 0:
        raise ValueError(f"{file}: the suite file is empty")
    try:
        return read_table_file(file)
    except DataError:
        if _no_rows(file, builder):  # datasets refuses a file with no rows; say so plainly
            raise ValueError(f"{file}: the suite has no cases") from None
        raise


def _no_rows(file: Path, builder: str) -> bool:
    """A text suite with nothing below its header (CSV) or no record at all (JSON Lines), which datasets rejects."""
    if builder not in ("csv", "json"):
        return False
    try:
        lines = [line for line in file.read_text(encoding="utf-8").splitlines() if line.strip()]
    except (OSError, UnicodeDecodeError):
        return False
    return len(lines) <= (1 if builder == "csv" else 0)


def _cell(value: object) -> str:
    return "" if value is None else str(value).strip()


def map_labels(gold_values: Sequence[str], run_labels: Sequence[str], label_map: Mapping[str, str] | None,
               hatecheck: bool, file: Path) -> tuple[dict[str, str], str]:
    """Gold label → run label for every gold label of the suite, and how it was chosen; ValueError if one is left."""
    present = sorted(set(gold_values))
    if label_map is not None:
        unknown = sorted({v for v in label_map.values() if v not in run_labels})
        if unknown:
            raise ValueError(f"--label-map names labels the run lacks: {', '.join(unknown)} "
                             f"(the run's labels: {', '.join(run_labels)})")
        mapping, source = dict(label_map), "--label-map"
    elif hatecheck and set(present) <= {HATECHECK_POSITIVE, HATECHECK_NEGATIVE}:
        if len(run_labels) != 2:
            raise ValueError(f"{file}: HateCheck's hateful / non-hateful map onto a binary run only; this run has "
                             f"{len(run_labels)} labels ({', '.join(run_labels)}): give --label-map")
        mapping = {HATECHECK_POSITIVE: run_labels[1], HATECHECK_NEGATIVE: run_labels[0]}
        source = (f"HateCheck default: {HATECHECK_POSITIVE} → class 1 ({run_labels[1]}), "
                  f"{HATECHECK_NEGATIVE} → class 0 ({run_labels[0]})")
    else:
        mapping = {}
        for value in present:
            if value in run_labels:
                mapping[value] = value
            elif value.isdigit() and int(value) < len(run_labels):
                mapping[value] = run_labels[int(value)]
        source = "gold labels are the run's label names or class ids"
    unmapped = [v if v else "(empty)" for v in present if v not in mapping]
    if unmapped:
        raise ValueError(f"{file}: gold labels not mapped onto the run's labels ({', '.join(run_labels)}): "
                         f"{', '.join(unmapped)}; give --label-map gold=run,…")
    return {v: mapping[v] for v in present}, source


def gold_columns(columns: Sequence[str], run_labels: Sequence[str], label_map: Mapping[str, str] | None,
                 file: Path) -> tuple[dict[str, str], str]:
    """A multi-label suite's gold column → run label for every run label, and how they were found; ValueError
    naming the labels without a column."""
    mapping = {label: label for label in run_labels if label in columns}
    source = "gold columns named as the run's labels"
    if label_map is not None:
        unknown = sorted({v for v in label_map.values() if v not in run_labels})
        if unknown:
            raise ValueError(f"--label-map names labels the run lacks: {', '.join(unknown)} "
                             f"(the run's labels: {', '.join(run_labels)})")
        twice = sorted({label for label in label_map.values() if list(label_map.values()).count(label) > 1})
        if twice:
            raise ValueError(f"--label-map maps several columns onto {', '.join(twice)}: one gold column per label")
        absent = [c for c in label_map if c not in columns]
        if absent:
            raise ValueError(f"--label-map names columns {file.name} lacks: {', '.join(absent)} "
                             f"(its columns: {', '.join(columns)})")
        mapping = {**{c: label for c, label in mapping.items() if label not in label_map.values()}, **label_map}
        source = "--label-map (other labels: columns named as the run's labels)"
    missing = [label for label in run_labels if label not in mapping.values()]
    if missing:
        raise ValueError(f"{file}: no gold column for {', '.join(map(repr, missing))}: a multi-label run's suite needs "
                         f"one 0/1 column per label ({', '.join(run_labels)}), named as the label or mapped with "
                         f"--label-map column=label (its columns: {', '.join(columns)})")
    order = {label: i for i, label in enumerate(run_labels)}
    return dict(sorted(mapping.items(), key=lambda item: order[item[1]])), source


def gold_rows(table: datasets.Dataset, mapping: Mapping[str, str], keep: Sequence[bool], file: Path) -> list[list[int]]:
    """The kept cases' 0/1 gold rows (columns in run-label order), each cell read as the training data's are; a
    ValueError names the first case whose cell is not 0 / 1 (also 0.0 / 1.0, True / False) or is empty."""
    rows = []
    for index, record in enumerate(table.select_columns(list(mapping))):
        if not keep[index]:
            continue
        where = f"{file} case {index + 1}"
        row = [flag(record[column], where, column) for column in mapping]
        if None in row:
            empty = next(column for column, value in zip(mapping, row, strict=True) if value is None)
            raise ValueError(f"{where}: column {empty!r} is empty; every case needs 0 or 1 in each gold column")
        rows.append(row)
    return rows


def class_gold(gold_raw: Sequence[str], keep: Sequence[bool], run_labels: Sequence[str],
               label_map: Mapping[str, str] | None, hatecheck: bool, file: Path
               ) -> tuple[list[int], dict[str, str], str]:
    """The kept cases' gold labels as run class ids, the gold → run label mapping and how it was chosen."""
    mapping, source = map_labels([g for g, k in zip(gold_raw, keep, strict=True) if k], run_labels, label_map,
                                 hatecheck, file)
    label_id = {label: i for i, label in enumerate(run_labels)}
    return [label_id[mapping[g]] for g, k in zip(gold_raw, keep, strict=True) if k], mapping, source


def identity_column(config: CheckConfig, columns: Sequence[str], file: Path) -> tuple[str | None, list[str]]:
    """The identity column for the bias metrics and a note when there is none; a column named with
    ``--identity-column`` that the suite lacks is an error."""
    if config.identity_column is not None:
        if config.identity_column not in columns:
            raise ValueError(f"--identity-column {config.identity_column!r}: {file.name} has no such column "
                             f"(its columns: {', '.join(columns)})")
        return config.identity_column, []
    if IDENTITY_COLUMN in columns:
        return IDENTITY_COLUMN, []
    return None, [f"no identity column ({IDENTITY_COLUMN!r} absent; name one with --identity-column): no bias "
                  "metrics"]


def load_suite(file: str | Path, run_labels: Sequence[str], config: CheckConfig | None = None,
               label_map: Mapping[str, str] | None = None, multi_label: bool = False) -> Suite:
    """Read ``file``, detect its layout, map gold labels (``multi_label``: one 0/1 gold column per run label), drop
    (and count) blank texts; errors before any model."""
    config = config or CheckConfig()
    file = Path(file)
    table = read_table(file)
    columns = list(table.column_names)
    hatecheck = set(HATECHECK_COLUMNS) <= set(columns)
    text_column, label_column = config.text_column, config.label_column
    if hatecheck:
        text_column = text_column if text_column in columns else HATECHECK_TEXT
        label_column = label_column if label_column in columns else HATECHECK_LABEL
    group_columns = list(config.group_columns) or ([c for c in HATECHECK_GROUPS if c in columns] if hatecheck else [])
    missing = [c for c in (text_column, *([] if multi_label else [label_column]), *group_columns) if c not in columns]
    if missing:
        raise ValueError(f"{file}: no column {', '.join(map(repr, missing))} (its columns: {', '.join(columns)})")
    identity, notes = identity_column(config, columns, file)
    if len(table) == 0:
        raise ValueError(f"{file}: the suite has no cases")
    raw_texts = ["" if t is None else str(t) for t in table[text_column]]
    if group_columns:
        groups = {c: [_cell(v) or NO_GROUP for v in table[c]] for c in group_columns}
    else:
        groups = {ALL: [ALL] * len(table)}
        notes.append("no grouping columns: every case is in one group, 'all'")
    keep = [bool(t.strip()) for t in raw_texts]
    if not any(keep):
        raise ValueError(f"{file}: every text in column {text_column!r} is blank")
    if multi_label:
        mapping, source = gold_columns(columns, run_labels, label_map, file)
        gold: list = gold_rows(table, mapping, keep, file)
        label_column = ",".join(mapping)
    else:
        gold, mapping, source = class_gold([_cell(v) for v in table[label_column]], keep, run_labels, label_map,
                                           hatecheck, file)
    dropped = {c: dict(Counter(g for g, k in zip(values, keep, strict=True) if not k)) for c, values in groups.items()}
    if sum(not k for k in keep):
        notes.append(f"{sum(not k for k in keep)} case(s) dropped for a blank text (counted per group)")
    kept_groups = {c: [g for g, k in zip(values, keep, strict=True) if k] for c, values in groups.items()}
    for column, values in kept_groups.items():
        if column != ALL and len(set(values)) == 1:
            notes.append(f"grouping column {column!r} has one value only ({values[0]!r}): its one group is the "
                         "whole suite")
    suite = Suite(
        file=file, format="hatecheck" if hatecheck else "table",
        texts=[t for t, k in zip(raw_texts, keep, strict=True) if k],
        gold=gold,
        groups=kept_groups, text_column=text_column, label_column=label_column, label_mapping=mapping,
        mapping_source=source, rows=len(table), dropped=dropped, notes=notes, identity_column=identity,
        identities=None if identity is None else [_cell(v) or NO_GROUP for v, k in zip(table[identity], keep,
                                                                                      strict=True) if k],
    )
    logger.info("%s: %s format, %d cases (%d dropped); labels: %s", file, suite.format, len(suite.texts),
                suite.dropped_total, source)
    for note in notes:
        logger.warning("%s: %s", file.name, note)
    return suite
