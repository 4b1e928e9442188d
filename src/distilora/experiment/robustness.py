"""The robustness measure of a run's evaluation: every model's decisions on seeded, perturbed copies of the test
split (:mod:`distilora.data.perturb`), one copy per kind, made once and shared by the models."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import numpy as np

from distilora.config import PERTURBATION_KINDS, TRUNCATE
from distilora.data.perturb import WORD_SHARE, perturb
from distilora.evaluation.calibration import Calibration
from distilora.evaluation.robustness import SEED, robustness_summary
from distilora.inference import Classifier

logger = logging.getLogger(__name__)


class RobustnessProbe:
    """The test texts' perturbed copies; :meth:`measure` runs a model on the texts a perturbation changed only."""

    def __init__(self, texts: Sequence[str], y_true: Sequence[int], num_labels: int, *, seed: int = SEED,
                 word_share: float = WORD_SHARE):
        self.y_true, self.num_labels, self.seed, self.word_share = list(y_true), num_labels, seed, word_share
        self.changed: dict[str, tuple[np.ndarray, list[str]]] = {}
        """Per kind: the indices of the test texts it changed, and their perturbed copies."""
        for kind in PERTURBATION_KINDS:
            copies = [perturb(text, kind, seed, word_share) for text in texts]
            indices = [i for i, (copy, text) in enumerate(zip(copies, texts, strict=True)) if copy != text]
            self.changed[kind] = (np.asarray(indices, dtype=np.int64), [copies[i] for i in indices])

    def measure(self, classifier: Classifier, calibration: Calibration, clean_logits: np.ndarray) -> dict[str, Any]:
        """results.json's ``robustness`` of ``classifier``, deciding as it is served (``calibration``)."""
        clean = calibration.decide(calibration.probabilities(clean_logits))
        decided = {}
        for kind, (indices, copies) in self.changed.items():
            decided[kind] = clean.copy()
            if len(indices):
                logits = classifier.logits(copies, TRUNCATE)
                decided[kind][indices] = calibration.decide(calibration.probabilities(logits))
        summary = robustness_summary(self.y_true, clean, decided, {k: len(v[0]) for k, v in self.changed.items()},
                                     self.num_labels)
        return {**summary, "seed": self.seed, "word_share": self.word_share}
