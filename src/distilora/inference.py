"""Batched inference and the two-line user API: ``Classifier.load(run_dir, "odd").predict(["text"])``.

A model directory with a ``calibration.json`` (every model a run evaluated) gives temperature-scaled scores, and
for binary tasks the label its tuned threshold decides (``Prediction.threshold`` says which); ``calibrated=False``
gives the raw softmax and the argmax, which is what a plain ``transformers`` pipeline returns.

Texts longer than the model's maximum length are read in overlapping token windows (``long_text="windows"``, the
default): a binary model's text scores are those of the window with the highest positive-class probability, a
multi-class model's the mean of its windows' logits. ``long_text="truncate"`` reads the first window only, as the
models were trained and evaluated. The page, the JSON API and ``distilora score`` all go through this one rule.
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
from distilora.config import MAX_TEXT_CHARS, WINDOWS, check_long_text
from distilora.data.encoding import Encoded, encode_texts
from distilora.evaluation.calibration import ARGMAX_DECISION, POSITIVE_INDEX, Calibration
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
    """True when part of the text was not read (``long_text="truncate"`` and more tokens than the model reads)."""
    threshold: float | None = None
    """The positive class was chosen when its (calibrated) probability was at least this; None: the argmax."""
    windows: int = 1
    """How many token windows of the text the model read (1 unless the text is longer than its maximum length)."""


@dataclass
class TextScores:
    """One row of logits per text (long texts' windows combined), and how each text was read."""

    logits: np.ndarray
    truncated: list[bool]
    windows: list[int]


def combine_windows(logits: np.ndarray, owner: np.ndarray, num_texts: int, positive_index: int) -> np.ndarray:
    """One row of logits per text from its windows' rows (``owner``: each row's text, ascending): a binary model's
    most positive window (the max of the positive-class probability, which temperature scaling does not reorder), a
    multi-class model's mean of window logits."""
    if len(logits) == num_texts:  # every text fits in one window
        return logits
    starts = np.flatnonzero(np.r_[True, owner[1:] != owner[:-1]])
    if logits.shape[1] == 2:
        margin = logits[:, positive_index] - logits[:, 1 - positive_index]
        most_positive = np.lexsort((-margin, owner))[starts]  # per text, the window of the largest margin
        return logits[most_positive]
    counts = np.diff(np.r_[starts, len(owner)])
    return (np.add.reduceat(logits.astype(np.float64), starts, axis=0) / counts[:, None]).astype(logits.dtype)


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
    long_text: str = WINDOWS
    """How texts longer than ``max_length`` tokens are read: ``windows`` (every token) or ``truncate``."""

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

    def encode(self, texts: Sequence[str], long_text: str | None = None) -> Encoded:
        """Token windows of at most ``max_length`` tokens: every window of a long text (``windows``) or its first
        (``truncate``)."""
        with self._tokenizer_lock:
            return encode_texts(self.tokenizer, texts, self.max_length, long_text or self.long_text)

    def forward(self, rows: list[dict[str, list[int]]]) -> np.ndarray:
        """Logits of tokenized rows (length-sorted batches of ``batch_size``), in input order."""
        return forward_in_batches(self.model, rows, self.tokenizer, self.batch_size, precision=self.precision).logits

    def scores(self, texts: Sequence[str], long_text: str | None = None) -> TextScores:
        """One row of logits per text (long texts' windows combined), and how each text was read."""
        encoded = self.encode(texts, long_text)
        logits = combine_windows(self.forward(encoded.rows), encoded.owner, len(encoded.windows), self.positive_index)
        return TextScores(logits, encoded.truncated, encoded.windows)

    @property
    def positive_index(self) -> int:
        """The class whose probability a binary model's long texts are scored by (label id 1 unless calibrated
        otherwise)."""
        chosen = self.calibration.positive_index if self.calibration is not None else None
        return POSITIVE_INDEX if chosen is None else chosen

    def logits(self, texts: Sequence[str], long_text: str | None = None) -> np.ndarray:
        return self.scores(texts, long_text).logits

    def probabilities(self, logits: np.ndarray, calibrated: bool = True) -> np.ndarray:
        """Class probabilities from logits: temperature-scaled when calibrated (and calibrated=True)."""
        if calibrated and self.calibration is not None:
            return self.calibration.probabilities(logits)
        return softmax(np.asarray(logits, dtype=np.float64), axis=-1)

    def predict_proba(self, texts: Sequence[str], calibrated: bool = True, long_text: str | None = None) -> np.ndarray:
        """Class probabilities, one row per text (columns in ``self.labels`` order); ``calibrated=False``: the raw
        softmax (a plain ``pipeline``'s)."""
        return self.probabilities(self.logits(texts, long_text), calibrated)

    def predict(self, texts: Sequence[str] | str, calibrated: bool = True,
                long_text: str | None = None) -> list[Prediction]:
        """The label and class probabilities for each text: calibrated scores and the tuned threshold where the model
        has them; ``calibrated=False``: the raw softmax and the argmax. ``long_text``: ``windows`` or ``truncate``
        (default: the classifier's ``long_text``)."""
        texts = [texts] if isinstance(texts, str) else list(texts)
        scored = self.scores(texts, long_text)
        probs = self.probabilities(scored.logits, calibrated)
        use = self.calibration if calibrated else None
        decided = use.decide(probs) if use is not None else probs.argmax(axis=1) if len(probs) else []
        threshold = use.threshold if use is not None else None
        labels = self.labels
        return [
            Prediction(labels[int(k)], {label: float(p) for label, p in zip(labels, row, strict=True)}, cut, threshold,
                       windows)
            for row, k, cut, windows in zip(probs, decided, scored.truncated, scored.windows, strict=True)
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

    def scores(self, texts: Sequence[str], long_text: str | None = None) -> TextScores:
        """Counts over the whole text: nothing is cut, so ``long_text`` changes nothing."""
        texts = list(texts)
        check_long_text(long_text or self.long_text)
        return TextScores(self.baseline.logits(texts), [False] * len(texts), [1] * len(texts))
