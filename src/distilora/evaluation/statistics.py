"""Bootstrap confidence intervals, paired comparisons (bootstrap + McNemar's exact test) and seed summaries.

Every bootstrap here resamples test *items*: all models are scored on the same resampled item sets, so the
difference between two models on one resample is a paired difference.

Multi-label gold labels and predictions (0/1 rows, one column per label) are resampled by item too: ``accuracy`` is
then subset accuracy (an item is right when every label is) and ``macro_f1`` the mean over labels of each label's F1.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from scipy.stats import binomtest

from distilora.label_space import is_multi_label
from distilora.results import Interval, MetricSummary, SeedRun, SeedSummary

METRICS = ("accuracy", "macro_f1")
CONFIDENCE = 0.95
RESAMPLES = 2000
SEED = 0


@dataclass(frozen=True)
class McNemarResult:
    """Discordant pairs (items only A / only B gets right) and the exact two-sided p-value."""

    a_only_correct: int
    b_only_correct: int
    p_value: float


def item_correct(y_true: np.ndarray, y_pred: np.ndarray) -> np.ndarray:
    """Per item: the prediction is right (multi-label: every label is)."""
    right = np.asarray(y_true) == np.asarray(y_pred)
    return right.all(axis=1) if is_multi_label(y_true) else right


def accuracy(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    return float(np.mean(item_correct(y_true, y_pred))) if len(y_true) else 0.0


def macro_f1(y_true: np.ndarray, y_pred: np.ndarray, num_classes: int) -> float:
    """Macro-F1 over all ``num_classes`` classes (multi-label: over the labels); a class never true nor predicted
    scores 0 (as scikit-learn)."""
    weights = np.ones((1, len(y_true)))
    return float(_weighted_macro_f1(weights, np.asarray(y_true), np.asarray(y_pred), num_classes)[0])


def _indicators(y: np.ndarray, num_classes: int) -> np.ndarray:
    """``(items, classes)`` 0/1: class ids one-hot, multi-label rows as they are."""
    return y.astype(float) if is_multi_label(y) else (y[:, None] == np.arange(num_classes)).astype(float)


def _weighted_macro_f1(weights: np.ndarray, y_true: np.ndarray, y_pred: np.ndarray, num_classes: int) -> np.ndarray:
    """Macro-F1 for each row of ``weights`` (how many times each item is drawn), from per-class counts."""
    true_is, pred_is = _indicators(y_true, num_classes), _indicators(y_pred, num_classes)
    tp = weights @ (true_is * pred_is)
    denominator = weights @ true_is + weights @ pred_is
    f1 = np.divide(2 * tp, denominator, out=np.zeros_like(tp), where=denominator > 0)
    return f1.mean(axis=1)


def _resample_counts(n: int, n_resamples: int, seed: int, chunk: int = 250) -> Iterator[np.ndarray]:
    """Bootstrap resamples of ``n`` items as draw counts (rows sum to n), in chunks to bound memory."""
    rng = np.random.default_rng(seed)
    done = 0
    while done < n_resamples:
        size = min(chunk, n_resamples - done)
        yield rng.multinomial(n, np.full(n, 1 / n), size=size).astype(float)
        done += size


def bootstrap_replicates(y_true: Sequence[int], predictions: Mapping[str, Sequence[int]], num_classes: int, *,
                         n_resamples: int = RESAMPLES, seed: int = SEED) -> dict[str, dict[str, np.ndarray]]:
    """``{model: {metric: replicate values}}``; every model is scored on the same resampled item sets (class ids,
    or multi-label 0/1 rows)."""
    y_true = np.asarray(y_true, dtype=np.int64)
    n = len(y_true)
    if n == 0:
        raise ValueError("cannot bootstrap an empty test set")
    preds = {name: np.asarray(p, dtype=np.int64) for name, p in predictions.items()}
    for name, p in preds.items():
        if p.shape != y_true.shape:
            raise ValueError(f"{name}: {len(p)} predictions for {n} test items")
    out: dict[str, dict[str, list[np.ndarray]]] = {name: {m: [] for m in METRICS} for name in preds}
    for weights in _resample_counts(n, n_resamples, seed):
        for name, p in preds.items():
            out[name]["accuracy"].append(weights @ item_correct(y_true, p).astype(float) / n)
            out[name]["macro_f1"].append(_weighted_macro_f1(weights, y_true, p, num_classes))
    return {name: {m: np.concatenate(v) for m, v in metrics.items()} for name, metrics in out.items()}


def percentile_interval(replicates: np.ndarray, estimate: float, confidence: float = CONFIDENCE) -> Interval:
    """The percentile bootstrap interval of ``replicates`` around the full-sample ``estimate``."""
    tail = (1 - confidence) / 2 * 100
    low, high = np.percentile(replicates, [tail, 100 - tail])
    return Interval(float(estimate), float(low), float(high))


def point_estimate(metric: str, y_true: np.ndarray, y_pred: np.ndarray, num_classes: int) -> float:
    return accuracy(y_true, y_pred) if metric == "accuracy" else macro_f1(y_true, y_pred, num_classes)


def mcnemar_exact(correct_a: Sequence[bool], correct_b: Sequence[bool]) -> McNemarResult:
    """McNemar's exact test: two-sided binomial test (p = ½) on the pairs where exactly one model is right."""
    a, b = np.asarray(correct_a, dtype=bool), np.asarray(correct_b, dtype=bool)
    if a.shape != b.shape:
        raise ValueError(f"paired test needs the same items: {len(a)} vs {len(b)}")
    a_only, b_only = int(np.sum(a & ~b)), int(np.sum(~a & b))
    discordant = a_only + b_only
    p = 1.0 if discordant == 0 else float(binomtest(a_only, discordant, 0.5).pvalue)
    return McNemarResult(a_only, b_only, p)


def holm(p_values: Sequence[float]) -> list[float]:
    """Holm–Bonferroni adjusted p-values (same order as given)."""
    p = np.asarray(p_values, dtype=float)
    m = len(p)
    order = np.argsort(p)
    adjusted = np.empty(m)
    running = 0.0
    for rank, index in enumerate(order):
        running = max(running, min(1.0, (m - rank) * p[index]))
        adjusted[index] = running
    return adjusted.tolist()


def summarise_seeds(seed_runs: Sequence[SeedRun]) -> SeedSummary:
    """Mean, sample std (ddof 1; 0 for one seed) and the values of each metric over the seed runs of one model, on
    validation and test."""
    return SeedSummary(n_seeds=len(seed_runs), seeds=[run.seed for run in seed_runs],
                       validation=_over_seeds(seed_runs, "validation"), test=_over_seeds(seed_runs, "test"))


def _over_seeds(seed_runs: Sequence[SeedRun], split: str) -> dict[str, MetricSummary]:
    summaries = {}
    for metric in METRICS:
        values = [float(getattr(run.metrics[split], metric)) for run in seed_runs
                  if split in run.metrics and getattr(run.metrics[split], metric) is not None]
        if values:
            summaries[metric] = MetricSummary(mean=float(np.mean(values)), values=values,
                                              std=float(np.std(values, ddof=1)) if len(values) > 1 else 0.0)
    return summaries


def metric_intervals(y_true: Sequence[int], y_pred: Sequence[int], num_classes: int, *, n_resamples: int = RESAMPLES,
                     seed: int = SEED) -> dict[str, dict[str, float]]:
    """``{metric: {estimate, low, high}}`` for one model's predictions (the same resamples as the report's, so the
    same intervals)."""
    y_true, y_pred = np.asarray(y_true, dtype=np.int64), np.asarray(y_pred, dtype=np.int64)
    replicates = bootstrap_replicates(y_true, {"model": y_pred}, num_classes, n_resamples=n_resamples,
                                      seed=seed)["model"]
    return {metric: percentile_interval(replicates[metric],
                                        point_estimate(metric, y_true, y_pred, num_classes)).to_json()
            for metric in METRICS}
