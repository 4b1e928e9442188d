"""Everything the tables, plots and findings are computed from, gathered once: the per-item predictions, the
majority-class baseline, the statistics and the run's results."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np

from distilora.evaluation.metrics import classification_metrics
from distilora.evaluation.statistics import item_correct
from distilora.label_space import decide_labels, is_multi_label
from distilora.results import (
    BaselineSummary,
    CollapseCheck,
    Comparison,
    MetricIntervals,
    ModelResult,
    ModelSpeed,
    RunResults,
    RunStatistics,
    SeedSummary,
    SpeedReport,
    SplitMetrics,
    SplitReport,
    TunedRoute,
)
from distilora.routes.kinds import RouteKind
from distilora.run_dir import RunLayout, read_predictions

logger = logging.getLogger(__name__)

BASELINE = "majority baseline"
MAJORITY_MODEL = "majority"
"""The run's own majority-class model (route ``baseline``), when it has one: the report's baseline row then
stands for it and is not listed twice."""


@dataclass
class SplitPredictions:
    """True labels and class probabilities of one model on one split, item by item (multi-label: 0/1 gold rows and
    each label's probability, a label on at 0.5)."""

    y_true: np.ndarray
    probs: np.ndarray

    @property
    def multi_label(self) -> bool:
        return is_multi_label(self.y_true)

    @property
    def y_pred(self) -> np.ndarray:
        if self.multi_label:
            return decide_labels(self.probs)
        return self.probs.argmax(axis=1) if len(self.probs) else np.zeros(0, dtype=np.int64)

    @property
    def correct(self) -> np.ndarray:
        """Per item: the decision is right (multi-label: every label is)."""
        return item_correct(self.y_true, self.y_pred)


def load_predictions(run_dir: RunLayout, names: list[str]) -> dict[str, dict[str, SplitPredictions]]:
    """``{model: {split: predictions}}`` for every model whose predictions file exists (others are logged)."""
    out: dict[str, dict[str, SplitPredictions]] = {}
    for name in names:
        raw = read_predictions(run_dir, name)
        if raw is None:
            logger.warning("%s: no predictions saved, so it gets no confidence intervals or paired tests", name)
            continue
        out[name] = {
            split: SplitPredictions(np.asarray(data["y_true"], dtype=np.int64),
                                    np.asarray(data["probs"], dtype=np.float64).reshape(len(data["y_true"]), -1))
            for split, data in raw.items()
        }
    return out


@dataclass
class Baseline:
    """Which class the baseline predicts, where that choice came from, and its metrics per split (multi-label:
    ``class_id`` -1, ``label`` the labels it turns on, ``counts`` the rows each label is on in)."""

    class_id: int
    label: str
    counts: list[int]
    source: str
    metrics: dict[str, SplitMetrics] = field(default_factory=dict)
    predictions: dict[str, SplitPredictions] = field(default_factory=dict)

    def summary(self) -> BaselineSummary:
        """What results.json's ``statistics`` keeps of it."""
        return BaselineSummary(class_id=self.class_id, label=self.label, counts=self.counts, source=self.source,
                               metrics=self.metrics)


def majority_baseline(labels: list[str], data_report: Mapping[str, SplitReport],
                      y_true: Mapping[str, np.ndarray]) -> Baseline:
    """The baseline's metrics on each split of ``y_true``; the class comes from the train counts if known.

    Without train counts the majority of the *validation* labels is used (and ``source`` says so). Its
    probabilities are the class frequencies it was chosen from, so its loss is that of a prior-only model.
    Multi-label gold (0/1 rows): :func:`label_prior_baseline`.
    """
    if any(is_multi_label(truth) for truth in y_true.values()):
        return label_prior_baseline(labels, data_report, y_true)
    train = data_report.get("train")
    counts = train.label_counts if train is not None else None
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
        baseline.metrics[split] = SplitMetrics.from_json(classification_metrics(truth, logits, labels))
        baseline.predictions[split] = SplitPredictions(np.asarray(truth), np.tile(prior, (len(truth), 1)))
    return baseline


NO_LABEL = "no label"
"""What a multi-label baseline that turns no label on is called."""


def label_prior_baseline(labels: list[str], data_report: Mapping[str, SplitReport],
                         y_true: Mapping[str, np.ndarray]) -> Baseline:
    """The multi-label baseline: each label's probability is its train prior (the rows it is on in over the train
    rows; the validation labels' without train counts), on where that is at least 0.5."""
    train = data_report.get("train")
    if train is not None and train.label_counts is not None and train.rows:
        counts, rows, source = list(train.label_counts), train.rows, "train label counts"
    elif "validation" in y_true:
        validation = np.asarray(y_true["validation"])
        counts, rows = validation.sum(axis=0).astype(int).tolist(), len(validation)
        source = "validation labels (results.json has no train label counts)"
    else:
        raise ValueError("no train label counts in results.json and no validation labels to fall back on")
    prior = np.clip(np.asarray(counts, dtype=np.float64) / max(1, rows), 1e-12, 1 - 1e-12)
    on = [label for label, p in zip(labels, prior, strict=True) if p >= 0.5]
    baseline = Baseline(-1, ", ".join(on) or NO_LABEL, [int(c) for c in counts], source)
    for split, truth in y_true.items():
        logits = np.tile(np.log(prior / (1 - prior)), (len(truth), 1))  # sigmoid(logit(prior)) = prior
        baseline.metrics[split] = SplitMetrics.from_json(classification_metrics(truth, logits, labels))
        baseline.predictions[split] = SplitPredictions(np.asarray(truth), np.tile(prior, (len(truth), 1)))
    return baseline


@dataclass
class ReportContext:
    results: RunResults
    """The run's results (less the statistics the report computes)."""
    baseline: Baseline
    statistics: RunStatistics
    """What :func:`distilora.report.analysis.run_statistics` returned."""
    tuning: dict[str, TunedRoute] = field(default_factory=dict)
    """The routes ``distilora tune`` tuned (``tune.json``), by route."""

    @property
    def speed(self) -> SpeedReport | None:
        """Inference speed as measured by the run, or None."""
        return self.results.speed

    @property
    def models(self) -> dict[str, ModelResult]:
        return self.results.models

    @property
    def labels(self) -> list[str]:
        return self.results.labels

    @property
    def multi_label(self) -> bool:
        """Whether the run's labels are independent 0/1 labels (any number per text) rather than exclusive classes."""
        return bool(self.results.multi_label)

    @property
    def intervals(self) -> dict[str, MetricIntervals]:
        return self.statistics.intervals

    @property
    def seeds(self) -> dict[str, SeedSummary]:
        return self.statistics.seeds

    def multi_seed(self, name: str) -> bool:
        return name in self.seeds and self.seeds[name].n_seeds > 1

    @property
    def any_multi_seed(self) -> bool:
        return any(self.multi_seed(name) for name in self.models)

    def speed_of(self, name: str) -> ModelSpeed | None:
        return self.results.speed_of(name)

    def metrics(self, name: str, split: str) -> SplitMetrics:
        """The model's (or the baseline's) metrics on ``split``; KeyError when it has none there."""
        if name == BASELINE:
            return self.baseline.metrics[split]
        return self.models[name].metrics[split]

    @property
    def teacher(self) -> str | None:
        """The first fine-tuned model (the teacher), or None."""
        return next(iter(self.results.names_of_route(RouteKind.FINE_TUNE)), None)

    @property
    def majority_in_run(self) -> bool:
        """Whether the run has its own majority-class model (so the internal baseline gets no row of its own)."""
        return MAJORITY_MODEL in self.models and self.models[MAJORITY_MODEL].route == RouteKind.BASELINE

    @property
    def rows(self) -> list[str]:
        """The names a per-model table lists: every model, then the internal baseline unless the run has one."""
        return [*self.models] + ([] if self.majority_in_run else [BASELINE])

    def test_f1(self, name: str) -> float | None:
        """Test macro-F1: the bootstrap point estimate, else the run's metric, else None."""
        if name in self.intervals:
            return self.intervals[name].macro_f1.estimate
        test = self.models[name].metrics.get("test") if name in self.models else None
        value = test.macro_f1 if test is not None else None
        return float(value) if isinstance(value, int | float) else None

    def comparison(self, a: str, b: str) -> Comparison | None:
        """The paired comparison of ``a`` and ``b`` oriented as ``a − b`` (flipped if it was stored the other way)."""
        for stored in self.statistics.comparisons:
            if (stored.a, stored.b) == (a, b):
                return stored
            if (stored.a, stored.b) == (b, a):
                return stored.flipped()
        return None

    def collapse(self, name: str) -> CollapseCheck | None:
        """The model's collapse check (None when it has none)."""
        return self.models[name].collapse if name in self.models else None
