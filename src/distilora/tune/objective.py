"""The objective of a route's study: one trial = the route trained with sampled settings, valued at its best epoch."""

from __future__ import annotations

import math
import time
from dataclasses import asdict

import optuna

from distilora.routes.space import SearchSpace
from distilora.tune.kept_models import KeptModels
from distilora.tune.outcome import Runner, best_evaluation
from distilora.tune.pruning import PruningCallback
from distilora.tune.records import (
    EPOCH_ATTR,
    HISTORY_ATTR,
    LOSS_ATTR,
    MACRO_F1_ATTR,
    SECONDS_ATTR,
    SETTINGS_ATTR,
    WORKER_ATTR,
    jsonable,
)
from distilora.tune.study import Budget, worker_identity


class RouteObjective:
    """Samples a trial's settings, runs them, records settings and per-evaluation history as user attributes,
    raises ``optuna.TrialPruned`` for a trial its pruner stopped, keeps the model of a trial that leads, and values
    the trial at its best evaluation (:data:`distilora.tune.outcome.TIE_BREAK`)."""

    def __init__(self, space: SearchSpace, runner: Runner, budget: Budget, kept: KeptModels | None = None):
        self.space = space
        self.runner = runner
        self.budget = budget
        self.kept = kept

    def __call__(self, trial: optuna.Trial) -> float:
        self.budget.admit(trial)
        trial.set_user_attr(WORKER_ATTR, worker_identity())
        settings = self.space.suggest(trial)
        trial.set_user_attr(SETTINGS_ATTR, jsonable(settings))
        pruning = PruningCallback(trial)
        started = time.perf_counter()
        outcome = self.runner(settings, [pruning])
        history = outcome.history or pruning.evaluations
        trial.set_user_attr(HISTORY_ATTR, [asdict(e) for e in history])
        trial.set_user_attr(SECONDS_ATTR, round(outcome.seconds or time.perf_counter() - started, 3))
        if pruning.pruned:
            raise optuna.TrialPruned(f"pruned after validation pass {pruning.pruned_at}")
        best = best_evaluation(history)
        trial.set_user_attr(MACRO_F1_ATTR, best.macro_f1)
        trial.set_user_attr(LOSS_ATTR, best.loss if math.isfinite(best.loss) else None)
        trial.set_user_attr(EPOCH_ATTR, best.epoch)
        if self.kept is not None and outcome.save_model is not None:
            self.kept.keep_if_leading(trial, best, outcome.save_model)
        return best.score
