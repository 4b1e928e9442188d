"""ONNX export behind a parity gate: ``distilora export --run R --model NAME [--quantize int8]``.

:func:`export_model` writes ``R/export/NAME[-int8]/`` (model.onnx, tokenizer, config, parity.json,
parity_labels.json, manifest.json); :class:`~distilora.inference.OnnxClassifier` runs an export behind the
:class:`~distilora.Classifier` interface (``load_classifier`` of an export directory returns one, and
``distilora serve --backend onnx`` serves them).
"""

from distilora.export.build import ParityGateFailed, export_model
from distilora.inference.onnx import ExportRejected, OnnxClassifier

__all__ = ["ExportRejected", "OnnxClassifier", "ParityGateFailed", "export_model"]
