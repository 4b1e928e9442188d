"""How a served model picks its labels, as every response states it (``decision``): its calibration's rule (a
multi-label model's: rule ``threshold`` with a threshold, temperature and target per label), or, uncalibrated, the
argmax (single-label) or 0.5 for every label (multi-label)."""

from __future__ import annotations

from typing import Any

from distilora.evaluation.calibration import ARGMAX_DECISION

DEFAULT_POLICY = "default"
"""The policy of an uncalibrated multi-label model: 0.5 for every label."""


def served_decision(classifier: Any) -> dict[str, Any]:
    """The decision of a loaded classifier: its calibration's (a calibrated multi-label model's: rule ``threshold``
    with each label's ``thresholds``); an uncalibrated multi-label model's 0.5 for every label. A stand-in whose
    decision was stated where its model runs (the model process) keeps it."""
    decision = dict(getattr(classifier, "decision", None) or ARGMAX_DECISION)
    if not getattr(classifier, "multi_label", False) or decision.get("thresholds"):
        return decision
    thresholds = zip(classifier.labels, classifier.label_thresholds(), strict=True)
    decision.update(rule="threshold", threshold=None, positive_label=None, policy=DEFAULT_POLICY,
                    thresholds={label: float(threshold) for label, threshold in thresholds})
    return decision
