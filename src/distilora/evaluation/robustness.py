"""Label consistency under spelling perturbations: how many test decisions a perturbation changes, and the scores
on the perturbed copies (results.json's ``robustness``, :class:`~distilora.results.Robustness`).

Multi-label decisions (0/1 rows): an item is consistent when none of its labels' decisions changed; accuracy is
subset accuracy and macro-F1 the mean over labels."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from distilora.evaluation.calibration import proportion_interval
from distilora.evaluation.statistics import accuracy, item_correct, macro_f1

SEED = 0
"""The seed of the perturbed test copies: fixed, so that every run and model is measured on the same texts."""


def robustness_summary(y_true: Sequence[int], clean: np.ndarray, perturbed: Mapping[str, np.ndarray],
                       changed_texts: Mapping[str, int], num_labels: int) -> dict[str, Any]:
    """Consistency (share of items whose decision ``clean`` no perturbation changed, with its Wilson interval),
    per kind and over all; accuracy and macro-F1 on each perturbed copy and their mean over the kinds."""
    y_true, clean = np.asarray(y_true), np.asarray(clean)
    unchanged = np.ones(len(y_true), dtype=bool)
    kinds: dict[str, dict[str, Any]] = {}
    for kind, decided in perturbed.items():
        same = item_correct(clean, np.asarray(decided))
        unchanged &= same
        kinds[kind] = {"consistency": proportion_interval(int(same.sum()), len(same)),
                       "accuracy": accuracy(y_true, decided), "macro_f1": macro_f1(y_true, decided, num_labels),
                       "changed_texts": int(changed_texts[kind])}
    scores = list(kinds.values())
    return {
        "consistency": proportion_interval(int(unchanged.sum()), len(unchanged)),
        "accuracy": float(np.mean([s["accuracy"] for s in scores])) if scores else None,
        "macro_f1": float(np.mean([s["macro_f1"] for s in scores])) if scores else None,
        "clean_accuracy": accuracy(y_true, clean), "clean_macro_f1": macro_f1(y_true, clean, num_labels),
        "kinds": kinds,
    }
