"""What one trial gives the tuner: its validation scores per evaluation, and how to save its model."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from transformers import TrainerCallback

TIE_BREAK = 1e-6
"""Validation macro-F1 decides; between equal ones, the lower validation loss: score = F1 − 1e-6 · min(loss, 10),
so the loss moves a score by at most 1e-5 (for TPE and the pruner, two macro-F1 closer than that could swap).
The best trial and the kept model are chosen strictly by macro-F1, then loss, from the trials' attributes."""
LOSS_CAP = 10.0


@dataclass(frozen=True)
class Evaluation:
    """One validation pass of a trial (a TF-IDF fit is one pass at epoch 0)."""

    epoch: float
    macro_f1: float
    loss: float = math.nan
    """Validation loss; NaN when unknown (ranked below any known loss)."""
    step: int | None = None
    """The optimizer step it followed (None for a fit without the Trainer)."""

    @property
    def rank(self) -> tuple[float, float]:
        """Higher is better: macro-F1, then the lower loss."""
        return (self.macro_f1, -self.loss if math.isfinite(self.loss) else -math.inf)

    @property
    def score(self) -> float:
        """The trial value reported to Optuna (see :data:`TIE_BREAK`)."""
        loss = min(self.loss, LOSS_CAP) if math.isfinite(self.loss) else LOSS_CAP
        return self.macro_f1 - TIE_BREAK * loss


def best_evaluation(history: Iterable[Evaluation]) -> Evaluation:
    """The best pass (macro-F1, ties: loss, then the earlier one), not the last."""
    history = list(history)
    if not history:
        raise ValueError("the trial gave no validation score")
    return max(reversed(history), key=lambda e: e.rank)


@dataclass
class TrialOutcome:
    """What a runner returns for one trial's settings."""

    history: list[Evaluation]
    """Every validation pass, in order (empty: the pruning callback's record is used)."""
    seconds: float
    save_model: Callable[[Path], None] | None = None
    """Writes the trial's model (save_pretrained) into the directory given; called only for a trial that leads."""

    @property
    def best(self) -> Evaluation:
        return best_evaluation(self.history)


Runner = Callable[[dict[str, Any], list[TrainerCallback]], TrialOutcome]
"""Trains one route with the settings given (dotted, ``{"train.learning_rate": 3e-5, …}``) and the extra Trainer
callbacks, on the run's data, evaluating on validation; never reads the test split."""


def evaluations_from_log_history(log_history: Iterable[Mapping[str, Any]]) -> list[Evaluation]:
    """The validation passes in a Trainer's ``state.log_history`` (entries with ``eval_macro_f1``)."""
    return [Evaluation(epoch=float(entry.get("epoch", 0.0)), macro_f1=float(entry["eval_macro_f1"]),
                       loss=float(entry.get("eval_loss", math.nan)), step=entry.get("step"))
            for entry in log_history if "eval_macro_f1" in entry]
