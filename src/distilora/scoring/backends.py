"""Which runtime scores a file fastest on this machine without changing the model's answers: PyTorch fp32, PyTorch
bf16 (where the CPU or GPU computes it natively) and the run's ONNX exports that passed their parity gate are timed on
the first texts of the input, and the fastest whose labels agree with PyTorch fp32 at the export gate wins."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from distilora.config import ExportConfig
from distilora.inference import Classifier
from distilora.precision import BF16, FP32, native_bf16
from distilora.run_dir import RunDirectory

logger = logging.getLogger(__name__)

PROBE_TEXTS = 512
WARM_UP_TEXTS = 16
MIN_PROBE_TEXTS = 64
"""Fewer scorable texts than this at the start of the input: nothing is timed and PyTorch fp32 is used."""


@dataclass(frozen=True)
class Candidate:
    """A way to run the model: ``pytorch`` at a precision, or the ONNX export directory ``export``."""

    backend: str
    precision: str | None = None
    export: str | None = None

    @property
    def name(self) -> str:
        return f"onnx {self.export}" if self.export else f"pytorch {self.precision}"


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
    exports = RunDirectory(run_dir).exports()
    return [name for name in (f"{model}-int8", model) if name in exports]


def candidates(run_dir: Path, model: str, device: str) -> list[Candidate]:
    found = [Candidate("pytorch", FP32)]
    if native_bf16(device):
        found.append(Candidate("pytorch", BF16))
    return found + [Candidate("onnx", export=name) for name in model_exports(run_dir, model)]


def load(run_dir: Path, model: str, candidate: Candidate, device: str | None = None) -> Classifier:
    """The model run by ``candidate`` (an export that failed its gate is refused by the loader)."""
    if candidate.export:
        return Classifier.load(RunDirectory(run_dir).exports_dir / candidate.export)
    return Classifier.load(run_dir, model, device=device, precision=candidate.precision or FP32)


def _time(classifier: Any, texts: list[str]) -> tuple[list[str], float]:
    classifier.predict(texts[:WARM_UP_TEXTS])
    start = time.perf_counter()
    labels = [p.label for p in classifier.predict(texts)]
    return labels, len(texts) / (time.perf_counter() - start)


def choose(run_dir: Path, model: str, probe: list[str], min_agreement: float = ExportConfig().min_agreement,
           device: str | None = None) -> tuple[Classifier, BackendChoice]:
    """Time every candidate on ``probe`` (the input's first scorable texts) and keep the fastest whose decided labels
    agree with PyTorch fp32's on at least ``min_agreement`` of them."""
    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    probe = probe[:PROBE_TEXTS]
    reference_candidate = Candidate("pytorch", FP32)
    reference = load(run_dir, model, reference_candidate, device)
    if len(probe) < MIN_PROBE_TEXTS:
        return reference, BackendChoice(reference_candidate, f"fewer than {MIN_PROBE_TEXTS} texts to time on", [])
    reference_labels, reference_speed = _time(reference, probe)
    measured = [Measured(reference_candidate, reference_speed, 1.0)]
    best, best_classifier = measured[0], reference
    for candidate in candidates(run_dir, model, torch.device(device).type)[1:]:
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
    reason = (f"the fastest of those whose labels agree with pytorch fp32 on ≥ {min_agreement:.0%} of the first "
              f"{len(probe)} texts ({timed})")
    return best_classifier, BackendChoice(best.candidate, reason, measured)
