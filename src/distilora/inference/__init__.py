"""Batched inference and the two-line user API: ``load_classifier(run_dir, "odd").predict(["text"])``.

:class:`Classifier` (:mod:`.base`) is what every backend shares; :mod:`.torch` (PyTorch), :mod:`.onnx` (an export,
run by onnxruntime) and :mod:`.baseline` (TF-IDF / majority) are the built-in backends, and :func:`load_classifier`
(:mod:`.registry`) picks the one that reads a directory. :func:`register_backend` adds another.
"""

from distilora.inference.base import Classifier, Prediction, TextScores, combine_windows
from distilora.inference.baseline import TextBaselineClassifier
from distilora.inference.onnx import ExportRejected, OnnxClassifier
from distilora.inference.registry import (
    Backend,
    LoadOptions,
    load_classifier,
    read_calibration,
    register_backend,
    registered_backends,
    unregister_backend,
)
from distilora.inference.torch import TorchClassifier, forward_in_batches

__all__ = [
    "Backend",
    "Classifier",
    "ExportRejected",
    "LoadOptions",
    "OnnxClassifier",
    "Prediction",
    "TextBaselineClassifier",
    "TextScores",
    "TorchClassifier",
    "combine_windows",
    "forward_in_batches",
    "load_classifier",
    "read_calibration",
    "register_backend",
    "registered_backends",
    "unregister_backend",
]
