"""Single-label tasks (exclusive classes: softmax, argmax) and multi-label tasks (independent 0/1 labels: sigmoid,
one threshold per label), told apart by the shape of their gold labels.

A single-label split's gold labels are class ids, shape ``(n,)``; a multi-label split's are 0/1 rows, shape
``(n, labels)``. Logits are ``(n, labels)`` either way. Every reader that takes gold labels (metrics, calibration,
collapse check, intervals, checks) decides by :func:`is_multi_label`, so no flag has to travel beside them.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy.special import expit, softmax

MULTI_LABEL_PROBLEM = "multi_label_classification"
"""``problem_type`` of a transformers config whose model is multi-label (sigmoid outputs, BCE)."""
DEFAULT_THRESHOLD = 0.5
"""A multi-label model's decision without calibration: every label whose probability is at least this."""


def is_multi_label(y_true: Sequence | np.ndarray) -> bool:
    """Gold labels given as 0/1 rows (one column per label) rather than class ids."""
    return np.ndim(y_true) == 2


def gold_array(y_true: Sequence | np.ndarray) -> np.ndarray:
    """Gold labels as an int64 array: ``(n,)`` class ids or ``(n, labels)`` 0/1 rows."""
    return np.asarray(y_true, dtype=np.int64)


def label_probabilities(logits: np.ndarray, multi_label: bool,
                        temperature: float | Sequence[float] | np.ndarray = 1.0) -> np.ndarray:
    """``softmax(logits / T)`` over classes, or ``sigmoid(logits / T_label)`` per label (``temperature``: one value,
    or one per label)."""
    scaled = np.asarray(logits, dtype=np.float64) / np.asarray(temperature, dtype=np.float64)
    return expit(scaled) if multi_label else softmax(scaled, axis=-1)


def decide_labels(probs: np.ndarray, thresholds: float | Sequence[float] | np.ndarray = DEFAULT_THRESHOLD
                  ) -> np.ndarray:
    """A multi-label model's decisions: 1 where a label's probability is at least its threshold, shape of ``probs``."""
    probs = np.asarray(probs, dtype=np.float64)
    return (probs >= np.asarray(thresholds, dtype=np.float64)).astype(np.int64)


def default_decisions(logits: np.ndarray, multi_label: bool) -> np.ndarray:
    """What an uncalibrated model decides (a plain ``pipeline``'s answer): the argmax class id per row, or per label
    1 where ``sigmoid(logit) >= 0.5`` (``logit >= 0``)."""
    logits = np.asarray(logits)
    if multi_label:
        return (logits >= 0).astype(np.int64)
    return logits.argmax(axis=-1) if len(logits) else np.zeros(0, dtype=np.int64)


def decided_names(row: Sequence[int] | np.ndarray, labels: Sequence[str]) -> list[str]:
    """The names of the labels a 0/1 decision row turns on, in label order."""
    return [label for label, on in zip(labels, row, strict=True) if on]
