"""Batched inference and the two-line user API: ``Classifier.load(run_dir, "odd").predict(["text"])``.

A model directory with a ``calibration.json`` (every model a run evaluated) gives temperature-scaled scores, and
for binary tasks the label its tuned threshold decides (``Prediction.threshold`` says which); ``calibrated=False``
gives the raw softmax and the argmax, which is what a plain ``transformers`` pipeline returns.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from scipy.special import softmax
from transformers import (
    AutoModelForSequenceClassification,
    AutoTokenizer,
    PreTrainedModel,
    PreTrainedTokenizerBase,
)

from distilora.artifacts import verified_snapshot, wait_for_swap
from distilora.config import MAX_TEXT_CHARS
from distilora.data.encoding import TOKEN_FIELDS
from distilora.evaluation.calibration import ARGMAX_DECISION, Calibration
from distilora.models.text_baselines import TextBaseline, is_text_baseline
from distilora.precision import FP32, autocast, resolve_precision
from distilora.run_dir import CALIBRATION_FILE, ONNX_FILE, RunDirectory


@dataclass
class Prediction:
    """One text's answer: the predicted label, every class's probability, whether the text was truncated, and the
    threshold that decided the label (None: the argmax)."""

    label: str
    scores: dict[str, float]
    truncated: bool = False
    threshold: float | None = None
    """The positive class was chosen when its (calibrated) probability was at least this; None: the argmax."""


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


class Classifier:
    """A trained distilora model, ready to classify text."""

    backend = "pytorch"
    """What runs the model: ``pytorch``, ``onnxruntime`` (an export) or ``numpy`` (TF-IDF / majority baselines)."""
    calibration: Calibration | None = None
    """Temperature and decision threshold (``calibration.json``); None: raw softmax and argmax."""
    precision: str | None = None

    def __init__(self, model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, name: str = "model",
                 max_length: int | None = None, batch_size: int = 64, precision: str = FP32,
                 calibration: Calibration | None = None):
        self.model = model.eval()
        self.tokenizer = tokenizer
        self.name = name
        self.max_length = int(max_length or min(tokenizer.model_max_length, 512))
        self.batch_size = batch_size
        self.precision = resolve_precision(precision, next(model.parameters()).device.type)
        """``fp32`` or ``bf16`` (``auto`` resolved for the model's device; ``bf16`` refused without native support)."""
        self.calibration = calibration
        """Temperature and decision threshold (``calibration.json``); None: raw softmax and argmax."""
        # Fast tokenizers are not safe to call from several threads at once.
        self._tokenizer_lock = threading.Lock()

    @classmethod
    def load(cls, path: str | Path, name: str | None = None, device: str | None = None,
             verify: bool = True, precision: str = FP32) -> Classifier:
        """Load model ``name`` (teacher, odd, even, lora, …) of a run directory, or a model directory itself (an
        ONNX export directory, ``RUN/export/NAME[-int8]``, gives an :class:`~distilora.export.OnnxClassifier`).

        The directory's checksums are verified first (``verify=False`` skips that for models not made by distilora);
        a directory being swapped into place meanwhile is waited for and read again (bounded), not blamed.
        ``precision``: ``fp32``, ``bf16`` or ``auto`` (bf16 where the device computes it natively).
        Its ``calibration.json``, when there is one, sets the temperature and the decision threshold.
        """
        device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        resolve_precision(precision, torch.device(device).type)  # refuse bf16 without native support before anything
        path = Path(path)
        model_dir = RunDirectory(path).model_dir(name) if name else path
        wait_for_swap(model_dir)  # the evaluation may be swapping in the directory with its calibration
        if not (model_dir / "config.json").exists():
            available = sorted(p.name for p in path.iterdir() if (p / "config.json").exists()) if path.is_dir() else []
            hint = f"; models in {path}: {', '.join(available)}" if available else ""
            raise FileNotFoundError(f"{model_dir}: no saved model here (no config.json){hint}")
        with contextlib.ExitStack() as stack:
            # Load from a private copy of exactly the bytes whose checksums were verified.
            source = stack.enter_context(verified_snapshot(model_dir)) if verify else model_dir
            if (source / ONNX_FILE).is_file():
                from distilora.export.runtime import OnnxClassifier

                return OnnxClassifier.from_directory(source, name=name or model_dir.name, shown_as=model_dir)
            if is_text_baseline(source):
                classifier = TextBaselineClassifier(TextBaseline.load(source), name=name or model_dir.name)
            else:
                model = AutoModelForSequenceClassification.from_pretrained(source).to(device)
                classifier = cls(model, AutoTokenizer.from_pretrained(source), name=name or model_dir.name,
                                 precision=precision)
            classifier.calibration = read_calibration(source, classifier.labels, shown_as=model_dir)
        return classifier

    @property
    def device(self) -> str:
        return str(next(self.model.parameters()).device)

    @property
    def labels(self) -> list[str]:
        return [self.model.config.id2label[i] for i in range(self.model.config.num_labels)]

    @property
    def layers(self) -> list[int] | None:
        return getattr(self.model.config, "distilora_layers", None)

    def encode(self, texts: Sequence[str]) -> tuple[list[dict[str, list[int]]], list[bool]]:
        """Token ids truncated to ``max_length``, and which texts were truncated."""
        texts = list(texts)
        if not texts:  # the tokenizer fails on an empty batch
            return [], []
        with self._tokenizer_lock:
            encoded = self.tokenizer(texts, truncation=False, verbose=False)
        keys = [k for k in TOKEN_FIELDS if k in encoded]
        limit = self.max_length
        # One tokenizer pass: cut long texts here, keeping the closing special token ([SEP]) exactly as
        # truncation=True would for a single sequence, and remember which texts were cut.
        tail = 1 if self.tokenizer.num_special_tokens_to_add() == 2 else 0
        encodings, truncated = [], []
        for i in range(len(texts)):
            row = {k: encoded[k][i] for k in keys}
            cut = len(row["input_ids"]) > limit
            if cut:
                row = {k: v[: limit - tail] + v[len(v) - tail :] for k, v in row.items()}
            encodings.append(row)
            truncated.append(cut)
        return encodings, truncated

    def scores(self, texts: Sequence[str]) -> tuple[np.ndarray, list[bool]]:
        """The logits of ``texts`` and which texts were truncated."""
        encodings, truncated = self.encode(texts)
        output = forward_in_batches(self.model, encodings, self.tokenizer, self.batch_size, precision=self.precision)
        return output.logits, truncated

    def logits(self, texts: Sequence[str]) -> np.ndarray:
        return self.scores(texts)[0]

    def probabilities(self, logits: np.ndarray, calibrated: bool = True) -> np.ndarray:
        """Class probabilities from logits: temperature-scaled when calibrated (and calibrated=True)."""
        if calibrated and self.calibration is not None:
            return self.calibration.probabilities(logits)
        return softmax(np.asarray(logits, dtype=np.float64), axis=-1)

    def predict_proba(self, texts: Sequence[str], calibrated: bool = True) -> np.ndarray:
        """Class probabilities, one row per text (columns in ``self.labels`` order); ``calibrated=False``: the raw
        softmax (a plain ``pipeline``'s)."""
        return self.probabilities(self.logits(texts), calibrated)

    def predict(self, texts: Sequence[str] | str, calibrated: bool = True) -> list[Prediction]:
        """The label and class probabilities for each text: calibrated scores and the tuned threshold where the model
        has them; ``calibrated=False``: the raw softmax and the argmax."""
        texts = [texts] if isinstance(texts, str) else list(texts)
        logits, truncated = self.scores(texts)
        probs = self.probabilities(logits, calibrated)
        use = self.calibration if calibrated else None
        decided = use.decide(probs) if use is not None else probs.argmax(axis=1) if len(probs) else []
        threshold = use.threshold if use is not None else None
        labels = self.labels
        return [
            Prediction(labels[int(k)], {label: float(p) for label, p in zip(labels, row, strict=True)}, cut, threshold)
            for row, k, cut in zip(probs, decided, truncated, strict=True)
        ]

    @property
    def decision(self) -> dict:
        """How :meth:`predict` picks labels: ``rule`` (threshold / argmax), ``threshold``, ``positive_label``,
        ``policy``, ``target`` and ``temperature`` (None: not calibrated)."""
        return self.calibration.decision() if self.calibration is not None else dict(ARGMAX_DECISION)


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


class TextBaselineClassifier(Classifier):
    """A TF-IDF or majority-class baseline behind the same interface (nothing is tokenized or truncated)."""

    backend = "numpy"

    def __init__(self, baseline: TextBaseline, name: str = "model", batch_size: int = 64,
                 calibration: Calibration | None = None):
        self.baseline = baseline
        self.name = name
        self.batch_size = batch_size
        self.max_length = MAX_TEXT_CHARS
        self.precision = None  # scikit-learn / counting: no tensor precision to choose
        self.calibration = calibration

    @property
    def device(self) -> str:
        return "cpu"

    @property
    def labels(self) -> list[str]:
        return list(self.baseline.labels)

    @property
    def layers(self) -> list[int] | None:
        return None

    def scores(self, texts: Sequence[str]) -> tuple[np.ndarray, list[bool]]:
        texts = list(texts)
        return self.baseline.logits(texts), [False] * len(texts)
