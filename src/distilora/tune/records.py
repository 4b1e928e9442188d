"""What a finished trial records (its user attributes), and which trial is best."""

from __future__ import annotations

import json
import math
from typing import Any

import optuna
from optuna.trial import FrozenTrial, TrialState

SETTINGS_ATTR = "settings"
HISTORY_ATTR = "history"
MACRO_F1_ATTR = "validation_macro_f1"
LOSS_ATTR = "validation_loss"
EPOCH_ATTR = "best_epoch"
SECONDS_ATTR = "seconds"
MODEL_DIR_ATTR = "model_dir"
"""The directory of the trial's kept model (while it leads its study)."""
DEFAULT_ATTR = "default"
"""Marks the enqueued trial with the route's default settings."""
WORKER_ATTR = "worker"
"""The process running the trial (host, pid, start time): how a trial left by a killed process is recognised."""
OVER_BUDGET_ATTR = "over_budget"
"""Marks a trial created after the budget was spent (failed before it ran anything; not counted)."""


def jsonable(settings: dict[str, Any]) -> dict[str, Any]:
    """Settings as the storage keeps them (tuples as lists)."""
    return json.loads(json.dumps(settings))


def trial_rank(trial: FrozenTrial) -> tuple[float, float, int]:
    """Higher is better: validation macro-F1, then the lower validation loss, then the earlier trial."""
    loss = trial.user_attrs.get(LOSS_ATTR)
    loss = loss if isinstance(loss, int | float) and math.isfinite(loss) else math.inf
    return (trial.user_attrs.get(MACRO_F1_ATTR, -math.inf), -loss, -trial.number)


def best_trial(study: optuna.Study) -> FrozenTrial | None:
    """The finished trial with the best validation macro-F1 (ties: loss, then the earlier); None before any."""
    complete = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    return max(complete, key=trial_rank, default=None)
