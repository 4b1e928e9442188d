"""The PyTorch backend: a ``transformers`` sequence classifier, run in length-sorted batches."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from transformers import AutoModelForSequenceClassification, AutoTokenizer, PreTrainedModel, PreTrainedTokenizerBase

from distilora.evaluation.calibration import Calibration
from distilora.inference.base import Classifier, config_labels, config_multi_label
from distilora.inference.registry import LoadOptions, register_backend
from distilora.precision import FP32, autocast, resolve_precision

CONFIG_FILE = "config.json"


@dataclass
class ForwardOutput:
    logits: np.ndarray
    cls: np.ndarray | None = None


def forward_in_batches(
    model: torch.nn.Module,
    encodings: list[dict[str, list[int]]],
    tokenizer: PreTrainedTokenizerBase,
    batch_size: int = 64,
    want_cls: bool = False,
    precision: str = FP32,
) -> ForwardOutput:
    """Run ``model`` over tokenized examples in length-sorted batches (little padding); results in input order.

    ``want_cls``: also the [CLS] state after the embeddings and after every layer, ``(n, depth + 1, hidden)``.
    ``precision``: ``bf16`` runs the forward pass under bf16 autocast (weights stay fp32); outputs are fp32 either way.
    """
    device = next(model.parameters()).device
    order = sorted(range(len(encodings)), key=lambda i: len(encodings[i]["input_ids"]))
    logits: list[np.ndarray] = [None] * len(encodings)  # type: ignore[list-item]
    cls: list[np.ndarray] = [None] * len(encodings)  # type: ignore[list-item]
    was_training = model.training
    model.eval()
    with torch.inference_mode():
        for start in range(0, len(order), batch_size):
            chunk = order[start : start + batch_size]
            batch = tokenizer.pad([encodings[i] for i in chunk], return_tensors="pt")
            batch = {k: v.to(device) for k, v in batch.items()}
            with autocast(precision, device.type):
                outputs = model(**batch, output_hidden_states=want_cls)
            batch_logits = outputs.logits.float().cpu().numpy()
            batch_cls = (torch.stack([h[:, 0] for h in outputs.hidden_states], dim=1).float().cpu().numpy()
                         if want_cls else None)
            for row, index in enumerate(chunk):
                logits[index] = batch_logits[row]
                if want_cls:
                    cls[index] = batch_cls[row]
    model.train(was_training)
    num_labels = getattr(getattr(model, "config", None), "num_labels", 0)
    return ForwardOutput(
        logits=np.stack(logits) if logits else np.zeros((0, num_labels), dtype=np.float32),
        cls=np.stack(cls) if want_cls and cls else None,
    )


class TorchClassifier(Classifier):
    """A ``transformers`` model and its tokenizer (teacher, students, merged LoRA)."""

    backend = "pytorch"

    def __init__(self, model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, name: str = "model",
                 max_length: int | None = None, batch_size: int = 64, precision: str = FP32,
                 calibration: Calibration | None = None):
        """``precision``: ``fp32``, ``bf16`` or ``auto`` (resolved for the model's device; ``bf16`` refused without
        native support)."""
        self.model = model.eval()
        device = next(model.parameters()).device
        super().__init__(config_labels(model.config), name=name, tokenizer=tokenizer, max_length=max_length,
                         batch_size=batch_size, device=str(device),
                         layers=getattr(model.config, "distilora_layers", None),
                         precision=resolve_precision(precision, device.type), calibration=calibration,
                         multi_label=config_multi_label(model.config))

    def forward(self, rows: list[dict[str, list[int]]]) -> np.ndarray:
        """Logits of tokenized rows (length-sorted batches of ``batch_size``), in input order."""
        return forward_in_batches(self.model, rows, self.tokenizer, self.batch_size, precision=self.precision).logits

    @classmethod
    def from_directory(cls, directory: Path, options: LoadOptions) -> TorchClassifier:
        model = AutoModelForSequenceClassification.from_pretrained(directory).to(options.device)
        return cls(model, AutoTokenizer.from_pretrained(directory), name=options.name, precision=options.precision)


register_backend("pytorch", lambda directory: (directory / CONFIG_FILE).exists(), TorchClassifier.from_directory,
                 priority=-100)
