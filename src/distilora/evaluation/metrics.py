"""Classification metrics from logits (scikit-learn does the counting), and the Wilson interval of a share."""

from __future__ import annotations

import numpy as np
from scipy.special import log_softmax, softmax
from scipy.stats import binomtest
from sklearn.metrics import (
    accuracy_score,
    confusion_matrix,
    f1_score,
    precision_recall_fscore_support,
    roc_auc_score,
)


def classification_metrics(y_true, logits, labels: list[str], y_pred=None) -> dict:
    """Loss (mean cross-entropy), accuracy, macro P/R/F1, per-class F1, confusion matrix, ROC-AUC if binary.

    The labels are the argmax of ``logits`` unless ``y_pred`` gives them (a decision threshold); loss and ROC-AUC
    always come from ``logits``.
    """
    y_true = np.asarray(y_true, dtype=np.int64)
    logits = np.asarray(logits[0] if isinstance(logits, tuple) else logits, dtype=np.float64)
    classes = list(range(len(labels)))
    y_pred = logits.argmax(axis=-1) if y_pred is None else np.asarray(y_pred, dtype=np.int64)
    log_probs = log_softmax(logits, axis=-1)
    precision, recall, f1, _ = precision_recall_fscore_support(
        y_true, y_pred, labels=classes, average="macro", zero_division=0
    )
    metrics = {
        "n": int(len(y_true)),
        "loss": float(-log_probs[np.arange(len(y_true)), y_true].mean()),
        "accuracy": float(accuracy_score(y_true, y_pred)),
        "macro_f1": float(f1),
        "precision": float(precision),
        "recall": float(recall),
        "f1_per_class": [float(v) for v in f1_score(y_true, y_pred, labels=classes, average=None, zero_division=0)],
        "confusion_matrix": confusion_matrix(y_true, y_pred, labels=classes).tolist(),
    }
    if len(labels) == 2:
        both_present = len(np.unique(y_true)) == 2
        metrics["roc_auc"] = float(roc_auc_score(y_true, softmax(logits, axis=-1)[:, 1])) if both_present else None
    return metrics


def wilson(correct: int, n: int, confidence: float = 0.95) -> tuple[float, float]:
    """The Wilson score interval of ``correct / n`` (scipy's ``binomtest(...).proportion_ci``)."""
    interval = binomtest(int(correct), int(n)).proportion_ci(confidence_level=confidence, method="wilson")
    return float(interval.low), float(interval.high)
