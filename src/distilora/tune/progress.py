"""Progress of a route's study: one log line per finished trial, and a bar per route."""

from __future__ import annotations

import logging

import optuna
from optuna.trial import FrozenTrial, TrialState
from tqdm.auto import tqdm

from distilora.tune.records import DEFAULT_ATTR, MACRO_F1_ATTR, OVER_BUDGET_ATTR, best_trial

logger = logging.getLogger(__name__)


def format_params(params: dict) -> str:
    return " ".join(f"{name}={value:.3g}" if isinstance(value, float) else f"{name}={value}"
                    for name, value in params.items())


def trial_line(route: str, trial: FrozenTrial, best: FrozenTrial | None) -> str:
    """``odd trial 3 (default) complete: macro-F1 0.6123 · best 0.6400 (trial 1) · train.learning_rate=5e-05 …``."""
    label = f"{route} trial {trial.number}" + (" (default)" if trial.user_attrs.get(DEFAULT_ATTR) else "")
    if trial.state == TrialState.COMPLETE:
        outcome = f"complete: macro-F1 {trial.user_attrs[MACRO_F1_ATTR]:.4f}"
    else:
        outcome = trial.state.name.lower()
        if trial.state == TrialState.PRUNED and trial.intermediate_values:
            outcome += f" after validation pass {max(trial.intermediate_values)}"
    leader = f"best {best.user_attrs[MACRO_F1_ATTR]:.4f} (trial {best.number})" if best else "no finished trial yet"
    return f"{label} {outcome} · {leader} · {format_params(trial.params)}"


class TrialProgress:
    """An Optuna study callback: logs each finished trial and moves the route's bar."""

    def __init__(self, route: str, total: int | None, done: int = 0, enabled: bool = True):
        self.route = route
        self.bar = tqdm(total=total, initial=done, desc=route, unit="trial", disable=not enabled, leave=True)

    def __call__(self, study: optuna.Study, trial: FrozenTrial) -> None:
        if trial.user_attrs.get(OVER_BUDGET_ATTR):
            return
        self.bar.update(1)
        logger.info(trial_line(self.route, trial, best_trial(study)))

    def close(self) -> None:
        self.bar.close()
