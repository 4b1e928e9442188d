"""Flag a model that learned nothing: (almost) one class for every validation item, or no better than the majority.

Multi-label gold (0/1 rows): a label the model turns on for every validation item, or for none, is flagged.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from sklearn.metrics import f1_score

from distilora.label_space import gold_array, is_multi_label


def collapse_check(y_true: Sequence[int], y_pred: Sequence[int], y_train: Sequence[int], labels: list[str],
                   share_limit: float) -> dict[str, Any]:
    """Validation predictions ``y_pred`` against the truth: collapsed when one class gets at least ``share_limit``
    of them, or when macro-F1 is not above always answering the training majority class."""
    if is_multi_label(y_true):
        return label_collapse_check(y_true, y_pred, y_train, labels)
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    classes = list(range(len(labels)))
    counts = np.bincount(y_pred, minlength=len(labels))
    top = int(counts.argmax())
    top_share = float(counts[top] / max(1, len(y_pred)))
    majority = int(np.bincount(np.asarray(y_train), minlength=len(labels)).argmax())
    majority_f1 = float(f1_score(y_true, np.full_like(y_true, majority), labels=classes, average="macro",
                                 zero_division=0))
    model_f1 = float(f1_score(y_true, y_pred, labels=classes, average="macro", zero_division=0))
    reasons = []
    if top_share >= share_limit:
        reasons.append(f"answers {labels[top]!r} for {top_share:.1%} of validation")
    if model_f1 <= majority_f1 + 1e-9:
        reasons.append(f"validation macro-F1 {model_f1:.4f} is not above the majority baseline's {majority_f1:.4f}")
    return {"collapsed": bool(reasons), "reasons": reasons, "top_class_share": round(top_share, 4),
            "majority_macro_f1": round(majority_f1, 4)}


def label_collapse_check(y_true: Sequence[Sequence[int]], y_pred: Sequence[Sequence[int]],
                         y_train: Sequence[Sequence[int]], labels: list[str]) -> dict[str, Any]:
    """Multi-label validation decisions ``y_pred`` (0/1 rows) against the truth: collapsed when a label is on for
    every item or for none, or when macro-F1 over labels is not above answering each label's training majority
    value. ``top_class_share``: the largest share of items any label gives its single most frequent decision."""
    y_true, y_pred, y_train = gold_array(y_true), gold_array(y_pred), gold_array(y_train)
    on_share = y_pred.mean(axis=0) if len(y_pred) else np.zeros(len(labels))
    majority = (2 * y_train.sum(axis=0) > len(y_train)).astype(np.int64)  # ties: off
    majority_f1 = float(f1_score(y_true, np.tile(majority, (len(y_true), 1)), average="macro", zero_division=0))
    model_f1 = float(f1_score(y_true, y_pred, average="macro", zero_division=0))
    reasons = [f"turns {label!r} {'on' if share == 1 else 'off'} for every validation item"
               for label, share in zip(labels, on_share, strict=True) if share in (0.0, 1.0)]
    if model_f1 <= majority_f1 + 1e-9:
        reasons.append(f"validation macro-F1 {model_f1:.4f} is not above the per-label majority baseline's "
                       f"{majority_f1:.4f}")
    return {"collapsed": bool(reasons), "reasons": reasons,
            "top_class_share": round(float(np.maximum(on_share, 1 - on_share).max()), 4),
            "majority_macro_f1": round(majority_f1, 4)}
