"""``distilora tune``'s machinery: every route tuned with Optuna at the same budget, its best model kept.

A route declares its :class:`SearchSpace` (``Route.search_space(config)``, built in :mod:`distilora.routes.space`
from :func:`trainer_space`, :func:`distillation_space`, :func:`lora_space`, :func:`tfidf_space`);
a space file may replace its ranges (:func:`apply_space_file`).
:func:`open_storage` and :func:`open_study` give the route's study (the default settings enqueued first), and
:func:`tune_route` runs it with a :data:`Runner` that trains the route with a trial's settings and the
:class:`PruningCallback`, returning a :class:`TrialOutcome`.
"""

from distilora.routes.space import (
    CategoricalParam,
    FloatParam,
    IntParam,
    RatioParam,
    SearchSpace,
    SpaceError,
    distillation_space,
    lora_space,
    tfidf_space,
    trainer_space,
)
from distilora.routes.space_file import apply_space_file, read_space_file
from distilora.tune.kept_models import KeptModels
from distilora.tune.objective import RouteObjective
from distilora.tune.outcome import Evaluation, Runner, TrialOutcome, best_evaluation, evaluations_from_log_history
from distilora.tune.progress import TrialProgress
from distilora.tune.pruning import PruningCallback
from distilora.tune.records import best_trial
from distilora.tune.study import Budget, OverBudget, TuneError, fail_orphaned_trials, open_storage, open_study, tune_dir
from distilora.tune.tuner import RouteTuning, tune_route

__all__ = [
    "Budget", "CategoricalParam", "Evaluation", "FloatParam", "IntParam", "KeptModels", "OverBudget",
    "PruningCallback", "RatioParam", "RouteObjective", "RouteTuning", "Runner", "SearchSpace", "SpaceError",
    "TrialOutcome", "TrialProgress", "TuneError", "apply_space_file", "best_evaluation", "best_trial",
    "distillation_space", "evaluations_from_log_history", "fail_orphaned_trials", "lora_space", "open_storage",
    "open_study", "read_space_file", "tfidf_space", "trainer_space", "tune_dir", "tune_route",
]
