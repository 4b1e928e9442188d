"""Identity bias metrics of a check (Jigsaw's unintended-bias AUCs), from each model's positive-class scores.

For an identity: **subgroup AUC** over the cases mentioning it; **BPSN** (background positive, subgroup negative)
over the positive cases that do not mention it and the negative cases that do; **BNSP** (background negative,
subgroup positive) over the reverse. The **final bias metric** averages the overall AUC and the generalised power
mean (p = -5) of each of the three per-identity AUCs, at weight 0.25 each. An AUC whose cases hold one class only is
undefined: that identity is skipped for that metric and named, never averaged as a NaN.

Every interval resamples the suite's cases once for all models and metrics (a seeded bootstrap), so a model's
difference from the teacher on one resample is a paired difference.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass

import numpy as np
from sklearn.metrics import roc_auc_score

from distilora.checks.bias_records import (
    AucEstimate,
    BiasChange,
    BiasReport,
    Estimate,
    IdentityCount,
    ModelBias,
    ModelBiasChange,
    Skipped,
)
from distilora.evaluation.statistics import holm, percentile_interval

OVERALL, SUBGROUP, BPSN, BNSP = "overall", "subgroup", "bpsn", "bnsp"
IDENTITY_METRICS = (SUBGROUP, BPSN, BNSP)
METRIC_WEIGHT = 0.25
FINAL = "final"

Key = tuple[str | None, str]
"""``(identity, metric)``; the identity is None for the overall AUC and the final metric."""


def power_mean(values: Sequence[float], p: float) -> float:
    """The generalised mean ``(mean(v ** p)) ** (1 / p)`` (p != 0); 0 when a value is 0 and p < 0."""
    v = np.asarray(values, dtype=np.float64)
    if not len(v):
        raise ValueError("the power mean of no values is undefined")
    with np.errstate(divide="ignore"):
        return float(np.mean(v**p) ** (1 / p))


def subset_mask(metric: str, in_identity: np.ndarray, positive: np.ndarray) -> np.ndarray:
    """The cases an identity's ``metric`` AUC is computed over (Jigsaw's definitions)."""
    if metric == SUBGROUP:
        return in_identity
    if metric == BPSN:
        return (in_identity & ~positive) | (~in_identity & positive)
    if metric == BNSP:
        return (in_identity & positive) | (~in_identity & ~positive)
    raise ValueError(f"unknown bias metric {metric!r}")


def interval(replicates: np.ndarray, estimate: float | None, confidence: float) -> Estimate:
    """The percentile interval of the defined (non-NaN) replicates."""
    defined = replicates[~np.isnan(replicates)]
    if estimate is None or not len(defined):
        return Estimate(estimate, None, None)
    bounds = percentile_interval(defined, estimate, confidence)
    return Estimate(bounds.estimate, bounds.low, bounds.high)


def paired_p_value(differences: np.ndarray) -> float:
    """Two-sided bootstrap p of a zero difference: twice the smaller share of replicates on either side of 0."""
    d = differences[~np.isnan(differences)]
    if not len(d):
        return 1.0
    return float(min(1.0, 2 * min(np.mean(d <= 0), np.mean(d >= 0))))


class CaseResamples:
    """Seeded bootstrap resamples of a suite's cases as draw counts, and the AUC of any subset on each of them."""

    def __init__(self, positive: np.ndarray, resamples: int, seed: int):
        self.positive = np.asarray(positive, dtype=bool)
        n = len(self.positive)
        self.weights = np.random.default_rng(seed).multinomial(n, np.full(n, 1 / n), size=resamples).astype(float)

    def aucs(self, scores: np.ndarray, mask: np.ndarray) -> np.ndarray:
        """The AUC of ``scores`` over ``mask``'s cases on every resample (NaN where a class was not drawn): the
        Mann-Whitney count of positive-negative pairs ranked right (ties half), weighted by the draws."""
        pos, neg = np.flatnonzero(mask & self.positive), np.flatnonzero(mask & ~self.positive)
        s_pos, s_neg = scores[pos][:, None], scores[neg][None, :]
        right = (s_pos > s_neg) + 0.5 * (s_pos == s_neg)
        w_pos, w_neg = self.weights[:, pos], self.weights[:, neg]
        pairs = w_pos.sum(axis=1) * w_neg.sum(axis=1)
        ranked = np.einsum("bn,bn->b", w_pos @ right, w_neg)
        return np.divide(ranked, pairs, out=np.full(len(pairs), np.nan), where=pairs > 0)


def identity_masks(identities: Sequence[str], names: Sequence[str], positive: np.ndarray) -> dict[Key, np.ndarray]:
    """``(identity, metric)`` → the cases of that AUC, for every identity and metric."""
    ids = np.asarray(identities, dtype=object)
    return {(name, metric): subset_mask(metric, ids == name, positive)
            for name in names for metric in IDENTITY_METRICS}


def undefined(masks: Mapping[Key, np.ndarray], positive: np.ndarray, labels: tuple[str, str]) -> list[Skipped]:
    """The identity metrics whose cases hold one class (``labels``: the negative and positive label's names)."""
    out = []
    for (name, metric), mask in masks.items():
        pos, neg = int((mask & positive).sum()), int((mask & ~positive).sum())
        if not pos or not neg:
            lacking = labels[1] if not pos else labels[0]
            out.append(Skipped(name, metric, f"no {lacking} case among its {pos + neg}"))
    return out


@dataclass(frozen=True)
class BiasSettings:
    """What a bias measurement needs besides the scores."""

    identity_column: str
    labels: tuple[str, str]
    """The negative and the positive label."""
    power: float = -5.0
    resamples: int = 1000
    seed: int = 0
    confidence: float = 0.95


def _auc(scores: np.ndarray, mask: np.ndarray, key: Key, draws: CaseResamples,
         confidence: float) -> tuple[AucEstimate, np.ndarray]:
    positive = draws.positive
    replicates = draws.aucs(scores, mask)
    point = float(roc_auc_score(positive[mask], scores[mask]))
    bounds = interval(replicates, point, confidence)
    estimate = AucEstimate(key[1], key[0], int(mask.sum()), int((mask & positive).sum()),
                           int((mask & ~positive).sum()), point, bounds.low, bounds.high,
                           int((~np.isnan(replicates)).sum()))
    return estimate, replicates


def _final(overall: np.ndarray | None, per_metric: Mapping[str, list[np.ndarray]], power: float) -> np.ndarray | None:
    """The final bias metric on each resample (column 0 of each array: the full-sample value); None when the
    overall AUC or a metric of every identity is undefined."""
    if overall is None or any(not values for values in per_metric.values()):
        return None
    with np.errstate(divide="ignore", invalid="ignore"):
        means = [np.mean(np.stack(values) ** power, axis=0) ** (1 / power) for values in per_metric.values()]
    return METRIC_WEIGHT * (overall + np.sum(means, axis=0))


def measure_model(scores: np.ndarray, masks: Mapping[tuple[str, str], np.ndarray], draws: CaseResamples,
                  settings: BiasSettings) -> tuple[ModelBias, dict[Key, np.ndarray]]:
    """One model's bias metrics, and every AUC's (and the final metric's) full-sample value followed by its
    replicates, for paired comparisons."""
    values: dict[Key, np.ndarray] = {}
    overall_mask = np.ones(len(scores), dtype=bool)
    overall = None
    if draws.positive.any() and not draws.positive.all():
        overall, reps = _auc(scores, overall_mask, (None, OVERALL), draws, settings.confidence)
        values[(None, OVERALL)] = np.concatenate([[overall.auc], reps])
    aucs, per_metric = [], {metric: [] for metric in IDENTITY_METRICS}
    for key, mask in masks.items():
        estimate, reps = _auc(scores, mask, key, draws, settings.confidence)
        aucs.append(estimate)
        values[key] = np.concatenate([[estimate.auc], reps])
        per_metric[key[1]].append(values[key])
    power_means = {metric: power_mean([v[0] for v in vals], settings.power) if vals else None
                   for metric, vals in per_metric.items()}
    final = _final(values.get((None, OVERALL)), per_metric, settings.power)
    if final is not None:
        values[(None, FINAL)] = final
    summary = Estimate(None, None, None) if final is None else interval(final[1:], float(final[0]), settings.confidence)
    return ModelBias(overall, aucs, power_means, summary), values


def compare(teacher: Mapping[Key, np.ndarray], model: Mapping[Key, np.ndarray],
            confidence: float) -> ModelBiasChange:
    """A model against the teacher on the same resamples: every identity AUC's change (largest fall first, Holm
    across them) and the final metric's."""
    rows = []
    for key, values in model.items():
        if key[0] is None or key not in teacher:
            continue
        diff = values - teacher[key]
        bounds = interval(diff[1:], float(diff[0]), confidence)
        rows.append(BiasChange(key[0], key[1], float(teacher[key][0]), float(values[0]), float(diff[0]),
                               bounds.low, bounds.high, paired_p_value(diff[1:])))
    rows = [BiasChange(**{**asdict(r), "p_holm": adjusted})
            for r, adjusted in zip(rows, holm([r.p_value for r in rows]), strict=True)]
    order = {(r.identity, r.metric): i for i, r in enumerate(rows)}
    rows.sort(key=lambda r: (r.change, r.p_holm, order[(r.identity, r.metric)]))
    final_key = (None, FINAL)
    final = Estimate(None, None, None)
    if final_key in model and final_key in teacher:
        diff = model[final_key] - teacher[final_key]
        final = interval(diff[1:], float(diff[0]), confidence)
    return ModelBiasChange(final, rows)


def measure_bias(identities: Sequence[str], positive: Sequence[bool], scores: Mapping[str, Sequence[float]],
                 teacher: str | None, settings: BiasSettings, background: str | None = None) -> BiasReport:
    """The bias block of a check: ``identities`` names each case's identity (``background``: a case mentioning
    none), ``positive`` whether its gold label is the positive one, ``scores`` each model's positive-class
    probability per case."""
    positive = np.asarray(positive, dtype=bool)
    names = [g for g in dict.fromkeys(identities) if g != background]
    masks = identity_masks(identities, names, positive)
    skipped = undefined(masks, positive, settings.labels)
    gone = {(s.identity, s.metric) for s in skipped}
    masks = {key: mask for key, mask in masks.items() if key not in gone}
    ids = np.asarray(identities, dtype=object)
    report = BiasReport(
        identity_column=settings.identity_column, positive_label=settings.labels[1],
        identities=[IdentityCount(g, int((ids == g).sum()), int(((ids == g) & positive).sum()),
                                  int(((ids == g) & ~positive).sum())) for g in names],
        power=settings.power, resamples=settings.resamples, seed=settings.seed, confidence=settings.confidence,
        interval=f"{settings.confidence:.0%} percentile bootstrap ({settings.resamples} resamples of the suite's "
                 f"cases, seed {settings.seed}; the same resamples for every model, so differences are paired)",
        skipped=skipped)
    draws = CaseResamples(positive, settings.resamples, settings.seed)
    values = {}
    for model, model_scores in scores.items():
        report.models[model], values[model] = measure_model(np.asarray(model_scores, dtype=np.float64), masks,
                                                            draws, settings)
    if teacher in values:
        report.changes = {model: compare(values[teacher], v, settings.confidence)
                          for model, v in values.items() if model != teacher}
    return report


def skipped_notes(report: BiasReport) -> list[str]:
    """One note per identity with an undefined metric, naming it and why."""
    by_identity: dict[str, list[Skipped]] = {}
    for s in report.skipped:
        by_identity.setdefault(s.identity, []).append(s)
    return [f"bias: identity {identity!r} skipped for {', '.join(s.metric for s in items)} "
            f"({'; '.join(f'{s.metric}: {s.reason}' for s in items)}); left out of the power means"
            for identity, items in by_identity.items()]
