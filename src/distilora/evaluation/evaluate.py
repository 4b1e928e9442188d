"""Evaluate a *saved* model directory, so the numbers are those of the files a user ships."""

from __future__ import annotations

from pathlib import Path

import datasets
import numpy as np
from scipy.special import softmax

from distilora.evaluation.metrics import classification_metrics
from distilora.inference import Classifier

WEIGHT_SUFFIXES = (".safetensors",)


def evaluate_model_dir(model_dir: Path, splits: datasets.DatasetDict, labels: list[str],
                       split_names: tuple[str, ...] = ("validation", "test")) -> tuple[dict, dict]:
    """Metrics per split, and per-item predictions (true label and class probabilities) for the report."""
    classifier = Classifier.load(model_dir)
    metrics, predictions = {}, {}
    for split in split_names:
        texts, y_true = splits[split]["text"], splits[split]["label"]
        logits = classifier.logits(texts)
        metrics[split] = classification_metrics(y_true, logits, labels)
        probs = softmax(logits.astype(np.float64), axis=-1)
        predictions[split] = {"y_true": list(y_true), "probs": np.round(probs, 6).tolist()}
    return metrics, predictions


def weights_size_mb(model_dir: Path) -> float:
    """Size on disk of the weight files directly in ``model_dir`` (MiB)."""
    return sum(p.stat().st_size for p in model_dir.iterdir() if p.suffix in WEIGHT_SUFFIXES) / 2**20


def count_saved_parameters(model_dir: Path) -> int:
    from safetensors import safe_open

    total = 0
    for file in model_dir.glob("*.safetensors"):
        with safe_open(str(file), "np") as handle:
            for key in handle.keys():  # noqa: SIM118 - safe_open is not iterable
                if not key.endswith("position_ids"):
                    total += int(np.prod(handle.get_slice(key).get_shape()))
    return total
