"""Classification metrics from logits (scikit-learn does the counting), and the Wilson interval of a share.

Single-label gold labels (class ids, ``(n,)``) get softmax / argmax metrics; multi-label gold labels (0/1 rows,
``(n, labels)``) get per-label sigmoid metrics (:func:`multi_label_metrics`).
"""

from __future__ import annotations

import numpy as np
from scipy.special import expit, log_expit, log_softmax, softmax
from scipy.stats import binomtest
from sklearn.metrics import (
    accuracy_score,
    confusion_matrix,
    f1_score,
    hamming_loss,
    label_ranking_average_precision_score,
    multilabel_confusion_matrix,
    precision_recall_fscore_support,
    roc_auc_score,
)

from distilora.label_space import decide_labels, gold_array, is_multi_label


def classification_metrics(y_true, logits, labels: list[str], y_pred=None) -> dict:
    """Loss (mean cross-entropy), accuracy, macro P/R/F1, per-class F1, confusion matrix, ROC-AUC if binary.

    The labels are the argmax of ``logits`` unless ``y_pred`` gives them (a decision threshold); loss and ROC-AUC
    always come from ``logits``.
    """
    y_true = np.asarray(y_true, dtype=np.int64)
    logits = np.asarray(logits[0] if isinstance(logits, tuple) else logits, dtype=np.float64)
    if is_multi_label(y_true):
        return multi_label_metrics(y_true, logits, labels, y_pred)
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


def multi_label_metrics(y_true, logits: np.ndarray, labels: list[str], y_pred=None) -> dict:
    """The metrics of a multi-label task (gold labels: 0/1 rows, one column per label).

    Decisions are ``sigmoid(logits) >= 0.5`` unless ``y_pred`` (0/1 rows) gives them. ``accuracy`` is subset
    accuracy (every label right), ``macro_f1`` / ``precision`` / ``recall`` the unweighted means over labels, ``loss``
    the mean binary cross-entropy of ``sigmoid(logits)`` over every (item, label), ``roc_auc`` the mean of the labels'
    ROC-AUCs that are defined (a label with a single gold value on the split has none), ``confusion_matrix`` one
    ``[tn, fp, fn, tp]`` row per label, ``label_ranking_ap`` scikit-learn's label-ranking average precision.
    """
    y_true, logits = gold_array(y_true), np.asarray(logits, dtype=np.float64)
    if y_true.shape != logits.shape or y_true.shape[1] != len(labels):
        raise ValueError(f"multi-label gold labels {y_true.shape} and logits {logits.shape} must both be "
                         f"(items, {len(labels)} labels)")
    probs = expit(logits)
    y_pred = decide_labels(probs) if y_pred is None else gold_array(y_pred)
    per_label = _per_label_scores(y_true, y_pred, probs, labels)
    aucs = [scores["roc_auc"] for scores in per_label if scores["roc_auc"] is not None]
    return {
        "n": int(len(y_true)),
        "loss": float(-(y_true * log_expit(logits) + (1 - y_true) * log_expit(-logits)).mean()),
        "accuracy": float(accuracy_score(y_true, y_pred)),
        "macro_f1": float(np.mean([scores["f1"] for scores in per_label])),
        "precision": float(np.mean([scores["precision"] for scores in per_label])),
        "recall": float(np.mean([scores["recall"] for scores in per_label])),
        "f1_per_class": [scores["f1"] for scores in per_label],
        "confusion_matrix": multilabel_confusion_matrix(y_true, y_pred).reshape(len(labels), 4).tolist(),
        "roc_auc": float(np.mean(aucs)) if aucs else None,
        "micro_f1": float(f1_score(y_true, y_pred, average="micro", zero_division=0)),
        "hamming_loss": float(hamming_loss(y_true, y_pred)),
        "label_ranking_ap": float(label_ranking_average_precision_score(y_true, probs)),
        "per_label": per_label,
    }


def _per_label_scores(y_true: np.ndarray, y_pred: np.ndarray, probs: np.ndarray, labels: list[str]) -> list[dict]:
    """Each label's binary precision / recall / F1 / ROC-AUC (None with a single gold value), support, predicted."""
    precision, recall, f1, support = precision_recall_fscore_support(y_true, y_pred, average=None, zero_division=0)
    out = []
    for j, label in enumerate(labels):
        both = len(np.unique(y_true[:, j])) == 2
        out.append({"label": label, "precision": float(precision[j]), "recall": float(recall[j]), "f1": float(f1[j]),
                    "roc_auc": float(roc_auc_score(y_true[:, j], probs[:, j])) if both else None,
                    "support": int(support[j]), "predicted": int(y_pred[:, j].sum())})
    return out


def wilson(correct: int, n: int, confidence: float = 0.95) -> tuple[float, float]:
    """The Wilson score interval of ``correct / n`` (scipy's ``binomtest(...).proportion_ci``)."""
    interval = binomtest(int(correct), int(n)).proportion_ci(confidence_level=confidence, method="wilson")
    return float(interval.low), float(interval.high)
