"""Apply the statistics to a run: intervals per model, the paired comparisons, and the seed summaries."""

from __future__ import annotations

from collections.abc import Mapping
from itertools import combinations

import numpy as np

from distilora.report import statistics as st
from distilora.report.context import SplitPredictions
from distilora.routes.base import RouteKind, names_of_kind

ALPHA = 0.05


def comparison_pairs(models: Mapping[str, Mapping]) -> list[tuple[str, str, str]]:
    """``(a, b, kind)``: every pair of students, each student vs the teacher, each student vs each LoRA model."""
    by_kind = {kind: names_of_kind(models, kind) for kind in RouteKind}
    students = by_kind[RouteKind.DISTIL]
    pairs = [(a, b, "student vs student") for a, b in combinations(students, 2)]
    pairs += [(s, t, "student vs teacher") for s in students for t in by_kind[RouteKind.FINE_TUNE]]
    pairs += [(s, lora, "student vs LoRA") for s in students for lora in by_kind[RouteKind.LORA]]
    return pairs


def ranking(intervals: Mapping[str, Mapping], names: list[str]) -> list[str]:
    """Model names by test macro-F1, best first (ties keep the run's order)."""
    return sorted(names, key=lambda n: -intervals[n]["macro_f1"]["estimate"])


def run_statistics(
    models: Mapping[str, Mapping],
    predictions: Mapping[str, Mapping[str, SplitPredictions]],
    num_classes: int,
    seed_runs: Mapping[str, list] | None = None,
    *,
    split: str = "test",
    n_resamples: int = st.RESAMPLES,
    seed: int = st.SEED,
) -> dict:
    """Intervals for every model in ``predictions``, paired comparisons among ``models``, and seed summaries."""
    scored = {name: p[split] for name, p in predictions.items() if split in p}
    if not scored:
        raise ValueError(f"no {split} predictions to compute statistics from")
    y_true = _shared_labels(scored, split)
    y_pred = {name: p.y_pred for name, p in scored.items()}
    replicates = st.bootstrap_replicates(y_true, y_pred, num_classes, n_resamples=n_resamples, seed=seed)
    intervals = {
        name: {metric: st.percentile_interval(replicates[name][metric],
                                              st.point_estimate(metric, y_true, y_pred[name], num_classes)).to_dict()
               for metric in st.METRICS}
        for name in scored
    }

    pairs = [(a, b, kind) for a, b, kind in comparison_pairs(models) if a in scored and b in scored]
    ranked = ranking(intervals, [n for n in models if n in scored])
    if len(ranked) >= 2 and not {tuple(sorted(p[:2])) for p in pairs} & {tuple(sorted(ranked[:2]))}:
        pairs.append((ranked[0], ranked[1], "best vs runner-up"))
    comparisons = [_compare(a, b, kind, y_true, y_pred, scored, replicates, intervals) for a, b, kind in pairs]
    for comparison, adjusted in zip(comparisons, st.holm([c["mcnemar"]["p_value"] for c in comparisons]),
                                    strict=True):
        comparison["mcnemar"]["p_holm"] = adjusted
        comparison["mcnemar_significant"] = adjusted < ALPHA

    return {
        "method": {
            "split": split,
            "n_items": int(len(y_true)),
            "confidence": st.CONFIDENCE,
            "bootstrap": "percentile, resampling test items; all models on the same resamples (paired)",
            "resamples": n_resamples,
            "seed": seed,
            "paired_test": "McNemar exact: two-sided binomial test (p = 0.5) on the discordant items",
            "multiple_comparisons": f"Holm over the {len(comparisons)} comparisons; intervals not adjusted",
            "alpha": ALPHA,
        },
        "intervals": intervals,
        "comparisons": comparisons,
        "seeds": {name: st.summarise_seeds(runs) for name, runs in (seed_runs or {}).items() if runs},
    }


def _shared_labels(scored: Mapping[str, SplitPredictions], split: str) -> np.ndarray:
    names = list(scored)
    y_true = scored[names[0]].y_true
    for name in names[1:]:
        if not np.array_equal(scored[name].y_true, y_true):
            raise ValueError(f"predictions of {name} and {names[0]} have different {split} labels; "
                             "paired statistics need the same items")
    return y_true


def _compare(a: str, b: str, kind: str, y_true: np.ndarray, y_pred: Mapping[str, np.ndarray],
             scored: Mapping[str, SplitPredictions], replicates: Mapping, intervals: Mapping) -> dict:
    differences = {}
    for metric in st.METRICS:
        estimate = intervals[a][metric]["estimate"] - intervals[b][metric]["estimate"]
        interval = st.percentile_interval(replicates[a][metric] - replicates[b][metric], estimate)
        differences[metric] = interval.to_dict()
    test = st.mcnemar_exact(scored[a].correct, scored[b].correct)
    f1 = differences["macro_f1"]
    return {
        "a": a,
        "b": b,
        "kind": kind,
        "macro_f1_difference": f1,
        "accuracy_difference": differences["accuracy"],
        # A zero-width interval at 0 (identical predictions) is "contains 0", hence not significant.
        "difference_significant": bool(f1["low"] > 0 or f1["high"] < 0),
        "mcnemar": {"a_only_correct": test.a_only_correct, "b_only_correct": test.b_only_correct,
                    "p_value": test.p_value},
    }
