"""Tune one route: its study run to the budget, the best trial's model kept, and a summary of what happened."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import optuna
import torch
from optuna.trial import FrozenTrial, TrialState
from tqdm.contrib.logging import logging_redirect_tqdm

from distilora.results import TrialPoint, TunedRoute
from distilora.routes.space import SearchSpace
from distilora.tune.importance import Importances, parameter_importances
from distilora.tune.kept_models import KeptModels
from distilora.tune.objective import RouteObjective
from distilora.tune.outcome import Runner
from distilora.tune.progress import TrialProgress
from distilora.tune.records import DEFAULT_ATTR, LOSS_ATTR, MACRO_F1_ATTR, MODEL_DIR_ATTR, best_trial
from distilora.tune.study import Budget, OverBudget

CAUGHT = (torch.OutOfMemoryError,)
"""Errors that fail one trial (counted against the budget and logged) rather than the whole study: a batch size
from the space that does not fit the accelerator. Anything else stops the tuning."""


@dataclass(frozen=True)
class RouteTuning:
    """One route's study after a ``tune``: counts, the best and the default trial, the kept model."""

    route: str
    study_name: str
    trials: int
    """Trials counted against the budget (every process's)."""
    complete: int
    pruned: int
    failed: int
    seconds: float
    """Wall clock of this invocation."""
    best_number: int | None
    best_macro_f1: float | None
    best_loss: float | None
    best_settings: dict[str, Any] | None
    best_model_dir: Path | None
    default_number: int | None
    default_macro_f1: float | None
    history: list[TrialPoint]
    importances: Importances

    @property
    def record(self) -> TunedRoute:
        """What ``tune.json`` keeps of it."""
        return TunedRoute(
            route=self.route, study=self.study_name, trials=self.trials, complete=self.complete, pruned=self.pruned,
            failed=self.failed, seconds=self.seconds, default_trial=self.default_number,
            default_macro_f1=self.default_macro_f1, best_trial=self.best_number, best_macro_f1=self.best_macro_f1,
            best_settings=self.best_settings or {},
            model_dir=str(self.best_model_dir) if self.best_model_dir else None, history=self.history,
            importances=self.importances.values, importance_note=self.importances.note)


def trial_point(trial: FrozenTrial) -> TrialPoint:
    """A counted trial for the history: its validation macro-F1 when finished, its last report when pruned."""
    macro_f1 = trial.user_attrs.get(MACRO_F1_ATTR)
    if macro_f1 is None and trial.intermediate_values:
        macro_f1 = trial.intermediate_values[max(trial.intermediate_values)]
    return TrialPoint(number=trial.number, state=trial.state.name.lower(), macro_f1=macro_f1,
                      default=bool(trial.user_attrs.get(DEFAULT_ATTR)))


def summarize(study: optuna.Study, route: str, space: SearchSpace, budget: Budget, seconds: float) -> RouteTuning:
    counted = budget.counted(study)
    states = [t.state for t in counted]
    best = best_trial(study)
    default = next((t for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
                    if t.user_attrs.get(DEFAULT_ATTR)), None)
    model_dir = best.user_attrs.get(MODEL_DIR_ATTR) if best else None
    return RouteTuning(
        route=route, study_name=study.study_name, trials=len(counted), complete=states.count(TrialState.COMPLETE),
        pruned=states.count(TrialState.PRUNED), failed=states.count(TrialState.FAIL), seconds=round(seconds, 3),
        best_number=best.number if best else None,
        best_macro_f1=best.user_attrs.get(MACRO_F1_ATTR) if best else None,
        best_loss=best.user_attrs.get(LOSS_ATTR) if best else None,
        best_settings=space.settings_of(best.params) if best else None,
        best_model_dir=Path(model_dir) if model_dir and Path(model_dir).is_dir() else None,
        default_number=default.number if default else None,
        default_macro_f1=default.user_attrs.get(MACRO_F1_ATTR) if default else None,
        history=[trial_point(t) for t in counted], importances=parameter_importances(study),
    )


def tune_route(study: optuna.Study, route: str, space: SearchSpace, runner: Runner, budget: Budget,
               model_root: Path | None = None, progress: bool = True,
               caught: tuple[type[Exception], ...] = CAUGHT, collect_garbage: bool = True) -> RouteTuning:
    """Run ``study`` (from :func:`distilora.tune.study.open_study`) until the budget is spent; the leading trial's
    model is kept under ``model_root`` (``<run>/.tune/<route>``) when given and the runner can save it.
    ``collect_garbage``: a full collection after each trial frees the trial's model (half a second with torch
    loaded: negligible beside a training run, not beside a trial of a few milliseconds)."""
    kept = KeptModels(model_root, study.study_name) if model_root is not None else None
    objective = RouteObjective(space, runner, budget, kept)
    bar = TrialProgress(route, budget.trials, len(budget.counted(study)), enabled=progress)
    callbacks = [c for c in (budget.stop_callback(), kept and kept.remove_overtaken, bar) if c is not None]
    started = time.perf_counter()
    verbosity = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(optuna.logging.WARNING)  # one line per trial is ours
    try:
        remaining = budget.remaining(study)
        if remaining != 0:
            with logging_redirect_tqdm():
                study.optimize(objective, n_trials=remaining, timeout=budget.timeout_s, callbacks=callbacks,
                               catch=(OverBudget, *caught), gc_after_trial=collect_garbage)
    finally:
        optuna.logging.set_verbosity(verbosity)
        bar.close()
    return summarize(study, route, space, budget, time.perf_counter() - started)

