"""A Trainer callback that reports each validation pass to the Optuna trial and stops a trial worth pruning."""

from __future__ import annotations

import logging
import math

import optuna
from transformers import TrainerCallback, TrainerControl, TrainerState, TrainingArguments

from distilora.tune.outcome import Evaluation

logger = logging.getLogger(__name__)

MACRO_F1_METRIC = "eval_macro_f1"
LOSS_METRIC = "eval_loss"
"""The names the distilora Trainer gives validation macro-F1 and loss (``compute_metrics`` with the ``eval_``
prefix)."""


class PruningCallback(TrainerCallback):
    """At each evaluation: record the validation macro-F1 and loss, report their score to the trial (step: the
    number of validation passes before this one), and stop training when the trial's pruner says so (except at the
    last pass, after which the trial completes).

    The Trainer does not raise: the objective reads ``pruned`` after training and raises ``optuna.TrialPruned``.
    """

    def __init__(self, trial: optuna.Trial):
        self.trial = trial
        self.evaluations: list[Evaluation] = []
        self.pruned_at: int | None = None
        """The validation pass (0-based) after which the pruner stopped the trial."""

    @property
    def pruned(self) -> bool:
        return self.pruned_at is not None

    def on_evaluate(self, args: TrainingArguments, state: TrainerState, control: TrainerControl, metrics=None,
                    **kwargs) -> None:
        if not metrics or MACRO_F1_METRIC not in metrics or self.pruned:
            return
        evaluation = Evaluation(epoch=float(state.epoch or 0.0), macro_f1=float(metrics[MACRO_F1_METRIC]),
                                loss=float(metrics.get(LOSS_METRIC, math.nan)), step=state.global_step)
        step = len(self.evaluations)
        self.evaluations.append(evaluation)
        self.trial.report(evaluation.score, step=step)
        # The last pass of a trial ends it anyway: it completes, with the value it reached.
        last = bool(state.max_steps) and state.global_step >= state.max_steps
        if not last and self.trial.should_prune():
            logger.info("trial %d pruned after validation pass %d (macro-F1 %.4f at epoch %.2f)", self.trial.number,
                        step, evaluation.macro_f1, evaluation.epoch)
            self.pruned_at = step
            control.should_training_stop = True
