"""The contents of results.json, built in one place from what the stages and the evaluation produced."""

from __future__ import annotations

from dataclasses import asdict, replace
from datetime import UTC, datetime
from typing import Any

from distilora.data.perturb import WORD_SHARE
from distilora.experiment.context import RunContext
from distilora.experiment.evaluation import ModelEvaluation, SeedEvaluation
from distilora.experiment.stages import StageRunner
from distilora.precision import FP32, precision_report
from distilora.results import RunResults
from distilora.versions import library_versions


def build_results(ctx: RunContext, stages: StageRunner, evaluations: list[ModelEvaluation],
                  speed: dict[str, Any] | None, seed_runs: list[SeedEvaluation]) -> RunResults:
    """results.json: the run's data, settings and versions, and every model's entry (``seed_runs`` with
    ``num_seeds`` > 1)."""
    config = ctx.config
    models = {evaluation.name: _model_entry(ctx, evaluation) for evaluation in evaluations}
    results = {
        "dataset": config.data.dataset,
        "teacher": config.teacher,
        "teacher_checkpoint": ctx.checkpoint,
        "labels": ctx.labels,
        **({"multi_label": True} if ctx.multi_label else {}),
        "data_report": {split: {**info, "label_counts": ctx.data.label_counts(split)}
                        for split, info in ctx.data.report.items()},
        "data_fingerprint": ctx.data_fingerprint,
        "seed": config.seed,
        "precision": precision_report(config.precision, ctx.precision, ctx.device_type),
        "world_size": ctx.world_size,
        "augmentation": _augmentation(ctx),
        "models": models,
        "speed": speed,
        "stage_seconds": ctx.stage_seconds,
        "reused_stages": stages.reused,
        "config": config.to_dict(),
        "versions": library_versions(),
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    transfer = ctx.transfer_texts()
    if transfer is not None:
        trained = [evaluation.name for evaluation in evaluations if evaluation.route.needs_teacher_targets]
        results["transfer"] = replace(transfer.report, models=trained).to_json()
    if stages.seed_records:
        runs = {name: [{"seed": config.seed, "metrics": entry["metrics"]}] for name, entry in models.items()}
        for run in seed_runs:
            runs[run.name].append({"seed": run.seed, "metrics": run.metrics, "intervals": run.intervals,
                                   "metrics_at_threshold": run.metrics_at_threshold, "calibration": run.calibration})
        results["seed_runs"] = runs
    return RunResults.from_json(results)


def _model_entry(ctx: RunContext, evaluation: ModelEvaluation) -> dict[str, Any]:
    """One model's entry under ``models``: how it was made, its numbers, its cost."""
    route, record = evaluation.route, evaluation.record
    entry = {
        "route": record.route,
        "description": route.describe(ctx.config),
        "layers": record.layers,
        # The encoder depth: its kept layers, all the teacher's, or 0 (TF-IDF, majority).
        "num_layers": len(record.layers) if record.layers else ctx.teacher_depth if route.tokenized else 0,
        "metrics": evaluation.metrics,
        "intervals": evaluation.intervals,
        "metrics_at_threshold": evaluation.metrics_at_threshold,
        "calibration": evaluation.calibration,
        "collapse": evaluation.collapse,
        "train_loss": record.train_loss,
        "train_loss_mean": record.train_loss_mean,
        "params": evaluation.params,
        "trainable_params": record.trainable_params,
        "size_mb": evaluation.size_mb,
        "train_seconds": record.train_seconds,
        "precision": record.precision or (FP32 if route.uses_trainer else None),
        "world_size": record.world_size or 1,
        "eval_seconds": evaluation.eval_seconds,
        "path": evaluation.name,
        "training": asdict(route.training(ctx.config)) if route.tokenized else None,
        "history": record.history,
    }
    if evaluation.robustness is not None:
        entry["robustness"] = {**evaluation.robustness, "seconds": round(evaluation.robustness_seconds or 0.0, 3)}
    if evaluation.adapter_size_mb is not None:
        entry["adapter_size_mb"] = evaluation.adapter_size_mb
    return {**entry, **record.details}


def _augmentation(ctx: RunContext) -> dict[str, Any] | None:
    """results.json's ``augmentation``: the settings and how many copies the train split got (None: none)."""
    augmentation = ctx.config.data.augmentation()
    if augmentation is None:
        return None
    return {**augmentation, "word_share": WORD_SHARE, "seed": ctx.config.seed,
            "rows_added": ctx.data.report["train"].get("augmented_rows", 0)}
