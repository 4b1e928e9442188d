"""How far an exported model's answers are from the PyTorch model's, on the same items: label agreement at the argmax
and at the decision the export is served with (its calibration's temperature and threshold), the largest
class-probability difference, both models' macro-F1 and the paired-bootstrap CI of their difference; and the gate on
both agreements."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np
from scipy.special import softmax

from distilora.evaluation.calibration import Calibration
from distilora.evaluation.statistics import CONFIDENCE, bootstrap_replicates, macro_f1, percentile_interval

REFERENCE, EXPORTED = "pytorch", "onnx"
ARGMAX_LABELS, DECISION_LABELS = "argmax", "decision"
GATE_RULE = ("the label agreement at the argmax and at the served decision (calibration.json's temperature and "
             "threshold) on validation and on test must each be >= min_agreement")


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
                 resamples: int, seed: int = 0, calibration: Calibration | None = None) -> dict:
    """The parity numbers of one split (validation or test); ``calibration``: the decision the export is served
    with (None: the argmax)."""
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
        "macro_f1_difference": {**difference.to_json(), "of": f"{EXPORTED} - {REFERENCE}", "confidence": CONFIDENCE,
                                "resamples": resamples, "method": "paired bootstrap over items, percentile interval"},
    }


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
