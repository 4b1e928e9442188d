"""Evaluate *saved* models, so the numbers are those of the files a user ships, and tabulate the run."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

import datasets
import numpy as np
from safetensors import safe_open

from distilora.config import TRUNCATE
from distilora.evaluation.metrics import classification_metrics
from distilora.label_space import is_multi_label, label_probabilities
from distilora.render.document import Table, markdown_table
from distilora.results import ModelResult, RunResults, SplitMetrics

if TYPE_CHECKING:  # inference imports the calibration, part of this package
    from distilora.inference import Classifier

WEIGHT_SUFFIXES = (".safetensors",)
SPLITS = ("validation", "test")


def split_logits(classifier: Classifier, splits: datasets.DatasetDict,
                 split_names: tuple[str, ...] = SPLITS) -> dict[str, np.ndarray]:
    """The classifier's raw logits on each split's texts, each read up to the model's maximum length as in training
    (``truncate``: the numbers a run reports are of the first window of a longer text)."""
    return {split: classifier.logits(splits[split]["text"], TRUNCATE) for split in split_names}


def evaluate_logits(logits: dict[str, np.ndarray], splits: datasets.DatasetDict,
                    labels: list[str]) -> tuple[dict, dict]:
    """Metrics per split (argmax, or each label at 0.5: what a plain ``pipeline`` predicts), and per-item predictions
    (true label and raw class probabilities, or each label's sigmoid) for the report."""
    metrics, predictions = {}, {}
    for split, split_logits in logits.items():
        y_true = splits[split]["label"]
        metrics[split] = classification_metrics(y_true, split_logits, labels)
        probs = label_probabilities(split_logits, is_multi_label(y_true))
        predictions[split] = {"y_true": list(y_true), "probs": np.round(probs, 6).tolist()}
    return metrics, predictions


def evaluate_classifier(classifier: Classifier, splits: datasets.DatasetDict, labels: list[str],
                        split_names: tuple[str, ...] = SPLITS) -> tuple[dict, dict]:
    """Metrics per split, and per-item predictions (true label and class probabilities) for the report."""
    return evaluate_logits(split_logits(classifier, splits, split_names), splits, labels)


def weights_size_mb(model_dir: Path) -> float:
    """Size on disk of the weight files directly in ``model_dir`` (MiB)."""
    return sum(p.stat().st_size for p in model_dir.iterdir() if p.suffix in WEIGHT_SUFFIXES) / 2**20


def count_saved_parameters(model_dir: Path) -> int:
    total = 0
    for file in model_dir.glob("*.safetensors"):
        with safe_open(str(file), "np") as handle:
            for key in handle.keys():  # noqa: SIM118 - safe_open is not iterable
                if not key.endswith("position_ids"):
                    total += int(np.prod(handle.get_slice(key).get_shape()))
    return total


def _fmt_params(n: int | None) -> str:
    return "—" if n is None else f"{n / 1e6:.2f} M"


def _fixed(value: float | None, digits: int = 4) -> str:
    return "—" if value is None else f"{value:.{digits}f}"


def _layers(entry: ModelResult) -> str:
    if entry.layers:
        return ",".join(map(str, entry.layers))
    return f"all {entry.num_layers}" if entry.num_layers else "none"


def results_markdown(results: RunResults | Mapping) -> str:
    """The comparison table of a run (the record, or results.json as read): one row per model with depth, size,
    time, validation and test scores."""
    results = RunResults.of(results)
    multi = bool(results.multi_label)
    accuracy = "subset acc" if multi else "acc"
    headers = ["model", "layers", "params", "trainable", "size MB", "train s", f"val {accuracy}", "val macro-F1",
               f"test {accuracy}", *(["test micro-F1"] if multi else []), "test macro-F1", "test loss"]
    table = Table(headers, [], numeric=[False, False] + [True] * (len(headers) - 2))
    for name, m in results.models.items():
        val, test = m.metrics.get("validation") or SplitMetrics(), m.metrics.get("test") or SplitMetrics()
        table.rows.append([name, _layers(m), _fmt_params(m.params), _fmt_params(m.trainable_params),
                           _fixed(m.size_mb, 1), _fixed(m.train_seconds, 0), _fixed(val.accuracy), _fixed(val.macro_f1),
                           _fixed(test.accuracy), *([_fixed(test.micro_f1)] if multi else []), _fixed(test.macro_f1),
                           _fixed(test.loss)])
    kind = " (multi-label: any number per text; subset acc = every label right)" if multi else ""
    lines = [
        f"# distilora results — {results.dataset}",
        "",
        f"Teacher: `{results.teacher}` · labels: {', '.join(results.labels)}{kind} · seed {results.seed}",
        "",
        markdown_table(table),
        "",
        "Rows dropped while reading the data (empty text, missing or unknown label):",
        "",
    ]
    for split, info in results.data_report.items():
        reasons = ", ".join(f"{k}: {v}" for k, v in info.reasons.items() if v) or "none"
        lines.append(f"- {split}: {info.rows} rows used, {info.dropped} dropped ({reasons})")
    return "\n".join(lines) + "\n"
