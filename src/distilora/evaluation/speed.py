"""Inference speed of the run's models on this machine: single-text latency and batch throughput.

Measured once, during the evaluation, on the loaded models and test texts the run already holds, at the precision
the models are served in by default (fp32), whatever the run trained and evaluated in."""

from __future__ import annotations

import contextlib
import logging
import platform
import random
import time
from collections.abc import Iterator, Mapping, Sequence
from typing import TYPE_CHECKING

import numpy as np

from distilora.precision import FP32

if TYPE_CHECKING:  # inference imports the calibration, part of this package
    from distilora.inference import Classifier

logger = logging.getLogger(__name__)

def measure(classifiers: Mapping[str, Classifier], texts: Sequence[str], *, single_texts: int = 10,
            rounds: int = 2) -> dict[str, dict]:
    """Median single-text latency (ms) and batch throughput (texts/s) of each classifier.

    Every classifier is first warmed up on each timed input (kernels are prepared per input shape), then the
    models are timed in interleaved rounds, so a burst of load from elsewhere on the machine hits all of them.
    """
    texts = list(texts)
    singles = texts[:single_texts]
    for classifier in classifiers.values():
        for text in singles:
            classifier.predict_proba([text])
        classifier.predict_proba(texts)
    latencies: dict[str, list[float]] = {name: [] for name in classifiers}
    batches: dict[str, list[float]] = {name: [] for name in classifiers}
    for _ in range(rounds):
        for name, classifier in classifiers.items():
            for text in singles:
                started = time.perf_counter()
                classifier.predict_proba([text])
                latencies[name].append((time.perf_counter() - started) * 1000)
            started = time.perf_counter()
            classifier.predict_proba(texts)
            batches[name].append(time.perf_counter() - started)
    return {
        name: {
            "latency_ms": float(np.median(latencies[name])),
            "latency_ms_p90": float(np.percentile(latencies[name], 90)),
            "throughput": float(len(texts) / np.median(batches[name])),
            "batch_size": len(texts),
            "single_texts": len(singles),
            "rounds": rounds,
        }
        for name in classifiers
    }


@contextlib.contextmanager
def running_at(classifiers: Mapping[str, Classifier], precision: str) -> Iterator[None]:
    """The PyTorch ``classifiers`` compute at ``precision`` (resolved) inside the block, as before after it."""
    before = {name: c.precision for name, c in classifiers.items()}
    try:
        for classifier in classifiers.values():
            if classifier.precision is not None:  # numpy baselines have none
                classifier.precision = precision
        yield
    finally:
        for name, classifier in classifiers.items():
            classifier.precision = before[name]


def speed_report(classifiers: Mapping[str, Classifier], texts: Sequence[str], source: str,
                 precision: str = FP32) -> dict:
    """Time the already loaded ``classifiers`` together on ``texts`` at ``precision``, the one ``distilora serve``
    and ``predict`` use by default (bf16 autocast is faster on batches but slower on single texts); what
    results.json keeps under ``speed``."""
    import torch

    logger.info("Timing inference of %s on %d texts (%s)", ", ".join(classifiers), len(texts), precision)
    with running_at(classifiers, precision):
        speeds = measure(classifiers, texts)
        for name, classifier in classifiers.items():
            speeds[name]["device"] = classifier.device
            speeds[name]["precision"] = classifier.precision
    return {"models": speeds, "texts": source, "precision": precision,
            "machine": f"{platform.machine()}, {platform.system()}, torch threads {torch.get_num_threads()}"}


def timing_texts(texts: Sequence[str], n: int = 64, seed: int = 0) -> list[str]:
    """A seeded sample of ``n`` of ``texts`` (the run's test split) to time the models on."""
    return random.Random(seed).sample(list(texts), min(n, len(texts)))
