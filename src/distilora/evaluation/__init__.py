"""Evaluation: the same metrics for every model on the same held-out data."""

from distilora.evaluation.metrics import classification_metrics

__all__ = ["classification_metrics"]
