"""How far an exported model's answers are from the PyTorch model's, on the same items: label agreement, the
largest class-probability difference, both models' macro-F1 and the paired-bootstrap CI of their difference."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy.special import softmax

from distilora.report.statistics import CONFIDENCE, bootstrap_replicates, macro_f1, percentile_interval

REFERENCE, EXPORTED = "pytorch", "onnx"


def labels_of(logits: np.ndarray) -> np.ndarray:
    return np.asarray(logits).argmax(axis=1) if len(logits) else np.zeros(0, dtype=np.int64)


def agreement(reference_logits: np.ndarray, exported_logits: np.ndarray) -> float:
    """The share of items whose predicted label is the same (1.0 for no items)."""
    same = labels_of(reference_logits) == labels_of(exported_logits)
    return float(same.mean()) if len(same) else 1.0


def probability_deltas(reference_logits: np.ndarray, exported_logits: np.ndarray) -> np.ndarray:
    """``|p_reference - p_exported|`` per item and class (softmax probabilities, float64)."""
    return np.abs(softmax(np.asarray(reference_logits, dtype=np.float64), axis=-1)
                  - softmax(np.asarray(exported_logits, dtype=np.float64), axis=-1))


def split_parity(y_true: Sequence[int], reference_logits: np.ndarray, exported_logits: np.ndarray, num_classes: int,
                 resamples: int, seed: int = 0) -> dict:
    """The parity numbers of one split (validation or test)."""
    y_true = np.asarray(y_true, dtype=np.int64)
    reference, exported = labels_of(reference_logits), labels_of(exported_logits)
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
        "max_abs_dp": float(delta.max()) if delta.size else 0.0,
        "mean_abs_dp": float(delta.max(axis=1).mean()) if delta.size else 0.0,
        "macro_f1": f1,
        "macro_f1_difference": {**difference.to_dict(), "of": f"{EXPORTED} - {REFERENCE}", "confidence": CONFIDENCE,
                                "resamples": resamples, "method": "paired bootstrap over items, percentile interval"},
    }
