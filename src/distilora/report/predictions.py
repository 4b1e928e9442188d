"""Read the per-item predictions a run saved under ``predictions/<name>.json``."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

logger = logging.getLogger(__name__)


@dataclass
class SplitPredictions:
    """True labels and class probabilities of one model on one split, item by item."""

    y_true: np.ndarray
    probs: np.ndarray

    @property
    def y_pred(self) -> np.ndarray:
        return self.probs.argmax(axis=1) if len(self.probs) else np.zeros(0, dtype=np.int64)

    @property
    def correct(self) -> np.ndarray:
        return self.y_pred == self.y_true


def load_predictions(run_dir: Path, names: list[str]) -> dict[str, dict[str, SplitPredictions]]:
    """``{model: {split: predictions}}`` for every model whose predictions file exists (others are logged)."""
    out: dict[str, dict[str, SplitPredictions]] = {}
    for name in names:
        path = run_dir / "predictions" / f"{name}.json"
        if not path.exists():
            logger.warning("%s: missing, so %s gets no confidence intervals or paired tests", path, name)
            continue
        raw = json.loads(path.read_text())
        out[name] = {
            split: SplitPredictions(np.asarray(data["y_true"], dtype=np.int64),
                                    np.asarray(data["probs"], dtype=np.float64).reshape(len(data["y_true"]), -1))
            for split, data in raw.items()
        }
    return out
