"""One loader for every kind of model directory: ``load_classifier(run_dir, "odd")``, and the backends it chooses from.

A backend is a name, a test of a directory (``matches``) and a loader; :func:`register_backend` adds one. The
built-in ones register themselves when :mod:`distilora.inference` is imported: an ONNX export (``model.onnx``), a
TF-IDF / majority baseline, and, for any other directory with a ``config.json``, PyTorch. A backend in a module of
your own is one call of :func:`register_backend` in it, and then loaded, served and used by ``distilora score`` like
the built-in ones (the web service's model process imports the modules that registered backends).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import torch

from distilora.artifacts import verified_snapshot, wait_for_swap
from distilora.evaluation.calibration import Calibration
from distilora.precision import FP32, resolve_precision
from distilora.run_dir import CALIBRATION_FILE, RunLayout

if TYPE_CHECKING:  # the classifiers' modules import this one to register themselves
    from distilora.inference.base import Classifier

BUILT_IN = "distilora."
"""Backends registered by modules under this prefix are distilora's own (imported with the package)."""


@dataclass(frozen=True)
class LoadOptions:
    """What a backend's loader is asked for."""

    name: str
    """The model's name (``odd``, …, or the directory's name)."""
    device: str
    """``cpu``, ``cuda``, …: where tensor backends put the model."""
    precision: str
    """``fp32``, ``bf16`` or ``auto``, already checked against the device; backends without one ignore it."""
    shown_as: Path
    """The directory the user named: errors name it, not the verified copy the model is read from."""


@dataclass(frozen=True)
class Backend:
    """A way to run a model directory: ``matches(directory)`` says whether it reads it, ``load(directory, options)``
    gives the :class:`Classifier`. Tried in descending ``priority``, in registration order among equals."""

    name: str
    matches: Callable[[Path], bool]
    load: Callable[[Path, LoadOptions], Classifier]
    priority: int = 0
    module: str = ""
    """The module that registered it (the model process imports it to have the backend too)."""


_backends: dict[str, Backend] = {}


def register_backend(name: str, matches: Callable[[Path], bool], load: Callable[[Path, LoadOptions], Classifier],
                     *, priority: int = 0) -> Backend:
    """Add a backend (or replace the one called ``name``). ``priority``: higher is asked first; the built-in PyTorch
    backend, which reads any directory with a ``config.json``, is asked last (-100), exports and baselines before
    the default of 0."""
    module = getattr(load, "__module__", None) or getattr(matches, "__module__", "") or ""
    backend = Backend(name, matches, load, priority, module)
    _backends.pop(name, None)
    _backends[name] = backend
    return backend


def unregister_backend(name: str) -> Backend | None:
    """Remove the backend called ``name`` (None: there was none)."""
    return _backends.pop(name, None)


def registered_backends() -> list[Backend]:
    """Every backend, in the order directories are offered to them."""
    return sorted(_backends.values(), key=lambda backend: -backend.priority)


def backend_for(directory: Path) -> Backend | None:
    """The first backend that reads ``directory`` (None: none does)."""
    return next((backend for backend in registered_backends() if backend.matches(directory)), None)


def extension_modules() -> list[str]:
    """The modules outside distilora that registered backends: another process imports them to load the same
    models."""
    return sorted({b.module for b in _backends.values() if b.module and not b.module.startswith(BUILT_IN)})


def load_classifier(path: str | Path, name: str | None = None, device: str | None = None, verify: bool = True,
                    precision: str = FP32) -> Classifier:
    """Load model ``name`` (teacher, odd, even, lora, …) of a run directory, or a model directory itself (an ONNX
    export directory, ``RUN/export/NAME[-int8]``, gives an :class:`~distilora.inference.onnx.OnnxClassifier`), with
    the first registered backend that reads it.

    The directory's checksums are verified first (``verify=False`` skips that for models not made by distilora);
    a directory being swapped into place meanwhile is waited for and read again (bounded), not blamed.
    ``precision``: ``fp32``, ``bf16`` or ``auto`` (bf16 where the device computes it natively).
    Its ``calibration.json``, when there is one, sets the temperature and the decision threshold.
    """
    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    resolve_precision(precision, torch.device(device).type)  # refuse bf16 without native support before anything
    path = Path(path)
    model_dir = RunLayout(path).model_dir(name) if name else path
    wait_for_swap(model_dir)  # the evaluation may be swapping in the directory with its calibration
    if backend_for(model_dir) is None:
        raise FileNotFoundError(_no_model_here(path, model_dir))
    options = LoadOptions(name or model_dir.name, device, precision, model_dir)
    with contextlib.ExitStack() as stack:
        # Load from a private copy of exactly the bytes whose checksums were verified.
        source = stack.enter_context(verified_snapshot(model_dir)) if verify else model_dir
        backend = backend_for(source)
        if backend is None:  # what was verified is not what was there a moment before
            raise FileNotFoundError(_no_model_here(path, model_dir))
        classifier = backend.load(source, options)
        if classifier.calibration is None:  # a backend may have read its calibration itself
            classifier.calibration = read_calibration(source, classifier.labels, shown_as=model_dir)
    return classifier


def _no_model_here(path: Path, model_dir: Path) -> str:
    available = sorted(p.name for p in path.iterdir() if p.is_dir() and backend_for(p)) if path.is_dir() else []
    hint = f"; models in {path}: {', '.join(available)}" if available else ""
    return f"{model_dir}: no saved model here (no config.json){hint}"


def read_calibration(directory: Path, labels: list[str], shown_as: Path | None = None) -> Calibration | None:
    """The ``calibration.json`` of a model or export directory (None without one); a ValueError naming the directory
    (``shown_as``: the path the user gave, when ``directory`` is a verified snapshot of it) if it does not fit."""
    file = directory / CALIBRATION_FILE
    if not file.is_file():
        return None
    try:
        return Calibration.from_json(file.read_text(encoding="utf-8"), labels)
    except ValueError as error:
        raise ValueError(f"{shown_as or directory}: {error}") from None
