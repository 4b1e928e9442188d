"""How a served model picks its labels, as every response states it (``decision``): a single-label model's
calibration rule unchanged; a multi-label model's threshold per label (and temperature per label, when fitted)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from distilora.evaluation.calibration import ARGMAX, ARGMAX_DECISION

LABEL_THRESHOLDS = "label-thresholds"
"""The rule of a multi-label model: every label whose score is at least its own threshold is on."""
DEFAULT_POLICY = "default"
"""The policy of an uncalibrated multi-label model: 0.5 for every label."""


def served_decision(classifier: Any) -> dict[str, Any]:
    """The decision of a loaded classifier (a multi-label one: ``label-thresholds`` with ``thresholds`` by label);
    a stand-in whose decision was stated where its model runs (the model process) keeps it."""
    decision = dict(getattr(classifier, "decision", None) or ARGMAX_DECISION)
    if not getattr(classifier, "multi_label", False) or decision.get("rule") == LABEL_THRESHOLDS:
        return decision
    labels = list(classifier.labels)
    decision.update(rule=LABEL_THRESHOLDS, threshold=None, positive_label=None,
                    thresholds=_by_label(labels, classifier.label_thresholds()))
    if decision.get("policy") in (None, ARGMAX):
        decision["policy"] = DEFAULT_POLICY
    temperatures = getattr(classifier.calibration, "temperatures", None)
    if isinstance(decision.get("temperature"), Sequence):  # one temperature per label, stated by label
        temperatures, decision["temperature"] = decision["temperature"], None
    if temperatures:
        decision["temperatures"] = _by_label(labels, temperatures)
    return decision


def _by_label(labels: list[str], values: Sequence[float]) -> dict[str, float]:
    return {label: float(value) for label, value in zip(labels, values, strict=True)}
