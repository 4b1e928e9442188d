"""Which runtime scores a file fastest on this machine without changing the model's answers: PyTorch fp32, PyTorch
bf16 (where the CPU or GPU computes it natively) and the run's ONNX exports that passed their parity gate are timed on
the first texts of the input, and the fastest whose labels agree with PyTorch fp32 at the export gate wins (a
multi-label model's text agrees when its decided set is the same)."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from distilora.config import ExportConfig
from distilora.export.files import RunExports
from distilora.inference import Classifier, load_classifier
from distilora.precision import BF16, FP32, native_bf16
from distilora.run_dir import RunLayout

logger = logging.getLogger(__name__)

PROBE_TEXTS = 512
WARM_UP_TEXTS = 16
MIN_PROBE_TEXTS = 64
"""Fewer scorable texts than this at the start of the input: nothing is timed and PyTorch fp32 is used."""


@dataclass(frozen=True)
class Candidate:
    """A way to run the model: its own backend (``pytorch``, …) at a precision, or the ONNX export directory
    ``export``."""

    backend: str
    precision: str | None = None
    export: str | None = None

    @property
    def name(self) -> str:
        if self.export:
            return f"onnx {self.export}"
        return f"{self.backend} {self.precision}" if self.precision else self.backend


@dataclass
class Measured:
    candidate: Candidate
    texts_per_s: float
    agreement: float


@dataclass
class BackendChoice:
    """The runtime chosen, and why (every timed candidate, the texts they were timed on, the gate they had to pass)."""

    candidate: Candidate
    reason: str
    measured: list[Measured]

    def describe(self) -> str:
        return f"backend {self.candidate.name}: {self.reason}"


def model_exports(run_dir: Path, model: str) -> list[str]:
    """The run's finished ONNX exports of ``model``: int8 first, then fp32."""
    exports = RunExports(RunLayout(run_dir)).finished()
    return [name for name in (f"{model}-int8", model) if name in exports]


def candidates(run_dir: Path, model: str, device: str, reference: Candidate) -> list[Candidate]:
    """``reference`` (the model as its backend loads it at fp32), bf16 for a PyTorch model where the device computes
    it natively, then the model's exports."""
    found = [reference]
    if reference.backend == "pytorch" and native_bf16(device):
        found.append(Candidate("pytorch", BF16))
    return found + [Candidate("onnx", export=name) for name in model_exports(run_dir, model)]


def load(run_dir: Path, model: str, candidate: Candidate, device: str | None = None) -> Classifier:
    """The model run by ``candidate`` (an export that failed its gate is refused by the loader)."""
    if candidate.export:
        return load_classifier(RunExports(RunLayout(run_dir)).directory / candidate.export)
    return load_classifier(run_dir, model, device=device, precision=candidate.precision or FP32)


def _time(classifier: Any, texts: list[str]) -> tuple[list[Any], float]:
    """Each text's decision (a multi-label model's: its decided set) and the texts scored per second."""
    classifier.predict(texts[:WARM_UP_TEXTS])
    start = time.perf_counter()
    labels = [p.label if p.labels is None else tuple(p.labels) for p in classifier.predict(texts)]
    return labels, len(texts) / (time.perf_counter() - start)


def choose(run_dir: Path, model: str, probe: list[str], min_agreement: float = ExportConfig().min_agreement,
           device: str | None = None) -> tuple[Classifier, BackendChoice]:
    """Time every candidate on ``probe`` (the input's first scorable texts) and keep the fastest whose decided labels
    agree with the model's own backend at fp32 (PyTorch fp32 for a transformers model) on at least ``min_agreement``
    of them."""
    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    probe = probe[:PROBE_TEXTS]
    reference = load_classifier(run_dir, model, device=device, precision=FP32)
    reference_candidate = Candidate(reference.backend, reference.precision)
    if len(probe) < MIN_PROBE_TEXTS:
        return reference, BackendChoice(reference_candidate, f"fewer than {MIN_PROBE_TEXTS} texts to time on", [])
    reference_labels, reference_speed = _time(reference, probe)
    measured = [Measured(reference_candidate, reference_speed, 1.0)]
    best, best_classifier = measured[0], reference
    for candidate in candidates(run_dir, model, torch.device(device).type, reference_candidate)[1:]:
        try:
            classifier = load(run_dir, model, candidate, device)
        except (ValueError, FileNotFoundError) as error:  # a stale or rejected export is skipped, and said so
            logger.warning("backend %s skipped: %s", candidate.name, error)
            continue
        labels, speed = _time(classifier, probe)
        agreement = float(np.mean([a == b for a, b in zip(labels, reference_labels, strict=True)]))
        measured.append(Measured(candidate, speed, agreement))
        if agreement >= min_agreement and speed > best.texts_per_s:
            best, best_classifier = measured[-1], classifier
    timed = "; ".join(f"{m.candidate.name} {m.texts_per_s:,.0f} texts/s, {m.agreement:.1%} same labels"
                      for m in measured)
    reason = (f"the fastest of those whose labels agree with {reference_candidate.name} on ≥ {min_agreement:.0%} of "
              f"the first {len(probe)} texts ({timed})")
    return best_classifier, BackendChoice(best.candidate, reason, measured)
