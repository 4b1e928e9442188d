"""How a served model picks its labels, as every response states it (``decision``): its calibration's rule (a
multi-label model's: a threshold and a temperature per label), or, uncalibrated, the argmax (single-label) or 0.5
for every label (multi-label)."""

from __future__ import annotations

from typing import Any

from distilora.evaluation.calibration import ARGMAX_DECISION, PER_LABEL

DEFAULT_POLICY = "default"
"""The policy of an uncalibrated multi-label model: 0.5 for every label."""


def served_decision(classifier: Any) -> dict[str, Any]:
    """The decision of a loaded classifier: its calibration's (a calibrated multi-label model's: rule ``thresholds``
    with each label's threshold and temperature); an uncalibrated multi-label model's 0.5 for every label. A
    stand-in whose decision was stated where its model runs (the model process) keeps it."""
    decision = dict(getattr(classifier, "decision", None) or ARGMAX_DECISION)
    if not getattr(classifier, "multi_label", False) or decision.get("rule") == PER_LABEL:
        return decision
    thresholds = zip(classifier.labels, classifier.label_thresholds(), strict=True)
    decision.update(rule=PER_LABEL, threshold=None, positive_label=None, policy=DEFAULT_POLICY,
                    thresholds={label: float(threshold) for label, threshold in thresholds})
    return decision
