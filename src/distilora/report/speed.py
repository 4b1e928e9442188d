"""Inference speed of each saved model on this machine: single-text latency and batch throughput."""

from __future__ import annotations

import logging
import platform
import random
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

logger = logging.getLogger(__name__)

SUBJECTS = ["the new policy", "my neighbour", "this song", "the referee", "that comment", "the match", "our team"]
VERBS = ["is", "seems", "was", "looks", "sounds"]
OPINIONS = ["great", "awful", "fine", "boring", "hilarious", "disgusting", "lovely", "a disgrace", "ok I guess"]


def synthetic_texts(n: int, seed: int = 0) -> list[str]:
    """Short, tweet-like sentences for timing when the run's test texts cannot be read."""
    rng = random.Random(seed)
    return [f"{rng.choice(SUBJECTS).capitalize()} {rng.choice(VERBS)} {rng.choice(OPINIONS)}, "
            f"{' '.join(rng.choices(OPINIONS + SUBJECTS, k=rng.randint(2, 8)))}." for _ in range(n)]


def benchmark_texts(results: Mapping, n: int = 64, seed: int = 0) -> tuple[list[str], str]:
    """``n`` texts to time the models on, and where they come from.

    The run's test texts if its dataset is a readable local directory (a seeded sample), else synthetic.
    """
    dataset = str(results.get("dataset") or "")
    if dataset and Path(dataset).expanduser().is_dir():
        try:
            texts = _test_texts(results)
        except Exception as error:  # any unreadable dataset: fall back, and say why
            logger.warning("could not read test texts from %s (%s); timing on synthetic sentences", dataset, error)
        else:
            if texts:
                sample = random.Random(seed).sample(texts, min(n, len(texts)))
                return sample, f"{len(sample)} texts sampled (seed {seed}) from the test split of {dataset}"
    return synthetic_texts(n, seed), f"{n} synthetic sentences (the run's dataset {dataset or '?'} is not readable)"


def _test_texts(results: Mapping) -> list[str]:
    from distilora.config import DataConfig
    from distilora.data import load_task_data

    saved = dict(results.get("config", {}).get("data", {}))
    known = DataConfig.__dataclass_fields__
    config = DataConfig(**{k: v for k, v in saved.items() if k in known})
    config.dataset = str(results["dataset"])
    return list(load_task_data(config, int(results.get("seed", 42))).splits["test"]["text"])


def measure(classifiers: Mapping[str, object], texts: Sequence[str], *, single_texts: int = 10,
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


def measure_models(run_dir: Path, names: Sequence[str], texts: Sequence[str], **kwargs) -> dict:
    """Load each model of the run with :class:`~distilora.inference.Classifier` and time them together."""
    import torch

    from distilora.inference import Classifier

    classifiers = {name: Classifier.load(run_dir, name) for name in names}
    logger.info("Timing inference of %s on %d texts", ", ".join(names), len(texts))
    speeds = measure(classifiers, texts, **kwargs)
    for name, classifier in classifiers.items():
        speeds[name]["device"] = str(next(classifier.model.parameters()).device)
    return {"models": speeds, "machine": f"{platform.machine()}, {platform.system()}, "
                                         f"torch threads {torch.get_num_threads()}"}
