"""Flag a model that learned nothing: (almost) one class for every validation item, or no better than the majority."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from sklearn.metrics import f1_score


def collapse_check(y_true: Sequence[int], y_pred: Sequence[int], y_train: Sequence[int], labels: list[str],
                   share_limit: float) -> dict[str, Any]:
    """Validation predictions ``y_pred`` against the truth: collapsed when one class gets at least ``share_limit``
    of them, or when macro-F1 is not above always answering the training majority class."""
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
