"""The whole comparison: train every configured route for every seed → evaluate → results → report."""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Iterator
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import datasets
import numpy as np
import torch
from transformers import AutoConfig, AutoModelForSequenceClassification, PreTrainedModel, set_seed

from distilora import distributed
from distilora.artifacts import verified_snapshot
from distilora.config import ExperimentConfig, ServeConfig
from distilora.data import TaskData, encode_splits, load_task_data, token_rows
from distilora.evaluation import results_markdown
from distilora.evaluation.calibration import Calibration, calibration_summary, fit_calibration
from distilora.evaluation.collapse import collapse_check
from distilora.evaluation.evaluate import count_saved_parameters, evaluate_logits, split_logits, weights_size_mb
from distilora.evaluation.metrics import classification_metrics
from distilora.evaluation.speed import speed_report, timing_texts
from distilora.evaluation.statistics import metric_intervals
from distilora.inference import Classifier, forward_in_batches, load_classifier
from distilora.model_card import render_model_card
from distilora.models import load_tokenizer, resolve_checkpoint
from distilora.models.architectures import encoder_depth
from distilora.precision import FP32, default_device_type, precision_report, resolve_precision
from distilora.routes import Route, configured_routes
from distilora.routes.lora import ADAPTER_DIR
from distilora.run_dir import CALIBRATION_FILE, MODEL_CARD, RunDirectory, RunLocked, StageRecord
from distilora.training.teacher_targets import cache_key, cached_teacher_targets, with_example_index
from distilora.training.trainer import TrainResult
from distilora.versions import library_versions

logger = logging.getLogger(__name__)

TEACHER = "teacher"
"""The route every student is distilled from."""


class Experiment:
    """Holds what every stage shares (data, tokenizer, run directory) and is the routes' :class:`RouteContext`.

    Under ``torchrun`` every process builds one: all of them train the gradient routes together (DDP), and only the
    main process writes the run directory, fits the text baselines, evaluates and reports (:mod:`.distributed`).
    """

    def __init__(self, config: ExperimentConfig):
        self.config = config
        distributed.quiet_other_processes()
        self.device_type = default_device_type()
        # Resolved once, before anything is read or written: bf16 without native support is refused here.
        self.precision = resolve_precision(config.precision, self.device_type)
        self.world_size = distributed.world_size()
        self.run_dir = RunDirectory(config.resolved_output_dir(), config.seed)
        self.checkpoint = resolve_checkpoint(config.teacher)
        self.teacher_depth = encoder_depth(AutoConfig.from_pretrained(self.checkpoint))
        # Every route name and layer spec is checked before anything is read, written or trained.
        self.routes: list[Route] = configured_routes(config, self.teacher_depth)
        self.run_dir.ensure_writable()
        with distributed.main_process_first():  # the datasets cache is filled once
            self.data: TaskData = load_task_data(config.data, config.seed)
        self.labels = self.data.labels
        config.calibration.check_labels(self.labels)  # refused before anything is trained
        self.data_fingerprint = self.data.fingerprint
        self.tokenizer = load_tokenizer(self.checkpoint)
        self.tokenizer.model_max_length = config.data.max_length
        self.encoded = encode_splits(self.data.splits, self.tokenizer, config.data.max_length)
        self.records: dict[str, StageRecord] = {}
        self.seed_records: dict[tuple[str, int], StageRecord] = {}
        self.stage_seconds: dict[str, float] = {}
        self.reused: list[str] = []
        self.calibrations: dict[tuple[str, int], Calibration] = {}
        """Each evaluated model's calibration by (name, seed), written into its directory at the end of the run."""
        self._teacher: PreTrainedModel | None = None
        self._teacher_identity: tuple[str, str] | None = None
        self._teacher_targets: dict[str, np.ndarray] | None = None
        self._validation_encodings: list[dict[str, list[int]]] | None = None

    # ---- what routes may ask of the run (RouteContext) -----------------------------------------------------------
    def teacher_model(self) -> PreTrainedModel:
        if self._teacher is None:
            with verified_snapshot(self.run_dir.model_dir(TEACHER)) as source:
                teacher = AutoModelForSequenceClassification.from_pretrained(source)
            self._teacher = teacher.eval().requires_grad_(False)
        return self._teacher

    def teacher_identity(self) -> tuple[str, str]:
        if self._teacher_identity is None:
            record = self.records[TEACHER]
            self._teacher_identity = (record.fingerprint, self.run_dir.weights_hash(self.run_dir.model_dir(TEACHER)))
        return self._teacher_identity

    def teacher_targets(self) -> dict[str, np.ndarray]:
        """The teacher's logits and per-layer [CLS] states on the training split, cached by the teacher's *weights*."""
        if self._teacher_targets is None:
            _, weights = self.teacher_identity()
            key = cache_key(weights, self.data_fingerprint, self.config.data.max_length, self.precision)
            started = time.perf_counter()
            with distributed.main_process_first():  # the main process computes and saves, the others read the file
                self._teacher_targets = cached_teacher_targets(self.teacher_model(), self.tokenizer,
                                                               self.encoded["train"],
                                                               self.run_dir.teacher_targets_file(key), self.precision)
            self.stage_seconds["teacher_targets"] = time.perf_counter() - started
        return self._teacher_targets

    def training_data(self, route: Route) -> datasets.Dataset:
        return with_example_index(self.encoded["train"]) if route.needs_teacher_targets else self.encoded["train"]

    def class_weights(self) -> torch.Tensor | None:
        if self.config.class_weight == "none":
            return None
        counts = np.asarray(self.data.label_counts("train"), dtype=np.float64)
        weights = np.divide(counts.sum(), len(counts) * counts, out=np.zeros_like(counts), where=counts > 0)
        return torch.tensor(weights, dtype=torch.float32)

    def validation_scores(self, model: PreTrainedModel) -> tuple[float, float]:
        if self._validation_encodings is None:
            self._validation_encodings = token_rows(self.encoded["validation"])
        logits = forward_in_batches(model, self._validation_encodings, self.tokenizer, batch_size=128,
                                    precision=self.precision).logits
        metrics = classification_metrics(self.data.splits["validation"]["label"], logits, self.labels)
        return metrics["loss"], metrics["macro_f1"]

    def train_texts(self) -> tuple[list[str], list[int]]:
        return list(self.data.splits["train"]["text"]), list(self.data.splits["train"]["label"])

    def validation_texts(self) -> tuple[list[str], list[int]]:
        return list(self.data.splits["validation"]["text"]), list(self.data.splits["validation"]["label"])

    # ---- training ------------------------------------------------------------------------------------------------
    def train(self, route: Route, seed: int) -> StageRecord:
        """Train ``route`` with ``seed`` unless a finished stage with the same fingerprint exists; save atomically.

        Under torchrun the main process decides about reuse and saves; a gradient route trains on every process.
        """
        stage_dir = self.run_dir.model_dir(route.name, seed)
        label = route.name if seed == self.config.seed else f"{route.name} seed {seed}"
        started = time.perf_counter()
        fp = route.fingerprint(self, seed)
        record = distributed.from_main_process(lambda: self.run_dir.completed(stage_dir, fp))
        if record is not None:
            logger.info("[%s] reusing finished stage in %s", label, stage_dir)
            self.reused.append(label)
            route.restore(record)
        else:
            logger.info("[%s] training (%s: %s)", label, route.kind.value, route.describe(self.config))
            set_seed(seed)
            work = self.run_dir.work_dir(route.name, fp)
            result = route.train(self, seed, work) if route.uses_trainer or distributed.is_main_process() else None
            distributed.wait_for_everyone()  # every process is done with the checkpoints in ``work``
            record = distributed.from_main_process(lambda: self.save_stage(route, seed, fp, result, stage_dir, work))
        if seed == self.config.seed:
            self.records[route.name] = record
        else:
            self.seed_records[(route.name, seed)] = record
        self.stage_seconds[label] = time.perf_counter() - started
        return record

    def save_stage(self, route: Route, seed: int, fp: str, result: TrainResult, stage_dir: Path,
                   work: Path) -> StageRecord:
        """Save a trained model and its record into place (main process), and drop its Trainer checkpoints."""
        partial = self.run_dir.start_stage(stage_dir)
        route.save(result.model, partial)
        if route.tokenized:
            self.tokenizer.save_pretrained(partial)
        record = StageRecord(name=route.name, route=route.kind.value, fingerprint=fp, layers=route.layers,
                             seed=seed, train_loss=result.train_loss, train_loss_mean=result.train_loss_mean,
                             train_seconds=result.train_seconds, trainable_params=result.trainable_params,
                             precision=self.precision if route.uses_trainer else None,
                             world_size=self.world_size if route.uses_trainer else 1,
                             history=result.history, details=route.details())
        self.run_dir.finish_stage(partial, stage_dir, record, self.data_fingerprint)
        self.run_dir.remove_work(work)
        return record

    # ---- evaluation ----------------------------------------------------------------------------------------------
    def evaluate(self) -> tuple[dict[str, Any], dict[str, Any] | None]:
        """Every main-seed model on validation and test (predictions saved), then their speed, measured together."""
        models: dict[str, Any] = {}
        classifiers: dict[str, Classifier] = {}
        routes = {route.name: route for route in self.routes}
        for name, record in self.records.items():
            model_dir = self.run_dir.model_dir(name)
            logger.info("[%s] evaluating on validation and test", name)
            started = time.perf_counter()
            classifiers[name] = load_classifier(model_dir, precision=self.precision)
            logits = split_logits(classifiers[name], self.data.splits)
            metrics, predictions = evaluate_logits(logits, self.data.splits, self.labels)
            self.run_dir.write_predictions(name, predictions)
            calibration, calibration_entry, at_threshold = self.calibrate(name, self.config.seed, logits)
            classifiers[name].calibration = calibration  # timed below as it will serve
            entry = {
                "route": record.route,
                "description": routes[name].describe(self.config),
                "layers": record.layers,
                "num_layers": self.num_layers(routes[name], record),
                "metrics": metrics,
                "intervals": self.intervals(logits),
                "metrics_at_threshold": at_threshold,
                "calibration": calibration_entry,
                "collapse": self.collapse(name, predictions) if routes[name].can_collapse else None,
                "train_loss": record.train_loss,
                "train_loss_mean": record.train_loss_mean,
                "params": count_saved_parameters(model_dir),
                "trainable_params": record.trainable_params,
                "size_mb": round(weights_size_mb(model_dir), 3),
                "train_seconds": record.train_seconds,
                "precision": record.precision or (FP32 if routes[name].uses_trainer else None),
                "world_size": record.world_size or 1,
                "eval_seconds": time.perf_counter() - started,
                "path": name,
                "training": asdict(routes[name].training(self.config)) if routes[name].tokenized else None,
                "history": record.history,
            }
            if (model_dir / ADAPTER_DIR).exists():
                entry["adapter_size_mb"] = round(weights_size_mb(model_dir / ADAPTER_DIR), 3)
            models[name] = {**entry, **record.details}
        speed = None
        if self.config.measure_speed:
            texts = timing_texts(self.data.splits["test"]["text"])
            source = f"{len(texts)} texts sampled (seed 0) from the test split of {self.config.data.dataset}"
            # Timed as `distilora serve` runs them by default, whatever the run trained and evaluated in.
            serving = resolve_precision(ServeConfig().precision, self.device_type)
            speed = speed_report(classifiers, texts, source, serving)
        return models, speed

    def calibrate(self, name: str, seed: int, logits: dict[str, np.ndarray]
                  ) -> tuple[Calibration, dict[str, Any], dict[str, Any] | None]:
        """Fit temperature and threshold on validation; results.json's ``calibration`` and ``metrics_at_threshold``."""
        label = name if seed == self.config.seed else f"{name} seed {seed}"
        y_true = {split: self.data.splits[split]["label"] for split in logits}
        settings = self.config.calibration
        calibration = fit_calibration(logits["validation"], y_true["validation"], self.labels, settings)
        summary, at_threshold = calibration_summary(calibration, logits, y_true)
        self.calibrations[(name, seed)] = calibration
        targeted = settings.target_precision is not None or settings.target_recall is not None
        constant = len(np.unique(np.asarray(logits["validation"]), axis=0)) < 2  # the majority class: no ranking
        if targeted and calibration.threshold is None and len(self.labels) == 2 and not constant:
            logger.warning("[%s] %s; its decisions stay at the argmax", label, calibration.note)
        test_ece = summary["ece"].get("test", {})
        logger.info("[%s] calibrated on validation: %s; test ECE %.3f → %.3f", label, calibration.describe(),
                    test_ece.get("before", float("nan")), test_ece.get("after", float("nan")))
        if summary.get("prior_shift"):
            rates = summary["predicted_positive_rate"]
            logger.info("[%s] prior shift: it calls %.1f %% of validation but %.1f %% of test texts %s", label,
                        100 * rates["validation"]["estimate"], 100 * rates["test"]["estimate"],
                        calibration.labels[1])
        return calibration, summary, at_threshold

    def intervals(self, logits: dict[str, np.ndarray]) -> dict[str, dict[str, dict[str, float]]]:
        """95 % bootstrap intervals of accuracy and macro-F1 (argmax) per split (the report's, for the model card)."""
        return {split: metric_intervals(self.data.splits[split]["label"], split_logits_.argmax(axis=1),
                                        len(self.labels))
                for split, split_logits_ in logits.items()}

    def write_model_files(self, results: dict[str, Any]) -> None:
        """``calibration.json`` and the model card (``README.md``) into every evaluated model's directory."""
        entries = [(name, self.config.seed, entry) for name, entry in results["models"].items()]
        for name, runs in (results.get("seed_runs") or {}).items():
            for run in runs:
                record = self.seed_records.get((name, run["seed"]))
                if record is None:
                    continue
                model_dir = self.run_dir.model_dir(name, run["seed"])
                entries.append((name, run["seed"], {
                    **results["models"][name], **run, "collapse": None, "history": record.history,
                    "train_seconds": record.train_seconds, "trainable_params": record.trainable_params,
                    "params": count_saved_parameters(model_dir), "size_mb": round(weights_size_mb(model_dir), 3)}))
        for name, seed, entry in entries:
            files = {MODEL_CARD: render_model_card(name, entry, results)}
            calibration = self.calibrations.get((name, seed))
            if calibration is not None:
                files[CALIBRATION_FILE] = calibration.to_json()
            self.run_dir.add_to_stage(self.run_dir.model_dir(name, seed), files)

    def num_layers(self, route: Route, record: StageRecord) -> int:
        """The model's encoder depth: its kept layers, all the teacher's, or 0 (TF-IDF, majority)."""
        if record.layers:
            return len(record.layers)
        return self.teacher_depth if route.tokenized else 0

    def collapse(self, name: str, predictions: dict[str, Any]) -> dict[str, Any] | None:
        """Whether ``name`` answers (almost) one class on validation or is no better than the majority class."""
        validation = predictions["validation"]
        check = collapse_check(validation["y_true"], np.asarray(validation["probs"]).argmax(axis=1),
                               self.data.splits["train"]["label"], self.labels, self.config.collapse_share)
        if check["collapsed"]:
            logger.warning("[%s] COLLAPSED: %s", name, "; ".join(check["reasons"]))
        return check

    def seed_runs(self, models: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
        """Validation and test metrics of every model for every seed (the teacher is trained once)."""
        runs = {name: [{"seed": self.config.seed, "metrics": entry["metrics"]}] for name, entry in models.items()}
        for (name, seed), _record in sorted(self.seed_records.items(), key=lambda item: item[0][1]):
            logger.info("[%s seed %d] evaluating", name, seed)
            classifier = load_classifier(self.run_dir.model_dir(name, seed), precision=self.precision)
            logits = split_logits(classifier, self.data.splits)
            metrics, _ = evaluate_logits(logits, self.data.splits, self.labels)
            _, calibration, at_threshold = self.calibrate(name, seed, logits)
            runs[name].append({"seed": seed, "metrics": metrics, "intervals": self.intervals(logits),
                               "metrics_at_threshold": at_threshold, "calibration": calibration})
        return runs

    def results(self, models: dict[str, Any], speed: dict[str, Any] | None) -> dict[str, Any]:
        return {
            "dataset": self.config.data.dataset,
            "teacher": self.config.teacher,
            "teacher_checkpoint": self.checkpoint,
            "labels": self.labels,
            "data_report": {split: {**info, "label_counts": self.data.label_counts(split)}
                            for split, info in self.data.report.items()},
            "data_fingerprint": self.data_fingerprint,
            "seed": self.config.seed,
            "precision": precision_report(self.config.precision, self.precision, self.device_type),
            "world_size": self.world_size,
            "models": models,
            "speed": speed,
            "stage_seconds": self.stage_seconds,
            "reused_stages": self.reused,
            "config": self.config.to_dict(),
            "versions": library_versions(),
            "created": datetime.now(UTC).isoformat(timespec="seconds"),
        }

    @contextlib.contextmanager
    def lock(self) -> Iterator[None]:
        """The run directory's lock, held by the main process; every process stops if it is taken."""
        with contextlib.ExitStack() as stack:

            def take() -> str | None:
                try:
                    stack.enter_context(self.run_dir.lock())
                except RunLocked as locked:
                    return str(locked)
                return None

            taken_by_another = distributed.from_main_process(take)
            if taken_by_another:
                raise RunLocked(taken_by_another)
            yield

    def run(self) -> dict[str, Any]:
        """Train, evaluate, write results.json and results.md, then the report; return the results.

        Under torchrun, every process trains; then the main process evaluates, writes and returns the results while
        the others return an empty dict.
        """
        with self.lock():
            for seed in self.config.all_seeds():
                for route in self.routes:
                    if seed == self.config.seed or not route.main_seed_only:
                        self.train(route, seed)
            if not distributed.is_main_process():
                return {}
            models, speed = self.evaluate()
            results = self.results(models, speed)
            if self.seed_records:
                results["seed_runs"] = self.seed_runs(models)
            table = results_markdown(results)
            self.run_dir.write_results(results, table)
            self.write_model_files(results)
            if self.config.report:
                from distilora.report import build_report

                logger.info("Writing the report (plots, confidence intervals, paired tests)")
                results["statistics"] = build_report(self.run_dir, results).statistics
                self.run_dir.write_results(results)
        return results


def run_experiment(config: ExperimentConfig | None = None) -> dict[str, Any]:
    """Run the full comparison and return the contents of ``results.json``."""
    return Experiment(config or ExperimentConfig()).run()
