"""The majority-class baseline: always predict the most frequent class of the training data."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np

from distilora.evaluation.metrics import classification_metrics
from distilora.report.predictions import SplitPredictions

NAME = "majority baseline"


@dataclass
class Baseline:
    """Which class the baseline predicts, where that choice came from, and its metrics per split."""

    class_id: int
    label: str
    counts: list[int]
    source: str
    metrics: dict[str, dict] = field(default_factory=dict)
    predictions: dict[str, SplitPredictions] = field(default_factory=dict)

    def to_dict(self) -> dict:
        return {"class_id": self.class_id, "label": self.label, "counts": self.counts, "source": self.source,
                "metrics": self.metrics}


def train_label_counts(data_report: Mapping) -> list[int] | None:
    """Train class counts from ``data_report``: ``{"label_counts": {"train": [...]}}`` or ``{"train": {...}}``."""
    nested = data_report.get("label_counts")
    if isinstance(nested, Mapping) and nested.get("train"):
        return [int(c) for c in nested["train"]]
    per_split = data_report.get("train", {})
    if isinstance(per_split, Mapping) and per_split.get("label_counts"):
        return [int(c) for c in per_split["label_counts"]]
    return None


def majority_baseline(labels: list[str], data_report: Mapping, y_true: Mapping[str, np.ndarray]) -> Baseline:
    """The baseline's metrics on each split of ``y_true``; the class comes from the train counts if known.

    Without train counts the majority of the *validation* labels is used (and ``source`` says so). Its
    probabilities are the class frequencies it was chosen from, so its loss is that of a prior-only model.
    """
    counts = train_label_counts(data_report)
    source = "train label counts"
    if counts is None:
        if "validation" not in y_true:
            raise ValueError("no train label counts in results.json and no validation labels to fall back on")
        counts = np.bincount(y_true["validation"], minlength=len(labels)).tolist()
        source = "validation labels (results.json has no train label counts)"
    counts = (list(counts) + [0] * len(labels))[: len(labels)]
    prior = np.asarray(counts, dtype=np.float64) / max(1, sum(counts))
    class_id = int(np.argmax(counts))  # ties go to the lowest class id
    baseline = Baseline(class_id, labels[class_id], counts, source)
    log_prior = np.log(np.clip(prior, 1e-12, None))
    for split, truth in y_true.items():
        logits = np.tile(log_prior, (len(truth), 1))
        # argmax of the log-prior is exactly the majority class, so the metrics are the majority classifier's.
        baseline.metrics[split] = classification_metrics(truth, logits, labels)
        baseline.predictions[split] = SplitPredictions(np.asarray(truth), np.tile(prior, (len(truth), 1)))
    return baseline
