"""Score a batch of rows (a pyarrow Table or a pandas DataFrame) with one classifier: every class's calibrated score,
the decided label at the model's threshold, and a reason for each row that could not be scored.

A multi-label model's rows get every label's score, a 0/1 column per label (``flag_<label>``: on at that label's
threshold, the 0/1 layout of the training data, so a file is filtered with ``flag_threat == 1`` in any tool and
compared column for column with gold labels) and the decided set as a list (``labels``; empty when no label is on).
Its column names are plain identifiers, unique among the output's columns; the thresholds and the column of each
label are in :meth:`Scorer.output_metadata` (the output file's metadata)."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from distilora.config import WINDOWS
from distilora.scoring.formats import READ_REASON

SCORE_PREFIX = "score_"
FLAG_PREFIX = "flag_"
LABELS_COLUMN = "labels"
OUTPUT_COLUMNS = ("label", "threshold", "policy", "windows", "reason")
"""Written after the ``score_<label>`` columns, for every row."""
MULTI_LABEL_OUTPUT_COLUMNS = (LABELS_COLUMN, "windows", "reason")
"""Written after a multi-label model's ``score_<label>`` and ``flag_<label>`` columns, for every row."""
EMPTY_TEXT = "empty text"
MISSING_TEXT = "missing text"
NOT_TEXT = "text is not a string"


def safe_column_names(labels: Sequence[str], prefix: str, taken: Sequence[str]) -> dict[str, str]:
    """``prefix + label`` for each label as a plain identifier (other characters become ``_``), unique among ``taken``
    and each other (``_2``, ``_3``, … appended to a name already used)."""
    used, names = set(taken), {}
    for label in labels:
        base = prefix + (re.sub(r"\W+", "_", label, flags=re.ASCII).strip("_") or "label")
        name, count = base, 2
        while name in used:
            name, count = f"{base}_{count}", count + 1
        used.add(name)
        names[label] = name
    return names


class Scorer:
    """``Scorer(classifier)(batch)``: the batch's kept columns, then ``score_<label>`` per class, ``label``,
    ``threshold``, ``policy``, ``windows`` and ``reason`` (null where the row was scored); a multi-label model's:
    ``score_<label>`` and ``flag_<label>`` per label (names in :attr:`score_columns` / :attr:`flag_columns`),
    ``labels``, ``windows`` and ``reason``.

    Rows whose text is missing, empty or not a string are kept with null scores and their reason; long texts follow
    ``long_text`` (``windows``: the most positive overlapping window, as ``Classifier.predict`` and the service).
    """

    def __init__(self, classifier: Any, text_column: str = "text", keep_columns: Sequence[str] = (),
                 long_text: str = WINDOWS):
        self.classifier = classifier
        self.text_column = text_column
        self.keep_columns = list(keep_columns)
        self.long_text = long_text
        decision = classifier.decision
        self.threshold = decision.get("threshold")
        self.policy = decision.get("policy") if decision.get("rule") == "threshold" else "argmax"
        self.labels: list[str] = list(classifier.labels)
        self.multi_label = bool(getattr(classifier, "multi_label", False))
        if self.multi_label:
            taken = [*self.keep_columns, *MULTI_LABEL_OUTPUT_COLUMNS]
            self.score_columns = safe_column_names(self.labels, SCORE_PREFIX, taken)
            self.flag_columns = safe_column_names(self.labels, FLAG_PREFIX, [*taken, *self.score_columns.values()])
        else:
            self.score_columns = {label: f"{SCORE_PREFIX}{label}" for label in self.labels}
            self.flag_columns = {}

    @property
    def positive_label(self) -> str | None:
        """The label counted as flagged: the calibrated positive label, or label id 1 of a binary model (None for a
        multi-label model: a row is flagged when any label is on)."""
        if self.multi_label:
            return None
        decided = self.classifier.decision.get("positive_label")
        return decided or (self.labels[1] if len(self.labels) == 2 else None)

    def output_metadata(self) -> dict[str, Any]:
        """What the output file's metadata adds for a multi-label model (each label's threshold and columns); empty
        for a single-label model."""
        if not self.multi_label:
            return {}
        thresholds = self.classifier.label_thresholds()
        return {"multi_label": True, "thresholds": dict(zip(self.labels, map(float, thresholds), strict=True)),
                "score_columns": self.score_columns, "flag_columns": self.flag_columns,
                "labels_column": LABELS_COLUMN}

    def flagged(self, scored: pa.Table) -> tuple[int, dict[str, int]]:
        """Rows of a scored table flagged (the positive label; for a multi-label model: any label on) and, for a
        multi-label model, the rows each label is on in."""
        if not self.multi_label:
            return sum(1 for label in scored.column("label").to_pylist()
                       if self.positive_label is not None and label == self.positive_label), {}
        sizes = pc.list_value_length(scored.column(LABELS_COLUMN))
        per_label = {label: int(pc.sum(scored.column(column)).as_py() or 0)
                     for label, column in self.flag_columns.items()}
        return int(pc.sum(pc.greater(sizes, 0)).as_py() or 0), per_label

    def __call__(self, batch: Any) -> Any:
        """A scored copy of ``batch`` (same type: pyarrow Table / RecordBatch in, Table out; pandas in, pandas out)."""
        if isinstance(batch, pa.Table):
            return self.score_table(batch)
        if isinstance(batch, pa.RecordBatch):
            return self.score_table(pa.Table.from_batches([batch]))
        return self.score_table(pa.Table.from_pandas(batch, preserve_index=False)).to_pandas()

    def score_table(self, table: pa.Table) -> pa.Table:
        texts, reasons = self._texts(table)
        scorable = [i for i, reason in enumerate(reasons) if reason is None]
        predictions = self.classifier.predict([texts[i] for i in scorable], long_text=self.long_text) \
            if scorable else []
        n = len(table)
        scores = np.full((n, len(self.labels)), np.nan)
        windows: list[int | None] = [None] * n
        for row, prediction in zip(scorable, predictions, strict=True):
            scores[row] = [prediction.scores[label] for label in self.labels]
            windows[row] = prediction.windows
        missing = np.array([reason is not None for reason in reasons])
        columns = {c: table.column(c) for c in self.keep_columns}
        for index, label in enumerate(self.labels):
            columns[self.score_columns[label]] = pa.array(scores[:, index], mask=missing, type=pa.float64())
        decide = self._label_set_columns if self.multi_label else self._label_columns
        columns.update(decide(predictions, scorable, missing))
        columns["windows"] = pa.array(windows, type=pa.int32())
        columns["reason"] = pa.array(reasons, type=pa.string())
        return pa.table(columns)

    def _label_columns(self, predictions: list, scorable: list[int], missing: np.ndarray) -> dict[str, pa.Array]:
        """A single-label model's decided ``label``, and the ``threshold`` and ``policy`` that decided it."""
        decided: list[str | None] = [None] * len(missing)
        for row, prediction in zip(scorable, predictions, strict=True):
            decided[row] = prediction.label
        return {"label": pa.array(decided, type=pa.string()),
                "threshold": pa.array([None if m or self.threshold is None else self.threshold for m in missing],
                                      type=pa.float64()),
                "policy": pa.array([None if m else self.policy for m in missing], type=pa.string())}

    def _label_set_columns(self, predictions: list, scorable: list[int],
                           missing: np.ndarray) -> dict[str, pa.Array]:
        """A multi-label model's ``flag_<label>`` (0/1) per label and its decided set ``labels`` (null where the row
        was not scored)."""
        flags = np.zeros((len(missing), len(self.labels)), dtype=np.int8)
        decided: list[list[str] | None] = [None] * len(missing)
        for row, prediction in zip(scorable, predictions, strict=True):
            decided[row] = list(prediction.labels)
            flags[row] = [label in prediction.labels for label in self.labels]
        columns = {self.flag_columns[label]: pa.array(flags[:, index], mask=missing, type=pa.int8())
                   for index, label in enumerate(self.labels)}
        columns[LABELS_COLUMN] = pa.array(decided, type=pa.list_(pa.string()))
        return columns

    def _texts(self, table: pa.Table) -> tuple[list[Any], list[str | None]]:
        """Each row's text and, for a row that cannot be scored, why."""
        column = table.column(self.text_column)
        read_reasons = table.column(READ_REASON).to_pylist() if READ_REASON in table.column_names else None
        texts = column.to_pylist()
        reasons: list[str | None] = []
        for index, text in enumerate(texts):
            if read_reasons is not None and read_reasons[index] is not None:
                reasons.append(read_reasons[index])
            elif text is None:
                reasons.append(MISSING_TEXT)
            elif not isinstance(text, str):
                reasons.append(NOT_TEXT)
            elif not text.strip():
                reasons.append(EMPTY_TEXT)
            else:
                reasons.append(None)
        return texts, reasons
