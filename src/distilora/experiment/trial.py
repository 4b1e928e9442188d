"""One route trained with other settings and scored on validation, without writing a run: :func:`train_route`, what a
hyperparameter tuner calls once per trial."""

from __future__ import annotations

import contextlib
import logging
import shutil
import tempfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from transformers import TrainerCallback, set_seed

from distilora import distributed
from distilora.config import ExperimentConfig, TrainConfig
from distilora.evaluation.metrics import classification_metrics
from distilora.experiment.context import TEACHER, RunContext, TeacherStage
from distilora.experiment.stages import StageRunner
from distilora.routes import Route, RouteSetup, create_route
from distilora.routes.overrides import TRAIN, apply_overrides
from distilora.routes.registry import student_depth
from distilora.run_dir import RunLayout, StageStore
from distilora.training.trainer import TrainResult

logger = logging.getLogger(__name__)

CONTEXT_FIELDS = ("data", "teacher", "precision", "seed", "output_dir", "transfer")
"""What a :class:`RunContext` was built from (its data, tokenizer, teacher, transfer texts and run): a trial's config
must agree with its context on them."""


@dataclass
class TrainedModel:
    """One route trained by :func:`train_route`, scored on validation."""

    route: str
    model: Any
    """The trained model (a ``PreTrainedModel``, or a TF-IDF / majority ``TextBaseline``)."""
    directory: Path | None
    """Where it was saved (``save=True``), else None."""
    validation_macro_f1: float
    validation_loss: float
    """Cross-entropy on validation, at the best validation pass (the checkpoint the Trainer keeps)."""
    best_epoch: float | None
    """The epoch of that pass; None for a model fitted without the Trainer."""
    history: list[dict[str, float]]
    """The Trainer's log: training losses and every validation pass (``eval_loss``, ``eval_macro_f1``, ``epoch``)."""
    train_seconds: float
    training: TrainConfig | None
    """The route's training settings; None for a model fitted without the Trainer."""
    config: ExperimentConfig
    """Every setting the trial used (the overrides applied)."""
    overrides: dict[str, Any] = field(default_factory=dict)
    """The overrides as applied, by the config's own paths (``student_training.learning_rate``, …)."""


class EvaluationCallback(TrainerCallback):
    """Calls ``report(metrics)`` after each validation pass (``eval_loss``, ``eval_macro_f1``, ``epoch``, …); a
    tuner's pruner raises from it to stop the trial."""

    def __init__(self, report: Callable[[dict[str, float]], None]):
        self.report = report

    def on_evaluate(self, args, state, control, metrics=None, **kwargs):
        self.report({**(metrics or {}), "epoch": state.epoch})


def train_route(config: ExperimentConfig, route_name: str, overrides: Mapping[str, Any] | None = None, *,
                context: RunContext | None = None, work_dir: str | Path | None = None,
                callbacks: Sequence[TrainerCallback] = (), save: bool = False) -> TrainedModel:
    """Train ``route_name`` with ``config`` changed by ``overrides``, and score it on validation.

    The run's data, tokenizer and teacher are reused: pass one ``context``
    (``RunContext(config, check_writable=False)``) to every trial to build them once. ``overrides`` are dotted
    paths: ``train.FIELD`` (the route's TrainConfig: ``learning_rate``,
    ``epochs``, ``warmup_ratio``, ``weight_decay``, ``batch_size``, …), ``distil.FIELD`` (``temperature``, ``w_ce``,
    ``w_kd``, ``w_cos``, ``w_hidden``), ``lora.FIELD`` (``r``, ``alpha``, ``dropout``, ``target_modules``),
    ``tfidf.FIELD`` (``c_grid``, ``ngram_max``, ``max_features``), ``class_weight``, ``student_depth``, or a
    TrainConfig by its own name (``student_training.epochs``); an unknown path is a ValueError naming it.
    ``callbacks``: extra Trainer callbacks (see :class:`EvaluationCallback`).

    Writes only into ``work_dir`` (a temporary directory, removed at the end, when None): the Trainer's checkpoints
    (removed), the model with ``save=True``, and, when the run has not made them, the teacher and its targets (kept
    in ``context`` for the next trials). Never reads the test split. Under torchrun every process calls it with the
    same arguments and trains its share (DDP); the main process alone writes.
    """
    if save and work_dir is None:
        raise ValueError("save=True needs a work_dir to save the model into")
    context = context or RunContext(config, check_writable=False)
    _check_context(context, config)
    trial_config, route, applied = _trial_settings(context, config, route_name, overrides or {})
    where = contextlib.nullcontext(work_dir) if work_dir is not None else tempfile.TemporaryDirectory(
        prefix="distilora-trial-")
    with where as root:
        work = RunLayout(root, config.seed)
        ctx = context.with_config(trial_config)
        ctx.writes_to = work
        if context.teacher.stage is None:
            context.teacher.locate = lambda: _find_or_train_teacher(context, work)
        logger.info("[%s] trial with %s", route.name,
                    ", ".join(f"{key}={value!r}" for key, value in applied.items()) or "the run's settings")
        result = _train(ctx, route, work, callbacks)
        directory = distributed.from_main_process(lambda: _save(ctx, route, result, work)) if save else None
        macro_f1, loss, epoch = _validation_scores(ctx, route, result)
    return TrainedModel(route=route.name, model=result.model, directory=directory, validation_macro_f1=macro_f1,
                        validation_loss=loss, best_epoch=epoch, history=result.history,
                        train_seconds=result.train_seconds,
                        training=route.training(trial_config) if route.uses_trainer else None,
                        config=trial_config, overrides=applied)


def _check_context(context: RunContext, config: ExperimentConfig) -> None:
    differs = [name for name in CONTEXT_FIELDS if getattr(context.config, name) != getattr(config, name)]
    if differs:
        raise ValueError(f"the context was built for another {', '.join(differs)} than the config's: build "
                         "RunContext(config) for this config")


def _trial_settings(context: RunContext, config: ExperimentConfig, route_name: str, overrides: Mapping[str, Any]
                    ) -> tuple[ExperimentConfig, Route, dict[str, Any]]:
    """The trial's config, its route (made with the trial's ``student_depth``) and the overrides as applied."""
    general = {key: value for key, value in overrides.items() if key.partition(".")[0] != TRAIN}
    config, applied = apply_overrides(config, general)
    route = create_route(route_name, RouteSetup(context.teacher_depth, student_depth(config, context.teacher_depth)))
    config, own = apply_overrides(config, {key: value for key, value in overrides.items() if key not in general}, route)
    return config, route, {**applied, **own}


def _train(ctx: RunContext, route: Route, work: RunLayout, callbacks: Sequence[TrainerCallback]) -> TrainResult:
    """Train from scratch (no checkpoint of an earlier trial is resumed) and drop the checkpoints afterwards."""
    if callbacks and route.uses_trainer:  # a TrainerRoute; text baselines are fitted without the Trainer
        own = route.callbacks
        route.callbacks = lambda model: [*own(model), *callbacks]  # this trial's route object only
    checkpoints = work.work_dir(route.name, "trial")
    if distributed.is_main_process():
        shutil.rmtree(checkpoints, ignore_errors=True)
    distributed.wait_for_everyone()
    set_seed(ctx.config.seed)
    try:
        return route.train(ctx, ctx.config.seed, checkpoints)  # a text baseline is fitted by every process alike
    finally:
        distributed.wait_for_everyone()  # every process is done with the checkpoints
        if distributed.is_main_process():
            StageStore.remove_work(checkpoints)


def _save(ctx: RunContext, route: Route, result: TrainResult, work: RunLayout) -> Path:
    directory = work.model_dir(route.name)
    shutil.rmtree(directory, ignore_errors=True)
    directory.mkdir(parents=True)
    route.save(result.model, directory)
    if route.tokenized:
        ctx.tokenizer.save_pretrained(directory)
    return directory


def _validation_scores(ctx: RunContext, route: Route, result: TrainResult) -> tuple[float, float, float | None]:
    """Macro-F1, loss and epoch of the best validation pass; computed on validation when the Trainer made none."""
    passes = [entry for entry in result.history if "eval_macro_f1" in entry]
    if passes:
        best = max(passes, key=lambda entry: entry["eval_macro_f1"])  # the first of equals, as the Trainer keeps
        return best["eval_macro_f1"], best["eval_loss"], best.get("epoch")
    if route.tokenized:
        loss, macro_f1 = ctx.validation_scores(result.model)
        return macro_f1, loss, None
    texts, labels = ctx.validation_texts()
    metrics = classification_metrics(labels, result.model.logits(texts), ctx.labels)
    return metrics["macro_f1"], metrics["loss"], None


def _find_or_train_teacher(context: RunContext, work: RunLayout) -> TeacherStage:
    """The run's finished teacher when its settings are the context's; else one trained into ``work``."""
    config = context.config
    route = create_route(TEACHER, RouteSetup(context.teacher_depth, student_depth(config, context.teacher_depth)))
    in_run = context.run.model_dir(TEACHER)
    record = StageStore().finished(in_run)  # read only: nothing in the run is adopted, restored or set aside
    if record is not None and record.fingerprint == route.fingerprint(context, config.seed):
        return TeacherStage(record, in_run)
    logger.warning("%s has no finished teacher trained with these settings; training one in %s", context.run.root,
                   work.root)
    StageRunner(context, work).train(route, config.seed)
    # Kept in memory: a temporary work directory is removed after the trial.
    context.teacher_model()
    context.teacher_identity()
    return context.teacher_stage()
