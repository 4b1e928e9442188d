"""Apply the statistics to a run: intervals per model, the paired comparisons, and the seed summaries."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from distilora.evaluation import statistics as st
from distilora.label_space import is_multi_label
from distilora.report.context import SplitPredictions
from distilora.results import (
    Comparison,
    McNemar,
    MetricIntervals,
    ModelResult,
    RunStatistics,
    SeedRun,
    StatisticsMethod,
)
from distilora.routes.kinds import RouteKind
from distilora.routes.tuned import TUNED_FROM

ALPHA = 0.05


KIND_WORDS = {RouteKind.FINE_TUNE: "teacher", RouteKind.DISTIL: "student", RouteKind.LORA: "LoRA",
              RouteKind.HYBRID: "hybrid", RouteKind.BASELINE: "baseline"}
PLAIN_LORA = "lora"
TUNED_ABLATION = "tuned student vs tuned labels-only ablation"


def ablation_of(models: Mapping[str, ModelResult]) -> tuple[str, str] | None:
    """``(model, its labels-only ablation)`` from the first entry with an ``ablation_of`` naming a model in the run."""
    for name, entry in models.items():
        target = entry.ablation_of
        if target in models and target != name:
            return target, name
    return None


def _plain_lora(by_kind: Mapping[RouteKind, list[str]]) -> str | None:
    loras = by_kind[RouteKind.LORA]
    return PLAIN_LORA if PLAIN_LORA in loras else next(iter(loras), None)


def _of_kind(models: Mapping[str, ModelResult], kind: RouteKind) -> list[str]:
    return [name for name, entry in models.items() if entry.route == kind]


def tuned_defaults(models: Mapping[str, ModelResult]) -> dict[str, str]:
    """``{tuned model: the route it was tuned from}`` for each tuned model whose route is in the run too."""
    return {name: entry.details[TUNED_FROM] for name, entry in models.items()
            if entry.details.get(TUNED_FROM) in models}


def comparison_pairs(models: Mapping[str, ModelResult]) -> list[tuple[str, str, str]]:
    """``(a, b, kind)``, a readable set (not every pair): each other student vs the reference student (the one
    with a labels-only ablation, else the first), every non-baseline model vs the teacher, students and hybrids
    vs plain LoRA, students and hybrids vs the labels-only ablation, and each tuned model vs its route's default."""
    by_kind = {kind: _of_kind(models, kind) for kind in RouteKind}
    students, learners = by_kind[RouteKind.DISTIL], by_kind[RouteKind.DISTIL] + by_kind[RouteKind.HYBRID]
    ablation = ablation_of(models)
    reference = ablation[0] if ablation and ablation[0] in students else next(iter(students), None)
    word = {name: KIND_WORDS.get(entry.route, "model") for name, entry in models.items()}
    tuned = tuned_defaults(models)
    pairs = [(reference, s, "student vs student") for s in students if s != reference and s not in tuned]
    pairs += [(m, t, f"{word[m]} vs teacher") for t in by_kind[RouteKind.FINE_TUNE] for m in models
              if models[m].route not in (RouteKind.FINE_TUNE, RouteKind.BASELINE)]
    lora = _plain_lora(by_kind)
    pairs += [(m, lora, f"{word[m]} vs LoRA") for m in learners if lora]
    if ablation:
        pairs += [(m, ablation[1], f"{word[m]} vs labels-only ablation") for m in learners]
    pairs += [(name, default, "tuned vs default") for name, default in tuned.items()]
    tuned_of = {default: name for name, default in tuned.items()}
    if ablation and all(name in tuned_of for name in ablation):
        pairs.append((tuned_of[ablation[0]], tuned_of[ablation[1]], TUNED_ABLATION))
    return _unique(pairs)


def _unique(pairs: list[tuple[str, str, str]]) -> list[tuple[str, str, str]]:
    seen: set[frozenset[str]] = set()
    out = []
    for a, b, kind in pairs:
        key = frozenset((a, b))
        if a != b and key not in seen:
            seen.add(key)
            out.append((a, b, kind))
    return out


def ranking(intervals: Mapping[str, MetricIntervals], names: list[str]) -> list[str]:
    """Model names by test macro-F1, best first (ties keep the run's order)."""
    return sorted(names, key=lambda n: -intervals[n].macro_f1.estimate)


def run_statistics(
    models: Mapping[str, ModelResult],
    predictions: Mapping[str, Mapping[str, SplitPredictions]],
    num_classes: int,
    seed_runs: Mapping[str, list[SeedRun]] | None = None,
    *,
    split: str = "test",
    n_resamples: int = st.RESAMPLES,
    seed: int = st.SEED,
    labels: Sequence[str] | None = None,
) -> RunStatistics:
    """Intervals for every model in ``predictions``, paired comparisons among ``models``, and seed summaries.

    Multi-label predictions (0/1 gold rows): the intervals are of subset accuracy and macro-F1 over labels, each
    comparison's ``mcnemar`` pairs the items with every label right and its ``per_label`` holds McNemar on each
    label's decisions (named from ``labels``), Holm-adjusted over every label test of every comparison."""
    scored = {name: p[split] for name, p in predictions.items() if split in p}
    if not scored:
        raise ValueError(f"no {split} predictions to compute statistics from")
    y_true = _shared_labels(scored, split)
    y_pred = {name: p.y_pred for name, p in scored.items()}
    replicates = st.bootstrap_replicates(y_true, y_pred, num_classes, n_resamples=n_resamples, seed=seed)
    intervals = {
        name: MetricIntervals(**{metric: st.percentile_interval(replicates[name][metric],
                                                                st.point_estimate(metric, y_true, y_pred[name],
                                                                                  num_classes))
                                 for metric in st.METRICS})
        for name in scored
    }

    pairs = [(a, b, kind) for a, b, kind in comparison_pairs(models) if a in scored and b in scored]
    ranked = ranking(intervals, [n for n in models if n in scored])
    if len(ranked) >= 2 and not {tuple(sorted(p[:2])) for p in pairs} & {tuple(sorted(ranked[:2]))}:
        pairs.append((ranked[0], ranked[1], "best vs runner-up"))
    comparisons = [_compare(a, b, kind, y_true, y_pred, scored, replicates, intervals) for a, b, kind in pairs]
    for comparison, adjusted in zip(comparisons, st.holm([c.mcnemar.p_value for c in comparisons]), strict=True):
        comparison.mcnemar.p_holm = adjusted
        comparison.mcnemar_significant = adjusted < ALPHA
    method = StatisticsMethod(
        split=split, n_items=int(len(y_true)), confidence=st.CONFIDENCE,
        bootstrap="percentile, resampling test items; all models on the same resamples (paired)",
        resamples=n_resamples, seed=seed,
        paired_test="McNemar exact: two-sided binomial test (p = 0.5) on the discordant items",
        multiple_comparisons=f"Holm over the {len(comparisons)} comparisons; intervals not adjusted", alpha=ALPHA)
    if is_multi_label(y_true):
        _add_label_tests(comparisons, scored, list(labels or [f"label {j}" for j in range(y_true.shape[1])]),
                         method)
    return RunStatistics(method=method, intervals=intervals, comparisons=comparisons,
                         seeds={name: st.summarise_seeds(runs) for name, runs in (seed_runs or {}).items() if runs})


def _shared_labels(scored: Mapping[str, SplitPredictions], split: str) -> np.ndarray:
    names = list(scored)
    y_true = scored[names[0]].y_true
    for name in names[1:]:
        if not np.array_equal(scored[name].y_true, y_true):
            raise ValueError(f"predictions of {name} and {names[0]} have different {split} labels; "
                             "paired statistics need the same items")
    return y_true


def _compare(a: str, b: str, kind: str, y_true: np.ndarray, y_pred: Mapping[str, np.ndarray],
             scored: Mapping[str, SplitPredictions], replicates: Mapping,
             intervals: Mapping[str, MetricIntervals]) -> Comparison:
    differences = {}
    for metric in st.METRICS:
        estimate = getattr(intervals[a], metric).estimate - getattr(intervals[b], metric).estimate
        differences[metric] = st.percentile_interval(replicates[a][metric] - replicates[b][metric], estimate)
    test = st.mcnemar_exact(scored[a].correct, scored[b].correct)
    f1 = differences["macro_f1"]
    return Comparison(
        a=a, b=b, kind=kind, macro_f1_difference=f1, accuracy_difference=differences["accuracy"],
        # A zero-width interval at 0 (identical predictions) is "contains 0", hence not significant.
        difference_significant=bool(f1.low > 0 or f1.high < 0),
        mcnemar=McNemar(a_only_correct=test.a_only_correct, b_only_correct=test.b_only_correct,
                        p_value=test.p_value))


def _add_label_tests(comparisons: list[Comparison], scored: Mapping[str, SplitPredictions], labels: list[str],
                     method: StatisticsMethod) -> None:
    """Each comparison's McNemar per label, Holm-adjusted over all of them together; ``method`` says so."""
    tests = []
    for comparison in comparisons:
        a, b = scored[comparison.a], scored[comparison.b]
        right_a, right_b = a.y_pred == a.y_true, b.y_pred == b.y_true
        comparison.per_label = []
        for j, label in enumerate(labels):
            test = st.mcnemar_exact(right_a[:, j], right_b[:, j])
            comparison.per_label.append(McNemar(a_only_correct=test.a_only_correct,
                                                b_only_correct=test.b_only_correct, p_value=test.p_value,
                                                label=label))
        tests += comparison.per_label
    for test, adjusted in zip(tests, st.holm([t.p_value for t in tests]), strict=True):
        test.p_holm = adjusted
    method.paired_test += ("; multi-label: the items with every label right, and per label on that label's "
                           "decisions")
    method.multiple_comparisons += f"; the {len(tests)} per-label tests Holm-adjusted together"
