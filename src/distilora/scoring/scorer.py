"""Score a batch of rows (a pyarrow Table or a pandas DataFrame) with one classifier: every class's calibrated score,
the decided label at the model's threshold, and a reason for each row that could not be scored."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pyarrow as pa

from distilora.config import WINDOWS
from distilora.scoring.formats import READ_REASON

SCORE_PREFIX = "score_"
OUTPUT_COLUMNS = ("label", "threshold", "policy", "windows", "reason")
"""Written after the ``score_<label>`` columns, for every row."""
EMPTY_TEXT = "empty text"
MISSING_TEXT = "missing text"
NOT_TEXT = "text is not a string"


class Scorer:
    """``Scorer(classifier)(batch)``: the batch's kept columns, then ``score_<label>`` per class, ``label``,
    ``threshold``, ``policy``, ``windows`` and ``reason`` (null where the row was scored).

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

    @property
    def positive_label(self) -> str | None:
        """The label counted as flagged: the calibrated positive label, or label id 1 of a binary model."""
        decided = self.classifier.decision.get("positive_label")
        return decided or (self.labels[1] if len(self.labels) == 2 else None)

    def output_schema(self, kept: pa.Schema) -> pa.Schema:
        fields = [*kept, *(pa.field(f"{SCORE_PREFIX}{label}", pa.float64()) for label in self.labels)]
        return pa.schema([*fields, pa.field("label", pa.string()), pa.field("threshold", pa.float64()),
                          pa.field("policy", pa.string()), pa.field("windows", pa.int32()),
                          pa.field("reason", pa.string())])

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
        decided: list[str | None] = [None] * n
        windows: list[int | None] = [None] * n
        for row, prediction in zip(scorable, predictions, strict=True):
            scores[row] = [prediction.scores[label] for label in self.labels]
            decided[row], windows[row] = prediction.label, prediction.windows
        missing = np.array([reason is not None for reason in reasons])
        columns = {c: table.column(c) for c in self.keep_columns}
        for index, label in enumerate(self.labels):
            columns[f"{SCORE_PREFIX}{label}"] = pa.array(scores[:, index], mask=missing, type=pa.float64())
        columns["label"] = pa.array(decided, type=pa.string())
        columns["threshold"] = pa.array([None if m or self.threshold is None else self.threshold for m in missing],
                                        type=pa.float64())
        columns["policy"] = pa.array([None if m else self.policy for m in missing], type=pa.string())
        columns["windows"] = pa.array(windows, type=pa.int32())
        columns["reason"] = pa.array(reasons, type=pa.string())
        return pa.table(columns)

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
