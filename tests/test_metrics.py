"""Metrics against a hand-worked example and against scikit-learn."""

from __future__ import annotations

import math

import numpy as np
import pytest
from sklearn.metrics import f1_score, precision_score, recall_score, roc_auc_score

from distilora.evaluation.metrics import classification_metrics

LABELS3 = ["neutral", "toxic", "mixed"]
# Seven examples, three classes. Predictions (argmax of the logits): 0, 1, 1, 1, 2, 0, 2.
Y_TRUE = [0, 0, 1, 1, 2, 2, 2]
LOGITS = np.array([
    [2.0, 0.1, -1.0],   # true 0, pred 0
    [0.2, 1.5, 0.0],    # true 0, pred 1
    [-0.5, 3.0, 0.5],   # true 1, pred 1
    [0.0, 0.4, 0.3],    # true 1, pred 1
    [-1.0, 0.0, 2.2],   # true 2, pred 2
    [1.1, 0.3, 1.0],    # true 2, pred 0
    [0.0, -2.0, 0.1],   # true 2, pred 2
])
Y_PRED = [0, 1, 1, 1, 2, 0, 2]


def test_three_class_example_by_hand():
    m = classification_metrics(Y_TRUE, LOGITS, LABELS3)
    # rows = true class, columns = predicted class
    assert m["confusion_matrix"] == [[1, 1, 0],
                                     [0, 2, 0],
                                     [1, 0, 2]]
    assert m["n"] == 7
    assert m["accuracy"] == pytest.approx(5 / 7)
    # per class: precision tp/(tp+fp), recall tp/(tp+fn)
    # class 0: tp 1, fp 1, fn 1 → P 1/2, R 1/2, F1 1/2
    # class 1: tp 2, fp 1, fn 0 → P 2/3, R 1,   F1 0.8
    # class 2: tp 2, fp 0, fn 1 → P 1,   R 2/3, F1 0.8
    assert m["f1_per_class"] == pytest.approx([0.5, 0.8, 0.8])
    assert m["macro_f1"] == pytest.approx((0.5 + 0.8 + 0.8) / 3)
    assert m["precision"] == pytest.approx((1 / 2 + 2 / 3 + 1) / 3)
    assert m["recall"] == pytest.approx((1 / 2 + 1 + 2 / 3) / 3)
    assert "roc_auc" not in m, "ROC-AUC is only reported for binary tasks"


def test_loss_is_mean_cross_entropy():
    m = classification_metrics(Y_TRUE, LOGITS, LABELS3)
    by_hand = 0.0
    for row, y in zip(LOGITS.tolist(), Y_TRUE, strict=True):
        by_hand += -(row[y] - math.log(sum(math.exp(v) for v in row)))
    assert m["loss"] == pytest.approx(by_hand / len(Y_TRUE), rel=1e-9)


def test_agrees_with_sklearn():
    rng = np.random.default_rng(0)
    y_true = rng.integers(0, 4, size=200)
    logits = rng.normal(size=(200, 4)) + np.eye(4)[y_true] * 0.8
    y_pred = logits.argmax(1)
    m = classification_metrics(y_true, logits, ["a", "b", "c", "d"])
    assert m["macro_f1"] == pytest.approx(f1_score(y_true, y_pred, average="macro"))
    assert m["precision"] == pytest.approx(precision_score(y_true, y_pred, average="macro"))
    assert m["recall"] == pytest.approx(recall_score(y_true, y_pred, average="macro"))
    assert m["f1_per_class"] == pytest.approx(f1_score(y_true, y_pred, average=None).tolist())
    assert m["accuracy"] == pytest.approx(float((y_true == y_pred).mean()))
    assert np.asarray(m["confusion_matrix"]).sum() == 200


def test_binary_reports_roc_auc_from_probabilities():
    y_true = [0, 0, 1, 1, 1, 0]
    logits = np.array([[1.0, 0.0], [0.2, 0.3], [0.0, 2.0], [0.5, 0.4], [-1.0, 1.0], [0.0, -0.5]])
    m = classification_metrics(y_true, logits, ["no", "yes"])
    p_yes = np.exp(logits[:, 1]) / np.exp(logits).sum(1)
    assert m["roc_auc"] == pytest.approx(roc_auc_score(y_true, p_yes))
    assert m["confusion_matrix"] == [[2, 1], [1, 2]]
    # Only one class present in y_true: ROC-AUC is undefined, reported as None rather than crashing.
    assert classification_metrics([1, 1], logits[:2], ["no", "yes"])["roc_auc"] is None


def test_absent_class_keeps_full_shape_and_zero_f1():
    """A class that is neither true nor predicted still has its row, column and F1 slot."""
    m = classification_metrics([0, 1, 0], np.array([[1.0, 0, 0], [0, 1.0, 0], [1.0, 0, 0]]), LABELS3)
    assert m["confusion_matrix"] == [[2, 0, 0], [0, 1, 0], [0, 0, 0]]
    assert len(m["f1_per_class"]) == 3 and m["f1_per_class"][2] == 0.0
    assert m["macro_f1"] == pytest.approx(2 / 3)


def test_accepts_trainer_tuple_predictions_and_lists():
    as_tuple = classification_metrics(np.array(Y_TRUE), (LOGITS, np.zeros((7, 4))), LABELS3)
    as_list = classification_metrics(Y_TRUE, LOGITS.tolist(), LABELS3)
    assert as_tuple == as_list == classification_metrics(Y_TRUE, LOGITS, LABELS3)
