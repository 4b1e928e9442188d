"""Route settings given as dotted config paths (``{"train.learning_rate": 3e-5, "distil.temperature": 4}``),
applied to an :class:`~distilora.config.ExperimentConfig` with :func:`dataclasses.replace` (so every value is
checked by its dataclass)."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from distilora.config import ExperimentConfig

if TYPE_CHECKING:
    from distilora.routes.base import Route

TRAIN = "train"
"""The route's own training settings: ``teacher_training``, ``student_training`` or ``lora_training``."""
TUNABLE = ("teacher_training", "student_training", "lora_training", "distillation", "lora", "tfidf", "class_weight",
           "student_depth")
"""What a trial may change: training and route settings. The data, the teacher checkpoint, the precision and the
seed decide the context (data, tokenizer, teacher) that trials share."""
ALIASES = {"distil": "distillation"}


def training_field(config: ExperimentConfig, route: Route) -> str:
    """The name of the config's TrainConfig that ``route`` trains with; a ValueError for a route without one."""
    if not route.uses_trainer:
        raise ValueError(f"route {route.name!r} is fitted without the Trainer: {TRAIN}.* settings do not apply to it")
    training = route.training(config)
    return next(name for name in TUNABLE if getattr(config, name) is training)


def resolve_key(config: ExperimentConfig, route: Route | None, key: str) -> str:
    """``key`` with ``train.`` (the route's TrainConfig) and the aliases spelled as the config's own fields."""
    head, dot, rest = key.partition(".")
    if head == TRAIN and route is not None:
        head = training_field(config, route)
    return ALIASES.get(head, head) + dot + rest


def apply_overrides(config: ExperimentConfig, overrides: Mapping[str, Any], route: Route | None = None
                    ) -> tuple[ExperimentConfig, dict[str, Any]]:
    """A copy of ``config`` with each ``path: value`` of ``overrides`` set, and the overrides by the config's own
    paths; a ValueError naming the key for an unknown path or a refused value."""
    applied = {}
    for key, value in overrides.items():
        try:
            path = resolve_key(config, route, key)
            config = _replace(config, path, value)
        except (ValueError, TypeError) as error:
            raise ValueError(f"override {key!r}: {error}") from None
        applied[path] = value
    return config, applied


def _replace(config: ExperimentConfig, path: str, value: Any) -> ExperimentConfig:
    head, *rest = path.split(".")
    if head not in TUNABLE:
        raise ValueError(f"unknown, or not a route setting; use {TRAIN}.FIELD or one of {', '.join(TUNABLE)} "
                         "(distil.* for distillation.*)")
    current = getattr(config, head)
    if dataclasses.is_dataclass(current):
        names = [field.name for field in dataclasses.fields(current)]
        if len(rest) != 1 or rest[0] not in names:
            raise ValueError(f"{type(current).__name__} has no field {'.'.join(rest)!r} (its fields: "
                             f"{', '.join(names)})")
        value = dataclasses.replace(current, **{rest[0]: value})
    elif rest:
        raise ValueError(f"{head} is a single value, not a group of settings")
    return dataclasses.replace(config, **{head: value})
