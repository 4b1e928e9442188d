"""Every trained model on validation and test: metrics, calibration, intervals, collapse, seeds, speed, and the
files the evaluation adds to each model directory (calibration.json, the model card)."""

from __future__ import annotations

import dataclasses
import logging
import time
from dataclasses import dataclass
from typing import Any, Protocol

import datasets
import numpy as np

from distilora.config import ExperimentConfig, ServeConfig
from distilora.evaluation.calibration import Calibration, calibration_summary, fit_calibration
from distilora.evaluation.collapse import collapse_check
from distilora.evaluation.evaluate import count_saved_parameters, evaluate_logits, split_logits, weights_size_mb
from distilora.evaluation.speed import speed_report, timing_texts
from distilora.evaluation.statistics import metric_intervals
from distilora.experiment.context import RunContext
from distilora.experiment.robustness import RobustnessProbe
from distilora.experiment.stages import StageRunner
from distilora.inference import Classifier, load_classifier
from distilora.label_space import decide_labels, default_decisions, is_multi_label
from distilora.model_card import render_model_card
from distilora.precision import resolve_precision
from distilora.results import RunResults
from distilora.routes import Route
from distilora.routes.lora import ADAPTER_DIR
from distilora.run_dir import CALIBRATION_FILE, MODEL_CARD, StageRecord, write_predictions

logger = logging.getLogger(__name__)


@dataclass
class ModelEvaluation:
    """One main-seed model on validation and test (its results.json entry is built from it)."""

    name: str
    route: Route
    record: StageRecord
    metrics: dict[str, Any]
    intervals: dict[str, Any]
    metrics_at_threshold: dict[str, Any] | None
    calibration: dict[str, Any]
    collapse: dict[str, Any] | None
    params: int
    size_mb: float
    adapter_size_mb: float | None
    eval_seconds: float
    robustness: dict[str, Any] | None = None
    robustness_seconds: float | None = None


@dataclass
class SeedEvaluation:
    """A model trained with another seed, on validation and test."""

    name: str
    seed: int
    metrics: dict[str, Any]
    intervals: dict[str, Any]
    metrics_at_threshold: dict[str, Any] | None
    calibration: dict[str, Any]


class CalibrationInputs(Protocol):
    """What :func:`calibrate` reads of a run."""

    config: ExperimentConfig
    labels: list[str]
    data: Any


def calibrate(run: CalibrationInputs, label: str, logits: dict[str, np.ndarray]
              ) -> tuple[Calibration, dict[str, Any], dict[str, Any] | None]:
    """Fit temperature and threshold on validation; results.json's ``calibration`` and ``metrics_at_threshold``."""
    y_true = {split: run.data.splits[split]["label"] for split in logits}
    settings = run.config.calibration
    calibration = fit_calibration(logits["validation"], y_true["validation"], run.labels, settings)
    summary, at_threshold = calibration_summary(calibration, logits, y_true)
    targeted = settings.target_precision is not None or settings.target_recall is not None
    constant = len(np.unique(np.asarray(logits["validation"]), axis=0)) < 2  # the majority class: no ranking
    if targeted and calibration.threshold is None and len(run.labels) == 2 and not constant:
        logger.warning("[%s] %s; its decisions stay at the argmax", label, calibration.note)
    elif targeted and calibration.thresholds is not None and calibration.note and not constant:
        logger.warning("[%s] %s", label, calibration.note)
    test_ece = summary["ece"].get("test", {})
    logger.info("[%s] calibrated on validation: %s; test ECE %.3f → %.3f", label, calibration.describe(),
                test_ece.get("before", float("nan")), test_ece.get("after", float("nan")))
    if summary.get("prior_shift"):
        rates = summary["predicted_positive_rate"]
        logger.info("[%s] prior shift: it calls %.1f %% of validation but %.1f %% of test texts %s", label,
                    100 * rates["validation"]["estimate"], 100 * rates["test"]["estimate"], calibration.labels[1])
    return calibration, summary, at_threshold


def intervals(splits: datasets.DatasetDict, logits: dict[str, np.ndarray],
              num_labels: int) -> dict[str, dict[str, dict[str, float]]]:
    """95 % bootstrap intervals of accuracy and macro-F1 (argmax, or each label at 0.5) per split (the report's, for
    the model card)."""
    return {split: metric_intervals(splits[split]["label"],
                                    default_decisions(split_logits_, is_multi_label(splits[split]["label"])),
                                    num_labels)
            for split, split_logits_ in logits.items()}


class Evaluator:
    """Evaluates the saved models of a run (main process); keeps each one's calibration for its directory."""

    def __init__(self, ctx: RunContext, stages: StageRunner):
        self.ctx = ctx
        self.stages = stages
        self.calibrations: dict[tuple[str, int], Calibration] = {}
        """Each evaluated model's calibration by (name, seed), written into its directory at the end of the run."""
        self.classifiers: dict[str, Classifier] = {}
        """The main-seed models as loaded and calibrated, timed together by :meth:`speed`."""
        self._robustness_probe: RobustnessProbe | None = None

    def evaluate_models(self) -> list[ModelEvaluation]:
        """Every main-seed model on validation and test (predictions saved), in training order."""
        routes = {route.name: route for route in self.ctx.routes}
        return [self.evaluate_model(routes[name], record) for name, record in self.stages.records.items()]

    def evaluate_model(self, route: Route, record: StageRecord) -> ModelEvaluation:
        name, model_dir = route.name, self.stages.run.model_dir(route.name)
        splits = self.ctx.data.splits
        logger.info("[%s] evaluating on validation and test", name)
        started = time.perf_counter()
        classifier = self.classifiers[name] = load_classifier(model_dir, precision=self.ctx.precision)
        logits = split_logits(classifier, splits)
        metrics, predictions = evaluate_logits(logits, splits, self.ctx.labels)
        write_predictions(self.stages.run, name, predictions)
        calibration, summary, at_threshold = calibrate(self.ctx, name, logits)
        self.calibrations[(name, self.ctx.config.seed)] = calibration
        classifier.calibration = calibration  # timed below as it will serve
        robustness_started = time.perf_counter()
        robustness = self.robustness_probe().measure(classifier, calibration, logits["test"])
        robustness_seconds = time.perf_counter() - robustness_started
        adapter = model_dir / ADAPTER_DIR
        return ModelEvaluation(
            name=name, route=route, record=record, metrics=metrics,
            intervals=intervals(splits, logits, len(self.ctx.labels)), metrics_at_threshold=at_threshold,
            calibration=summary, collapse=self.collapse(name, predictions) if route.can_collapse else None,
            params=count_saved_parameters(model_dir), size_mb=round(weights_size_mb(model_dir), 3),
            adapter_size_mb=round(weights_size_mb(adapter), 3) if adapter.exists() else None,
            eval_seconds=time.perf_counter() - started, robustness=robustness, robustness_seconds=robustness_seconds)

    def robustness_probe(self) -> RobustnessProbe:
        """The perturbed copies of the test split, made on first use and shared by every model."""
        if self._robustness_probe is None:
            test = self.ctx.data.splits["test"]
            self._robustness_probe = RobustnessProbe(test["text"], test["label"], len(self.ctx.labels))
        return self._robustness_probe

    def collapse(self, name: str, predictions: dict[str, Any]) -> dict[str, Any]:
        """Whether ``name`` answers (almost) one class on validation or is no better than the majority class."""
        validation = predictions["validation"]
        probs = np.asarray(validation["probs"])
        decided = decide_labels(probs) if is_multi_label(validation["y_true"]) else probs.argmax(axis=1)
        check = collapse_check(validation["y_true"], decided,
                               self.ctx.data.splits["train"]["label"], self.ctx.labels, self.ctx.config.collapse_share)
        if check["collapsed"]:
            logger.warning("[%s] COLLAPSED: %s", name, "; ".join(check["reasons"]))
        return check

    def speed(self) -> dict[str, Any] | None:
        """Latency and throughput of the evaluated models, measured together (None: ``measure_speed`` is off)."""
        if not self.ctx.config.measure_speed:
            return None
        texts = timing_texts(self.ctx.data.splits["test"]["text"])
        source = f"{len(texts)} texts sampled (seed 0) from the test split of {self.ctx.config.data.dataset}"
        # Timed as `distilora serve` runs them by default, whatever the run trained and evaluated in.
        serving = resolve_precision(ServeConfig().precision, self.ctx.device_type)
        return speed_report(self.classifiers, texts, source, serving)

    def seed_runs(self) -> list[SeedEvaluation]:
        """Validation and test metrics of every model trained with another seed, by seed."""
        runs = []
        for (name, seed), _record in sorted(self.stages.seed_records.items(), key=lambda item: item[0][1]):
            logger.info("[%s seed %d] evaluating", name, seed)
            classifier = load_classifier(self.stages.run.model_dir(name, seed), precision=self.ctx.precision)
            logits = split_logits(classifier, self.ctx.data.splits)
            metrics, _ = evaluate_logits(logits, self.ctx.data.splits, self.ctx.labels)
            calibration, summary, at_threshold = calibrate(self.ctx, f"{name} seed {seed}", logits)
            self.calibrations[(name, seed)] = calibration
            runs.append(SeedEvaluation(name, seed, metrics, intervals(self.ctx.data.splits, logits,
                                                                      len(self.ctx.labels)), at_threshold, summary))
        return runs

    def write_model_files(self, results: RunResults) -> None:
        """``calibration.json`` and the model card (``README.md``) into every evaluated model's directory."""
        run, store = self.stages.run, self.stages.store
        entries = [(name, self.ctx.config.seed, entry) for name, entry in results.models.items()]
        for name, runs in (results.seed_runs or {}).items():
            for seed_run in runs:
                record = self.stages.seed_records.get((name, seed_run.seed))
                if record is None:
                    continue
                model_dir = run.model_dir(name, seed_run.seed)
                entry = dataclasses.replace(
                    results.models[name].with_seed_run(seed_run), history=record.history,
                    train_seconds=record.train_seconds, trainable_params=record.trainable_params,
                    params=count_saved_parameters(model_dir), size_mb=round(weights_size_mb(model_dir), 3))
                entries.append((name, seed_run.seed, entry))
        for name, seed, entry in entries:
            files = {MODEL_CARD: render_model_card(name, entry, results)}
            calibration = self.calibrations.get((name, seed))
            if calibration is not None:
                files[CALIBRATION_FILE] = calibration.to_json()
            store.add_to_stage(run.model_dir(name, seed), files)
