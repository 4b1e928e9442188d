"""Evaluation: the same metrics for every model on the same held-out data, and its speed on this machine."""

from distilora.evaluation.evaluate import evaluate_classifier, results_markdown
from distilora.evaluation.metrics import classification_metrics

__all__ = ["classification_metrics", "evaluate_classifier", "results_markdown"]
