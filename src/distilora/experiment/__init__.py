"""The whole comparison: train every configured route for every seed → evaluate → results.json.

:class:`RunContext` holds what every stage shares (data, tokenizer, teacher) and is the routes' context;
:class:`StageRunner` trains, reuses and saves the stages; :class:`Evaluator` scores the saved models;
:func:`build_results` writes results.json's contents. :func:`train_route` trains one route with other settings
without writing a run (a tuner's trial). The report is its callers' step (:func:`distilora.run_experiment`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from distilora import distributed
from distilora.config import ExperimentConfig
from distilora.evaluation import results_markdown
from distilora.experiment.context import TEACHER, RunContext
from distilora.experiment.evaluation import Evaluator
from distilora.experiment.results import build_results
from distilora.experiment.stages import StageRunner, main_process_lock
from distilora.experiment.trial import EvaluationCallback, TrainedModel, train_route
from distilora.results import RunResults
from distilora.run_dir import RunLayout, write_results

RunFinisher = Callable[[RunLayout, RunResults], Any]
"""Called with the run directory and its results once results.json is written, the run's lock still held."""


def run_experiment(config: ExperimentConfig | None = None, *, finish: RunFinisher | None = None) -> dict[str, Any]:
    """Train, evaluate, write results.json, results.md and each model's calibration.json and model card; then
    ``finish(run, results)`` (the report); return the contents of results.json.

    Under torchrun, every process trains; then the main process evaluates, writes and returns the results while
    the others return an empty dict.
    """
    ctx = RunContext(config or ExperimentConfig())
    with main_process_lock(ctx.run):
        stages = StageRunner(ctx)
        stages.train_all()
        if not distributed.is_main_process():
            return {}
        results = evaluate_run(ctx, stages)
        if finish is not None:
            finish(ctx.run, results)
    return results.to_json()


def evaluate_run(ctx: RunContext, stages: StageRunner) -> RunResults:
    """Evaluate the trained stages and write the results and every model's files (main process)."""
    evaluator = Evaluator(ctx, stages)
    evaluations = evaluator.evaluate_models()
    speed = evaluator.speed()
    results = build_results(ctx, stages, evaluations, speed, evaluator.seed_runs())
    write_results(ctx.run, results, results_markdown(results))
    evaluator.write_model_files(results)
    return results


__all__ = ["TEACHER", "EvaluationCallback", "RunContext", "StageRunner", "TrainedModel", "evaluate_run",
           "run_experiment", "train_route"]
