"""How much each searched parameter mattered to a study's validation macro-F1 (``optuna.importance``)."""

from __future__ import annotations

from dataclasses import dataclass, field

import optuna
from optuna.importance import FanovaImportanceEvaluator
from optuna.trial import TrialState

from distilora.tune.records import MACRO_F1_ATTR

SEED = 0
"""fANOVA fits a random forest: seeded, so the same study gives the same importances."""


@dataclass(frozen=True)
class Importances:
    """Each parameter's share of the variance of validation macro-F1 (summing to 1), or why there is none."""

    values: dict[str, float] = field(default_factory=dict)
    note: str | None = None


def parameter_importances(study: optuna.Study) -> Importances:
    """fANOVA importances over the study's finished trials; empty, with a note, when they cannot be computed."""
    complete = [t for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
                if MACRO_F1_ATTR in t.user_attrs]
    if len(complete) < 2:
        return Importances(note=f"{len(complete)} finished trial(s): importances need at least 2")
    try:
        values = optuna.importance.get_param_importances(
            study, evaluator=FanovaImportanceEvaluator(seed=SEED),
            target=lambda trial: trial.user_attrs.get(MACRO_F1_ATTR, float("nan")))
    except (RuntimeError, ValueError) as error:  # e.g. no parameter varied across the finished trials
        return Importances(note=f"not computed: {error}")
    if not values:
        return Importances(note="no parameter varied across the finished trials")
    return Importances({name: round(float(value), 4) for name, value in values.items()})
