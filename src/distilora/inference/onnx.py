"""The onnxruntime backend: an export directory (``model.onnx`` + tokenizer + config, from ``distilora export``)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch
from transformers import AutoConfig, AutoTokenizer, PretrainedConfig, PreTrainedTokenizerBase

from distilora.inference.base import Classifier, config_labels, config_multi_label
from distilora.inference.registry import LoadOptions, read_calibration, register_backend
from distilora.run_dir import ONNX_FILE, PARITY_FILE

OUTPUT = "logits"
"""The one output of an exported model."""


class ExportRejected(ValueError):
    """An export that failed its parity gate is not loaded by distilora (its numbers are in parity.json)."""


class OnnxClassifier(Classifier):
    """``model.onnx`` + tokenizer + config of an export directory: the same ``predict`` / ``logits`` / ``labels`` as
    the PyTorch classifier (texts tokenized and truncated the same way, length-sorted batches)."""

    backend = "onnxruntime"

    def __init__(self, session, tokenizer: PreTrainedTokenizerBase, config: PretrainedConfig, name: str = "model",
                 max_length: int | None = None, batch_size: int = 64, info: dict | None = None):
        super().__init__(config_labels(config), name=name, tokenizer=tokenizer, max_length=max_length,
                         batch_size=batch_size, layers=getattr(config, "distilora_layers", None),
                         multi_label=config_multi_label(config))
        self.session = session
        self.config = config
        self.info = info or {}
        """What the export's parity.json says (settings, agreement, the model's own metrics), if it has one."""
        self._inputs = [node.name for node in session.get_inputs()]

    @classmethod
    def from_directory(cls, directory: str | Path, name: str | None = None, threads: int | None = None,
                       require_passed: bool = True, shown_as: Path | None = None) -> OnnxClassifier:
        """Load an export directory. ``threads``: onnxruntime's intra-op threads (default: torch's thread count,
        so ``torch.set_num_threads`` and ``distilora serve --threads`` apply to both backends).

        ``require_passed``: refuse an export whose parity.json says it failed its gate (:class:`ExportRejected`).
        ``shown_as``: the directory named in errors (the one the user gave, when ``directory`` is a snapshot of it).
        """
        directory = Path(directory)
        parity_file = directory / PARITY_FILE
        info = json.loads(parity_file.read_text()) if parity_file.is_file() else {}
        if require_passed and info.get("passed") is False:
            gate = info.get("gate", {})
            raise ExportRejected(
                f"{shown_as or directory}: this export failed its parity gate (label agreement "
                f"{gate.get('agreement')} < --min-agreement {gate.get('min_agreement')}); its numbers are in "
                f"{PARITY_FILE}. Export it again with a lower --min-agreement to accept it.")
        classifier = cls.from_file(directory / ONNX_FILE, AutoTokenizer.from_pretrained(directory),
                                   AutoConfig.from_pretrained(directory), name=name or directory.name,
                                   threads=threads, info=info)
        classifier.calibration = read_calibration(directory, classifier.labels, shown_as)
        return classifier

    @classmethod
    def from_file(cls, onnx_file: Path, tokenizer: PreTrainedTokenizerBase, config: PretrainedConfig,
                  name: str = "model", threads: int | None = None, info: dict | None = None) -> OnnxClassifier:
        """An onnxruntime CPU session of ``onnx_file`` with this tokenizer and config."""
        import onnxruntime

        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = threads or torch.get_num_threads()
        options.inter_op_num_threads = 1
        session = onnxruntime.InferenceSession(str(onnx_file), options, providers=["CPUExecutionProvider"])
        return cls(session, tokenizer, config, name=name, info=info)

    def forward(self, rows: list[dict[str, list[int]]]) -> np.ndarray:
        """Logits of tokenized rows, run in length-sorted batches of ``batch_size``; in input order."""
        logits = np.zeros((len(rows), len(self.labels)), dtype=np.float32)
        order = sorted(range(len(rows)), key=lambda i: len(rows[i]["input_ids"]))
        for start in range(0, len(order), self.batch_size):
            chunk = order[start : start + self.batch_size]
            batch = self.tokenizer.pad([rows[i] for i in chunk], return_tensors="np")
            feed = {name: np.asarray(batch[name], dtype=np.int64) for name in self._inputs}
            logits[chunk] = self.session.run([OUTPUT], feed)[0]
        return logits


def load_export(directory: Path, options: LoadOptions) -> OnnxClassifier:
    """An export that passed its parity gate (:class:`ExportRejected` otherwise)."""
    return OnnxClassifier.from_directory(directory, name=options.name, shown_as=options.shown_as)


register_backend("onnxruntime", lambda directory: (directory / ONNX_FILE).is_file(), load_export, priority=20)
