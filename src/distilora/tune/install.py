"""The best trial's model becomes a model of the run: ``<run>/<route>-tuned/``, a finished stage whose fingerprint
the run accepts, so that ``distilora run --routes …,<route>-tuned`` reuses it (evaluates, calibrates and reports
it) instead of training it again."""

from __future__ import annotations

import shutil
from pathlib import Path

from distilora.artifacts import MANIFEST
from distilora.experiment import RunContext
from distilora.routes import RouteSetup, create_route
from distilora.routes.registry import student_depth
from distilora.routes.tuned import SUFFIX
from distilora.run_dir import RunLayout, StageRecord, StageStore
from distilora.tune.tuner import RouteTuning


def tuned_name(route: str) -> str:
    return f"{route}{SUFFIX}"


def install_tuned(context: RunContext, tuning: RouteTuning, store: StageStore | None = None) -> Path | None:
    """Copy the kept model of ``tuning``'s best trial into the run as the finished stage ``<route>-tuned`` (after
    ``tune.json`` lists the route); None when no trial kept a model. An installed stage with the same
    fingerprint is kept as it is."""
    if tuning.best_model_dir is None or tuning.best_number is None:
        return None
    config = context.config
    store = store or StageStore()
    route = create_route(tuned_name(tuning.route), RouteSetup(context.teacher_depth,
                                                             student_depth(config, context.teacher_depth)))
    fp = route.fingerprint(context, config.seed)
    stage_dir = RunLayout(config.resolved_output_dir(), config.seed).model_dir(route.name)
    if store.completed(stage_dir, fp) is not None:
        return stage_dir
    partial = store.start(stage_dir)
    shutil.copytree(tuning.best_model_dir, partial, dirs_exist_ok=True, ignore=shutil.ignore_patterns(MANIFEST))
    route.tuned(config)  # the settings, for the record's details
    record = StageRecord(name=route.name, route=route.kind.value, fingerprint=fp, layers=route.layers,
                         seed=config.seed, precision=context.precision if route.uses_trainer else None,
                         world_size=1, details=route.details())
    store.finish_stage(partial, stage_dir, record, context.data_fingerprint)
    return stage_dir
