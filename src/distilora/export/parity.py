"""How far an exported model's answers are from the PyTorch model's, on the same items: label agreement at the argmax
and at the decision the export is served with (its calibration's temperature and threshold), the largest
class-probability difference, both models' macro-F1 and the paired-bootstrap CI of their difference; and the gate on
both agreements.

A multi-label model (0/1 gold rows) is compared label by label: an item agrees when *all* its labels are decided the
same, at 0.5 on the raw sigmoid (in place of the argmax) and at the served per-label thresholds (calibration.json's
temperatures and thresholds, else 0.5); ``per_label`` gives each label's agreement and largest sigmoid-probability
difference, and macro-F1 is over labels."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np
from scipy.special import softmax
from scipy.stats import bootstrap

from distilora.evaluation.calibration import Calibration
from distilora.evaluation.statistics import CONFIDENCE, bootstrap_replicates, macro_f1, percentile_interval
from distilora.label_space import DEFAULT_THRESHOLD, decide_labels, gold_array, is_multi_label, label_probabilities
from distilora.results import Interval

REFERENCE, EXPORTED = "pytorch", "onnx"
ARGMAX_LABELS, DECISION_LABELS = "argmax", "decision"
GATE_RULE = ("the label agreement at the argmax and at the served decision (calibration.json's temperature and "
             "threshold) on validation and on test must each be >= min_agreement (multi-label: an item agrees when "
             "all its labels are decided the same, at 0.5 in place of the argmax and at the per-label thresholds)")


def labels_of(logits: np.ndarray) -> np.ndarray:
    return np.asarray(logits).argmax(axis=1) if len(logits) else np.zeros(0, dtype=np.int64)


def agreement(reference_logits: np.ndarray, exported_logits: np.ndarray) -> float:
    """The share of items whose predicted label is the same (1.0 for no items)."""
    same = labels_of(reference_logits) == labels_of(exported_logits)
    return float(same.mean()) if len(same) else 1.0


def decided_labels(logits: np.ndarray, calibration: Calibration | None) -> np.ndarray:
    """The labels served for these logits: the calibration's decision (temperature, then threshold), else the
    argmax."""
    if calibration is None:
        return labels_of(logits)
    return calibration.decide(calibration.probabilities(logits))


def decision_agreement(reference_logits: np.ndarray, exported_logits: np.ndarray,
                       calibration: Calibration | None) -> float:
    """The share of items given the same label by the served decision (1.0 for no items)."""
    same = decided_labels(reference_logits, calibration) == decided_labels(exported_logits, calibration)
    return float(same.mean()) if len(same) else 1.0


def probability_deltas(reference_logits: np.ndarray, exported_logits: np.ndarray) -> np.ndarray:
    """``|p_reference - p_exported|`` per item and class (softmax probabilities, float64)."""
    return np.abs(softmax(np.asarray(reference_logits, dtype=np.float64), axis=-1)
                  - softmax(np.asarray(exported_logits, dtype=np.float64), axis=-1))


def split_parity(y_true: Sequence[int], reference_logits: np.ndarray, exported_logits: np.ndarray, num_classes: int,
                 resamples: int, seed: int = 0, calibration: Calibration | None = None,
                 labels: Sequence[str] | None = None) -> dict:
    """The parity numbers of one split (validation or test); ``calibration``: the decision the export is served
    with (None: the argmax). Multi-label gold rows: :func:`label_split_parity` (``labels``: the label names)."""
    if is_multi_label(y_true):
        names = list(labels) if labels is not None else [str(j) for j in range(num_classes)]
        return label_split_parity(y_true, reference_logits, exported_logits, names, resamples, seed, calibration)
    y_true = np.asarray(y_true, dtype=np.int64)
    reference, exported = labels_of(reference_logits), labels_of(exported_logits)
    decided = decided_labels(reference_logits, calibration) != decided_labels(exported_logits, calibration)
    delta = probability_deltas(reference_logits, exported_logits)
    f1 = {REFERENCE: macro_f1(y_true, reference, num_classes), EXPORTED: macro_f1(y_true, exported, num_classes)}
    replicates = bootstrap_replicates(y_true, {REFERENCE: reference, EXPORTED: exported}, num_classes,
                                      n_resamples=resamples, seed=seed)
    difference = percentile_interval(replicates[EXPORTED]["macro_f1"] - replicates[REFERENCE]["macro_f1"],
                                     f1[EXPORTED] - f1[REFERENCE])
    return {
        "n": int(len(y_true)),
        "agreement": agreement(reference_logits, exported_logits),
        "disagreements": int(np.sum(reference != exported)),
        "decision_agreement": float(1 - decided.mean()) if len(decided) else 1.0,
        "decision_disagreements": int(decided.sum()),
        "max_abs_dp": float(delta.max()) if delta.size else 0.0,
        "mean_abs_dp": float(delta.max(axis=1).mean()) if delta.size else 0.0,
        "macro_f1": f1,
        "macro_f1_difference": _difference_record(difference, resamples),
    }


def _difference_record(difference: Interval, resamples: int) -> dict:
    return {**difference.to_json(), "of": f"{EXPORTED} - {REFERENCE}", "confidence": CONFIDENCE,
            "resamples": resamples, "method": "paired bootstrap over items, percentile interval"}


@dataclass(frozen=True)
class ParityGate:
    """The gate on an export: its worst label agreement, at the argmax and at the served decision, over the splits."""

    min_agreement: float
    agreement: float
    """The lowest of every split's argmax and decision agreement: what the gate compares with ``min_agreement``."""
    split: str
    labels: str
    """Which labels ``agreement`` is of: ``argmax`` or ``decision``."""
    argmax_agreement: float
    decision_agreement: float
    rule: str = GATE_RULE

    @classmethod
    def of(cls, per_split: dict[str, dict], min_agreement: float) -> ParityGate:
        """The gate of :func:`split_parity`'s numbers per split (in order; ties: the first split, argmax first)."""
        candidates = [(numbers[key], split, kind) for split, numbers in per_split.items()
                      for kind, key in ((ARGMAX_LABELS, "agreement"), (DECISION_LABELS, "decision_agreement"))]
        agreement, split, labels = min(candidates, key=lambda candidate: candidate[0])  # min keeps the first
        return cls(min_agreement, agreement, split, labels,
                   argmax_agreement=min(numbers["agreement"] for numbers in per_split.values()),
                   decision_agreement=min(numbers["decision_agreement"] for numbers in per_split.values()))

    @property
    def passed(self) -> bool:
        return self.agreement >= self.min_agreement

    def to_dict(self) -> dict:
        return asdict(self)


# ---- multi-label: every label decided on its own ---------------------------------------------------------------
def label_thresholds(calibration: Calibration | None, num_labels: int) -> list[float]:
    """The threshold of each label the export is served with: its calibration's, else 0.5 each."""
    fitted = getattr(calibration, "thresholds", None)
    return list(fitted) if fitted else [DEFAULT_THRESHOLD] * num_labels


def label_decisions(logits: np.ndarray, calibration: Calibration | None = None) -> np.ndarray:
    """A multi-label model's 0/1 rows: with ``calibration``, each label's calibrated sigmoid at its threshold
    (the served decision); without, the raw sigmoid at 0.5."""
    logits = np.asarray(logits, dtype=np.float64)
    if calibration is None:
        return decide_labels(label_probabilities(logits, True))
    return decide_labels(calibration.probabilities(logits), label_thresholds(calibration, logits.shape[1]))


def label_macro_f1(y_true: np.ndarray, y_pred: np.ndarray) -> np.ndarray:
    """Macro-F1 over labels of 0/1 rows ``(..., items, labels)`` (a label never true nor predicted scores 0, as
    scikit-learn's ``f1_score(average="macro", zero_division=0)``)."""
    true_positive = (y_true * y_pred).sum(axis=-2)
    denominator = y_true.sum(axis=-2) + y_pred.sum(axis=-2)
    f1 = np.divide(2 * true_positive, denominator, out=np.zeros(denominator.shape), where=denominator > 0)
    return f1.mean(axis=-1)


def label_f1_difference(y_true: np.ndarray, reference: np.ndarray, exported: np.ndarray, resamples: int,
                        seed: int) -> tuple[dict[str, float], Interval]:
    """Both models' macro-F1 over labels and the paired-bootstrap percentile interval of exported − reference
    (items resampled with their whole rows, by ``scipy.stats.bootstrap``)."""
    f1 = {REFERENCE: float(label_macro_f1(y_true, reference)), EXPORTED: float(label_macro_f1(y_true, exported))}

    def difference(items: np.ndarray, axis: int = -1) -> np.ndarray:
        return label_macro_f1(y_true[items], exported[items]) - label_macro_f1(y_true[items], reference[items])

    replicates = bootstrap((np.arange(len(y_true)),), difference, n_resamples=resamples, method="percentile",
                           batch=250, rng=np.random.default_rng(seed)).bootstrap_distribution
    return f1, percentile_interval(replicates, f1[EXPORTED] - f1[REFERENCE])


def label_split_parity(y_true: Sequence[Sequence[int]], reference_logits: np.ndarray, exported_logits: np.ndarray,
                       labels: Sequence[str], resamples: int, seed: int = 0,
                       calibration: Calibration | None = None) -> dict:
    """A multi-label model's parity numbers on one split: ``agreement`` is the share of items whose labels are all
    decided the same at 0.5 (``decision_agreement``: at the served per-label thresholds), ``per_label`` each label's
    agreement and largest sigmoid-probability difference, ``macro_f1`` over labels at 0.5."""
    y_true = gold_array(y_true)
    at_half = [label_decisions(logits) for logits in (reference_logits, exported_logits)]
    served = [label_decisions(logits, calibration) for logits in (reference_logits, exported_logits)]
    same, same_served = at_half[0] == at_half[1], served[0] == served[1]
    delta = label_probability_deltas(reference_logits, exported_logits)
    f1, interval = label_f1_difference(y_true, at_half[0], at_half[1], resamples, seed)
    numbers = {
        "n": int(len(y_true)),
        "agreement": _share(same.all(axis=1)),
        "disagreements": int(np.sum(~same.all(axis=1))),
        "decision_agreement": _share(same_served.all(axis=1)),
        "decision_disagreements": int(np.sum(~same_served.all(axis=1))),
        "max_abs_dp": float(delta.max()) if delta.size else 0.0,
        "mean_abs_dp": float(delta.max(axis=1).mean()) if delta.size else 0.0,
        "per_label": [{"label": label, "agreement": _share(same[:, j]), "decision_agreement": _share(same_served[:, j]),
                       "max_abs_dp": float(delta[:, j].max()) if len(delta) else 0.0}
                      for j, label in enumerate(labels)],
        "macro_f1": f1,
    }
    return {**numbers, "macro_f1_difference": _difference_record(interval, resamples)}


def label_probability_deltas(reference_logits: np.ndarray, exported_logits: np.ndarray) -> np.ndarray:
    """``|p_reference - p_exported|`` per item and label (sigmoid probabilities, float64)."""
    return np.abs(label_probabilities(reference_logits, True) - label_probabilities(exported_logits, True))


def _share(same: np.ndarray) -> float:
    """The share of True (1.0 for no items)."""
    return float(same.mean()) if len(same) else 1.0


def label_agreements(reference_logits: np.ndarray, exported_logits: np.ndarray,
                     calibration: Calibration | None) -> tuple[float, float]:
    """A multi-label model's share of items with all labels decided the same: at 0.5, and at the served
    thresholds."""
    return (_share((label_decisions(reference_logits) == label_decisions(exported_logits)).all(axis=1)),
            _share((label_decisions(reference_logits, calibration)
                    == label_decisions(exported_logits, calibration)).all(axis=1)))
