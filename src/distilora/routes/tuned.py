"""``<route>-tuned``: a route trained with the settings of its best ``distilora tune`` trial.

The settings are read from the run's ``tune.json`` (``<output_dir>/tune.json``, written by ``distilora tune``),
which also installs the best trial's model as this route's finished stage: a run listing ``odd-tuned`` reuses it
(same fingerprint: the base route's under the tuned settings, and the settings), and trains it only when the stage
is missing.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from distilora.config import ExperimentConfig, TrainConfig
from distilora.results import TunedRoute
from distilora.routes.base import Route, RouteContext
from distilora.routes.kinds import RouteError
from distilora.routes.overrides import apply_overrides
from distilora.routes.registry import RouteSetup, create_route, register_spec_resolver
from distilora.routes.space import SearchSpace
from distilora.run_dir import RunLayout, StageRecord, read_tuning
from distilora.training.trainer import TrainResult

SUFFIX = "-tuned"
TUNED_FROM = "tuned_from"
"""The key of a tuned model's details (results.json) naming the route it was tuned from."""


def tuning_of(run_dir: Path, route: str) -> TunedRoute:
    """The route's study summary in ``<run_dir>/tune.json``; a RouteError naming what to run when it is missing."""
    layout = RunLayout(run_dir)
    tuning = read_tuning(layout).get(route)
    if tuning is None or not tuning.best_settings:
        raise RouteError(f"route {route}{SUFFIX}: {layout.tune_file} holds no tuned {route}; run `distilora tune "
                         f"--run {run_dir} --routes {route}` first")
    return tuning


class Tuned(Route):
    """The base route with its best trial's settings (``tune.json``); trained once, with the main seed."""

    main_seed_only = True

    def __init__(self, name: str, base: Route):
        super().__init__(name, base.layers)
        self.base = base
        self.variant_of = base.name
        self.kind = base.kind
        for flag in ("needs_teacher_targets", "tokenized", "can_collapse", "uses_trainer"):
            setattr(self, flag, getattr(base, flag))
        self.tuning: TunedRoute | None = None

    def tuned(self, config: ExperimentConfig) -> tuple[ExperimentConfig, TunedRoute]:
        """The config with the best trial's settings, and the study's summary."""
        if self.tuning is None:
            self.tuning = tuning_of(config.resolved_output_dir(), self.base.name)
        settings = {key: tuple(value) if isinstance(value, list) else value
                    for key, value in self.tuning.best_settings.items()}
        return apply_overrides(config, settings, self.base)[0], self.tuning

    def _tuned_context(self, ctx: RouteContext) -> RouteContext:
        return ctx.with_config(self.tuned(ctx.config)[0])  # RunContext: the same data, tokenizer and teacher

    def fingerprint_parts(self, ctx: RouteContext) -> tuple[Any, ...]:
        tuning = self.tuned(ctx.config)[1]
        return ("tuned", *self.base.fingerprint_parts(self._tuned_context(ctx)), sorted(tuning.best_settings.items()))

    def train(self, ctx: RouteContext, seed: int, work_dir: Path) -> TrainResult:
        return self.base.train(self._tuned_context(ctx), seed, work_dir)

    def training(self, config: ExperimentConfig) -> TrainConfig:
        """The base route's training settings with the tuned ones (a route fitted without the Trainer has none)."""
        return self.base.training(self.tuned(config)[0])

    def save(self, model: Any, directory: Path) -> None:
        self.base.save(model, directory)

    def describe(self, config: ExperimentConfig) -> str:
        tuned, tuning = self.tuned(config)
        settings = ", ".join(f"{key}={value}" for key, value in tuning.best_settings.items())
        return f"{self.base.describe(tuned)}; tuned (trial {tuning.best_trial} of {tuning.trials}: {settings})"

    def details(self) -> dict[str, Any]:
        tuning = self.tuning
        own = {TUNED_FROM: self.base.name, "settings": tuning.best_settings if tuning else {},
               "trial": tuning.best_trial if tuning else None}
        return {**self.base.details(), **own}

    def search_space(self, config: ExperimentConfig) -> SearchSpace | None:
        return None

    def restore(self, record: StageRecord) -> None:
        self.base.restore(record)
        self.layers = self.base.layers


def _is_tuned_name(name: str) -> bool:
    return name.endswith(SUFFIX) and len(name) > len(SUFFIX)


def _make_tuned(name: str, setup: RouteSetup) -> Route:
    return Tuned(name, create_route(name[: -len(SUFFIX)], setup))


register_spec_resolver(_is_tuned_name, _make_tuned, f"ROUTE{SUFFIX}: a route with its `distilora tune` settings")
