"""The numpy backend: a TF-IDF or majority-class baseline (``models.text_baselines``), which reads texts whole."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from distilora.config import MAX_TEXT_CHARS
from distilora.evaluation.calibration import Calibration
from distilora.inference.base import Classifier
from distilora.inference.registry import LoadOptions, register_backend
from distilora.models.text_baselines import TextBaseline, is_text_baseline


class TextBaselineClassifier(Classifier):
    """A TF-IDF or majority-class baseline behind the same interface (nothing is tokenized or truncated: each text is
    one row, so ``long_text`` changes nothing)."""

    backend = "numpy"

    def __init__(self, baseline: TextBaseline, name: str = "model", batch_size: int = 64,
                 calibration: Calibration | None = None):
        super().__init__(baseline.labels, name=name, max_length=MAX_TEXT_CHARS, batch_size=batch_size,
                         calibration=calibration, multi_label=baseline.multi_label)
        self.baseline = baseline

    def forward(self, rows: list[str]) -> np.ndarray:
        """Decision scores of whole texts (counts over the whole text)."""
        return self.baseline.logits(rows)

    @classmethod
    def from_directory(cls, directory: Path, options: LoadOptions) -> TextBaselineClassifier:
        return cls(TextBaseline.load(directory), name=options.name)


register_backend("numpy", is_text_baseline, TextBaselineClassifier.from_directory, priority=10)
