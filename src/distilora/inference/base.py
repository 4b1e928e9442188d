"""What every backend's classifier does the same way: texts in, token windows, logits, calibrated scores, labels.

A backend supplies ``forward(rows)`` (logits of encoded rows) and its facts (``labels``, ``layers``, ``device``, …)
through :meth:`Classifier.__init__`; reading long texts, calibration and the decision are done here, once.

A model directory with a ``calibration.json`` (every model a run evaluated) gives temperature-scaled scores, and
for binary tasks the label its tuned threshold decides (``Prediction.threshold`` says which); ``calibrated=False``
gives the raw softmax and the argmax, which is what a plain ``transformers`` pipeline returns.

Texts longer than the model's maximum length are read in overlapping token windows (``long_text="windows"``, the
default): a binary model's text scores are those of the window with the highest positive-class probability, a
multi-class model's the mean of its windows' logits. ``long_text="truncate"`` reads the first window only, as the
models were trained and evaluated. The page, the JSON API and ``distilora score`` all go through this one rule.
"""

from __future__ import annotations

import threading
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
from transformers import PretrainedConfig, PreTrainedTokenizerBase

from distilora.config import WINDOWS, check_long_text
from distilora.data.encoding import Encoded, encode_texts
from distilora.evaluation.calibration import ARGMAX_DECISION, POSITIVE_INDEX, Calibration
from distilora.inference.registry import load_classifier
from distilora.label_space import (
    DEFAULT_THRESHOLD,
    MULTI_LABEL_PROBLEM,
    decide_labels,
    decided_names,
    label_probabilities,
)
from distilora.precision import FP32


@dataclass
class Prediction:
    """One text's answer: the predicted label, every class's probability, whether the text was truncated, and the
    threshold that decided the label (None: the argmax). A multi-label model's answer also lists every label that
    is on (``labels``), each decided by its own threshold (``thresholds``); ``label`` is then the most probable one."""

    label: str
    scores: dict[str, float]
    truncated: bool = False
    """True when part of the text was not read (``long_text="truncate"`` and more tokens than the model reads)."""
    threshold: float | None = None
    """The positive class was chosen when its (calibrated) probability was at least this; None: the argmax."""
    windows: int = 1
    """How many token windows of the text the model read (1 unless the text is longer than its maximum length)."""
    labels: list[str] | None = None
    """Multi-label models: the labels that are on (possibly none); None for a single-label model."""
    thresholds: dict[str, float] | None = None
    """Multi-label models: each label's threshold."""


@dataclass
class TextScores:
    """One row of logits per text (long texts' windows combined), and how each text was read."""

    logits: np.ndarray
    truncated: list[bool]
    windows: list[int]


def combine_windows(logits: np.ndarray, owner: np.ndarray, num_texts: int, positive_index: int,
                    multi_label: bool = False) -> np.ndarray:
    """One row of logits per text from its windows' rows (``owner``: each row's text, ascending): a binary model's
    most positive window (the max of the positive-class probability, which temperature scaling does not reorder), a
    multi-label model's most positive window per label, a multi-class model's mean of window logits."""
    if len(logits) == num_texts:  # every text fits in one window
        return logits
    starts = np.flatnonzero(np.r_[True, owner[1:] != owner[:-1]])
    if multi_label:
        return np.maximum.reduceat(logits, starts, axis=0)
    if logits.shape[1] == 2:
        margin = logits[:, positive_index] - logits[:, 1 - positive_index]
        most_positive = np.lexsort((-margin, owner))[starts]  # per text, the window of the largest margin
        return logits[most_positive]
    counts = np.diff(np.r_[starts, len(owner)])
    return (np.add.reduceat(logits.astype(np.float64), starts, axis=0) / counts[:, None]).astype(logits.dtype)


def config_labels(config: PretrainedConfig) -> list[str]:
    """A transformers config's labels, in label-id order."""
    return [config.id2label[i] for i in range(config.num_labels)]


def config_multi_label(config: PretrainedConfig) -> bool:
    """Whether a transformers config's model is multi-label (sigmoid per label)."""
    return getattr(config, "problem_type", None) == MULTI_LABEL_PROBLEM


def whole_texts(texts: Sequence[str], long_text: str) -> Encoded:
    """Each text as one row, read whole (for models that count words rather than read tokens)."""
    check_long_text(long_text)
    texts = list(texts)
    return Encoded(texts, np.arange(len(texts), dtype=np.int64), [1] * len(texts), [False] * len(texts))  # type: ignore[arg-type]


class Classifier(ABC):
    """A trained distilora model, ready to classify text: :func:`~distilora.inference.load_classifier` gives one."""

    backend: ClassVar[str]
    """What runs the model: ``pytorch``, ``onnxruntime`` (an export), ``numpy`` (TF-IDF / majority baselines), …"""
    long_text: str = WINDOWS
    """How texts longer than ``max_length`` tokens are read: ``windows`` (every token) or ``truncate``."""

    def __init__(self, labels: Sequence[str], *, name: str = "model",
                 tokenizer: PreTrainedTokenizerBase | None = None, max_length: int | None = None,
                 batch_size: int = 64, device: str = "cpu", layers: list[int] | None = None,
                 precision: str | None = None, calibration: Calibration | None = None, multi_label: bool = False):
        """``tokenizer``: texts are read in token windows of ``max_length`` (default: the tokenizer's, at most 512);
        without one each text is one row, read whole, and ``max_length`` is required (characters)."""
        if max_length is None and tokenizer is None:
            raise ValueError("a classifier without a tokenizer needs max_length")
        self.labels = list(labels)
        self.name = name
        self.tokenizer = tokenizer
        self.max_length = int(max_length or min(tokenizer.model_max_length, 512))  # type: ignore[union-attr]
        self.batch_size = batch_size
        self.device = device
        """Where the model computes (``cpu``, ``cuda:0``, …)."""
        self.layers = layers
        """The teacher layers a student kept (None: not a layer-selected student)."""
        self.precision = precision
        """``fp32`` or ``bf16`` for tensor backends; None where there is no tensor precision to choose."""
        self.calibration = calibration
        """Temperature and decision threshold (``calibration.json``); None: raw softmax and argmax."""
        self.multi_label = multi_label
        """Independent labels (sigmoid, a threshold each) rather than exclusive classes (softmax, argmax)."""
        # Fast tokenizers are not safe to call from several threads at once.
        self._tokenizer_lock = threading.Lock()

    @classmethod
    def load(cls, path: str | Path, name: str | None = None, device: str | None = None, verify: bool = True,
             precision: str = FP32) -> Classifier:
        """The same as :func:`~distilora.inference.load_classifier` (whichever backend reads the directory)."""
        return load_classifier(path, name, device, verify, precision)

    @abstractmethod
    def forward(self, rows: list[Any]) -> np.ndarray:
        """Logits of encoded rows (``encode(...).rows``: token fields, or texts without a tokenizer), in order."""

    def encode(self, texts: Sequence[str], long_text: str | None = None) -> Encoded:
        """Token windows of at most ``max_length`` tokens: every window of a long text (``windows``) or its first
        (``truncate``); without a tokenizer, each text whole."""
        if self.tokenizer is None:
            return whole_texts(texts, long_text or self.long_text)
        with self._tokenizer_lock:
            return encode_texts(self.tokenizer, texts, self.max_length, long_text or self.long_text)

    def scores(self, texts: Sequence[str], long_text: str | None = None) -> TextScores:
        """One row of logits per text (long texts' windows combined), and how each text was read."""
        encoded = self.encode(texts, long_text)
        logits = combine_windows(self.forward(encoded.rows), encoded.owner, len(encoded.windows), self.positive_index,
                                 self.multi_label)
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
        """Class probabilities from logits (a multi-label model's: each label's sigmoid): temperature-scaled when
        calibrated (and calibrated=True)."""
        if calibrated and self.calibration is not None:
            return self.calibration.probabilities(logits)
        return label_probabilities(logits, self.multi_label)

    def predict_proba(self, texts: Sequence[str], calibrated: bool = True, long_text: str | None = None) -> np.ndarray:
        """Class probabilities, one row per text (columns in ``self.labels`` order); ``calibrated=False``: the raw
        softmax (a plain ``pipeline``'s)."""
        return self.probabilities(self.logits(texts, long_text), calibrated)

    def predict(self, texts: Sequence[str] | str, calibrated: bool = True,
                long_text: str | None = None) -> list[Prediction]:
        """The label and class probabilities for each text: calibrated scores and the tuned threshold where the model
        has them; ``calibrated=False``: the raw softmax and the argmax (a multi-label model's: the raw sigmoids, each
        label on at 0.5). ``long_text``: ``windows`` or ``truncate`` (default: the classifier's ``long_text``)."""
        texts = [texts] if isinstance(texts, str) else list(texts)
        scored = self.scores(texts, long_text)
        probs = self.probabilities(scored.logits, calibrated)
        if self.multi_label:
            return self._multi_label_predictions(probs, scored, calibrated)
        use = self.calibration if calibrated else None
        decided = use.decide(probs) if use is not None else probs.argmax(axis=1) if len(probs) else []
        threshold = use.threshold if use is not None else None
        labels = self.labels
        return [
            Prediction(labels[int(k)], {label: float(p) for label, p in zip(labels, row, strict=True)}, cut, threshold,
                       windows)
            for row, k, cut, windows in zip(probs, decided, scored.truncated, scored.windows, strict=True)
        ]

    def label_thresholds(self, calibrated: bool = True) -> list[float]:
        """A multi-label model's threshold per label: calibrated ones where fitted, else 0.5 each."""
        fitted = getattr(self.calibration, "thresholds", None) if calibrated else None
        return list(fitted) if fitted else [DEFAULT_THRESHOLD] * len(self.labels)

    def _multi_label_predictions(self, probs: np.ndarray, scored: TextScores, calibrated: bool) -> list[Prediction]:
        thresholds = self.label_thresholds(calibrated)
        decided = decide_labels(probs, thresholds)
        labels, by_label = self.labels, dict(zip(self.labels, thresholds, strict=True))
        return [
            Prediction(labels[int(np.argmax(row))], {label: float(p) for label, p in zip(labels, row, strict=True)},
                       cut, None, windows, decided_names(on, labels), by_label)
            for row, on, cut, windows in zip(probs, decided, scored.truncated, scored.windows, strict=True)
        ]

    @property
    def decision(self) -> dict:
        """How :meth:`predict` picks labels: ``rule`` (threshold / argmax), ``threshold``, ``positive_label``,
        ``policy``, ``target`` and ``temperature`` (None: not calibrated)."""
        return self.calibration.decision() if self.calibration is not None else dict(ARGMAX_DECISION)
