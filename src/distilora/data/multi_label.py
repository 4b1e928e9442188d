"""Multi-label datasets: one 0/1 column per label (Jigsaw's layout: ``toxic,severe_toxic,…`` beside the text).

A dataset is multi-label when ``--label-columns`` names its label columns, when it has no ``--label-column`` but its
labels.txt names columns of its train file, or when it has no ``--label-column`` but all of Jigsaw's six columns.
A cell is ``0`` / ``1`` (also ``0.0`` / ``1.0``, ``True`` / ``False``); a blank or missing-value cell drops the row
(counted as ``missing_label``); anything else is a :class:`DataError` naming the file, line and column.
"""

from __future__ import annotations

import csv
import json
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import datasets
import numpy as np
import pyarrow.parquet as pq

from distilora.config import DataConfig
from distilora.data.cells import MISSING_LABELS

JIGSAW_LABELS = ("toxic", "severe_toxic", "obscene", "threat", "insult", "identity_hate")
"""The label columns of Jigsaw's toxic-comment data, recognised by name."""
ON, OFF = frozenset({"1", "1.0", "true"}), frozenset({"0", "0.0", "false"})
MISSING = frozenset(spelling.casefold() for spelling in MISSING_LABELS)
"""The missing-value spellings, compared case-blind like ``ON`` / ``OFF``."""
LABEL_ROWS = datasets.List(datasets.Value("int64"))
"""A multi-label split's ``label`` feature: one 0/1 value per label."""


class MultiLabelError(ValueError):
    """A multi-label dataset cannot be used as given (raised as the loader's DataError)."""


def header_columns(file: Path) -> list[str]:
    """The column names of a CSV / JSON Lines / Parquet file, read without loading it."""
    suffix = file.suffix.lower()
    if suffix == ".parquet":
        return list(pq.read_schema(file).names)
    with file.open(encoding="utf-8-sig", newline="") as handle:
        if suffix == ".csv":
            return next(csv.reader(handle), [])
        first = next((line for line in handle if line.strip()), "{}")
    try:
        row = json.loads(first)
    except json.JSONDecodeError:
        return []
    return list(row) if isinstance(row, dict) else []


def label_columns_of(config: DataConfig, columns: Sequence[str], names: Sequence[str] | None, origin: str
                     ) -> list[str] | None:
    """The label columns of a multi-label dataset whose train file has ``columns``; None: a single-label dataset."""
    if config.label_columns:
        missing = [column for column in config.label_columns if column not in columns]
        if missing:
            raise MultiLabelError(f"{origin}: --label-columns names {missing}, which the file does not have; found "
                                  f"{list(columns)}")
        if len(config.label_columns) < 2:
            raise MultiLabelError("--label-columns needs at least 2 columns (one label is --label-column)")
        return list(config.label_columns)
    if config.label_column in columns:
        return None
    if names and all(name in columns for name in names):
        return list(names)
    if all(name in columns for name in JIGSAW_LABELS):
        return list(JIGSAW_LABELS)
    return None


def flag(value: Any, where: str, column: str) -> int | None:
    """One label cell as 0 / 1; None for a missing value; :class:`MultiLabelError` for anything else."""
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return None
    text = str(value).strip().lower()
    if text in ON:
        return 1
    if text in OFF:
        return 0
    if not text or text in MISSING:
        return None
    raise MultiLabelError(f"{where}: column {column!r} holds {value!r}; multi-label columns hold 0 or 1 (also 0.0 / "
                          "1.0, True / False)")


def clean_multi_label_split(texts: Sequence[Any], rows: Sequence[Sequence[Any]], columns: Sequence[str],
                            where: Any) -> tuple[datasets.Dataset, dict[str, Any]]:
    """Keep the rows with a text and every label; count the others by reason. ``where(row)`` names a row."""
    kept_text, kept_label = [], []
    reasons: Counter[str] = Counter()
    for row, (text, cells) in enumerate(zip(texts, rows, strict=True)):
        if text is None or not str(text).strip():
            reasons["empty_text"] += 1
            continue
        flags = [flag(cell, where(row), column) for cell, column in zip(cells, columns, strict=True)]
        if any(value is None for value in flags):
            reasons["missing_label"] += 1
            continue
        kept_text.append(str(text))
        kept_label.append(flags)
    table = datasets.Dataset.from_dict(
        {"text": kept_text, "label": kept_label},
        features=datasets.Features({"text": datasets.Value("string"), "label": LABEL_ROWS}),
    )
    return table, {"rows": len(table), "rows_read": len(texts), "dropped": sum(reasons.values()),
                   "reasons": dict(reasons)}


def positives_per_label(table: datasets.Dataset, num_labels: int) -> np.ndarray:
    """How many rows of a multi-label split each label is on in."""
    return np.asarray(table["label"], dtype=np.int64).reshape(len(table), num_labels).sum(axis=0)


def check_train_labels(train: datasets.Dataset, labels: Sequence[str], origin: str) -> None:
    """Every label must be on for some train rows and off for others: otherwise there is nothing to learn for it."""
    on = positives_per_label(train, len(labels))
    never = [label for label, count in zip(labels, on, strict=True) if count == 0]
    always = [label for label, count in zip(labels, on, strict=True) if count == len(train)]
    for found, words in ((never, "never on"), (always, "on in every row")):
        if found:
            raise MultiLabelError(f"{origin}: label column(s) {found} are {words} in the train split after "
                                  "cleaning, so nothing can be learned for them; leave them out of labels.txt or "
                                  "--label-columns")


def split_warnings(split: str, table: datasets.Dataset, labels: Sequence[str]) -> list[str]:
    """Labels never on (or always on) in a validation / test split: their F1 or ROC-AUC there says little."""
    on = positives_per_label(table, len(labels))
    never = [label for label, count in zip(labels, on, strict=True) if count == 0]
    if not never:
        return []
    return [f"the {split} split has no items with label {', '.join(map(repr, never))}: that label's F1 is 0 and its "
            f"ROC-AUC undefined there"]


def combination_ids(rows: np.ndarray) -> np.ndarray:
    """One id per distinct label combination of 0/1 ``rows``, for stratified splitting."""
    _, ids = np.unique(np.asarray(rows, dtype=np.int64), axis=0, return_inverse=True)
    return ids.reshape(-1)
