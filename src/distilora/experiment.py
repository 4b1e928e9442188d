"""The whole comparison: fine-tune the teacher → distil odd / even students → LoRA → evaluate → results."""

from __future__ import annotations

import contextlib
import json
import logging
import shutil
import time
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from transformers import AutoConfig, AutoModelForSequenceClassification, set_seed

from distilora.artifacts import verify_manifest, write_atomic
from distilora.config import ExperimentConfig, TrainConfig
from distilora.data import TaskData, encode_splits, load_task_data
from distilora.evaluation.evaluate import count_saved_parameters, evaluate_model_dir, weights_size_mb
from distilora.evaluation.results_table import results_markdown
from distilora.models import (
    build_lora_model,
    build_student,
    load_pretrained_classifier,
    load_tokenizer,
    parse_layer_spec,
    resolve_checkpoint,
    student_name,
)
from distilora.models.students import LayerSpecError
from distilora.stages import StageRecord, completed, fingerprint, finish, partial_dir
from distilora.training import CrossEntropyObjective, DistillationObjective, train_model
from distilora.training.teacher_targets import cached_teacher_targets, with_teacher_targets

logger = logging.getLogger(__name__)


class Experiment:
    """Holds what every stage shares: the data, the tokenizer, the output directory."""

    def __init__(self, config: ExperimentConfig):
        self.config = config
        self.out = config.resolved_output_dir()
        self.checkpoint = resolve_checkpoint(config.teacher)
        teacher_depth = AutoConfig.from_pretrained(self.checkpoint).num_hidden_layers
        # Check every layer spec before any training starts.
        self.students = _students(config.students, teacher_depth)
        self.teacher_depth = teacher_depth
        _ensure_writable(self.out)
        self.data: TaskData = load_task_data(config.data, config.seed)
        self.labels = self.data.labels
        self.tokenizer = load_tokenizer(self.checkpoint)
        self.tokenizer.model_max_length = config.data.max_length
        self.encoded = encode_splits(self.data.splits, self.tokenizer, config.data.max_length)
        self.records: dict[str, StageRecord] = {}
        self.seed_records: dict[tuple[str, int], StageRecord] = {}
        self._distillation_data = None
        self.stage_seconds: dict[str, float] = {}
        self.reused: list[str] = []

    # ---- stages -------------------------------------------------------------------------------------
    def _train_stage(self, name: str, route: str, fp: str, layers, build, objective, training: TrainConfig,
                     seed: int, train_dataset=None, save=None) -> StageRecord:
        """Train one model unless a finished stage with the same fingerprint exists; save it atomically."""
        stage_dir = self._stage_dir(name, seed)
        label = name if seed == self.config.seed else f"{name} seed {seed}"
        started = time.perf_counter()
        record = completed(stage_dir, fp)
        if record is not None:
            logger.info("[%s] reusing finished stage in %s", label, stage_dir)
            self.reused.append(label)
        else:
            logger.info("[%s] training (%s)", label, route)
            set_seed(seed)
            model = build()
            work = self.out / ".work" / f"{name}-{fp}"
            result = train_model(model, self.tokenizer, train_dataset or self.encoded["train"],
                                 self.encoded["validation"], objective, training, work, seed, self.labels)
            partial = partial_dir(stage_dir)
            (save or _save_plain)(result.model, partial)
            self.tokenizer.save_pretrained(partial)
            record = StageRecord(name=name, route=route, fingerprint=fp, layers=layers, seed=seed,
                                 train_loss=result.train_loss, train_loss_mean=result.train_loss_mean,
                                 train_seconds=result.train_seconds, trainable_params=result.trainable_params,
                                 history=result.history)
            finish(partial, stage_dir, record, self.data.fingerprint)
            shutil.rmtree(work, ignore_errors=True)
            with contextlib.suppress(OSError):  # only removed when no other stage left work behind
                work.parent.rmdir()
        if seed == self.config.seed:
            self.records[name] = record
        else:
            self.seed_records[(name, seed)] = record
        self.stage_seconds[label] = time.perf_counter() - started
        return record

    def _stage_dir(self, name: str, seed: int) -> Path:
        """Main-seed models live at the top of the run; other seeds under ``seeds/<seed>/``."""
        return self.out / name if seed == self.config.seed else self.out / "seeds" / str(seed) / name

    def _teacher_weights_hash(self) -> str:
        files = verify_manifest(self.out / "teacher")["files"]
        return fingerprint({k: v for k, v in files.items() if k.endswith(".safetensors")})

    def teacher_fingerprint(self) -> str:
        c = self.config
        return fingerprint("teacher", c.teacher, self.data.fingerprint, asdict(c.teacher_training),
                           c.data.max_length, c.seed)

    def train_teacher(self) -> StageRecord:
        return self._train_stage(
            "teacher", "fine-tune", self.teacher_fingerprint(), None,
            lambda: load_pretrained_classifier(self.checkpoint, self.labels),
            CrossEntropyObjective(), self.config.teacher_training, self.config.seed,
        )

    def train_students(self, seed: int) -> None:
        if not self.students:
            return
        if self._distillation_data is None:
            teacher = AutoModelForSequenceClassification.from_pretrained(self.out / "teacher")
            cache = self.out / ".cache" / f"teacher-targets-{self.teacher_fingerprint()}.safetensors"
            started = time.perf_counter()
            targets = cached_teacher_targets(teacher, self.tokenizer, self.encoded["train"], cache)
            self.stage_seconds["teacher_targets"] = time.perf_counter() - started
            self._distillation_data = (teacher, with_teacher_targets(self.encoded["train"], targets),
                                       self._teacher_weights_hash())
        teacher, train, teacher_weights = self._distillation_data
        c = self.config
        for name, layers in self.students.items():
            # The teacher's weights, not only its settings: a retrained teacher means new students.
            fp = fingerprint("student", self.teacher_fingerprint(), teacher_weights, layers,
                             asdict(c.student_training), asdict(c.distillation), seed)
            self._train_stage(
                name, "distil", fp, layers,
                lambda layers=layers: build_student(teacher, layers),
                DistillationObjective(c.distillation), c.student_training, seed, train_dataset=train,
            )

    def train_lora(self, seed: int) -> None:
        c = self.config
        fp = fingerprint("lora", c.teacher, self.data.fingerprint, asdict(c.lora_training), asdict(c.lora),
                         c.data.max_length, seed)
        self._train_stage(
            "lora", "lora", fp, None,
            lambda: build_lora_model(self.checkpoint, self.labels, c.lora),
            CrossEntropyObjective(), c.lora_training, seed, save=_save_lora,
        )

    # ---- evaluation ---------------------------------------------------------------------------------
    def evaluate(self) -> dict[str, Any]:
        models: dict[str, Any] = {}
        predictions_dir = self.out / "predictions"
        predictions_dir.mkdir(exist_ok=True)
        for name, record in self.records.items():
            model_dir = self.out / name
            logger.info("[%s] evaluating on validation and test", name)
            started = time.perf_counter()
            metrics, predictions = evaluate_model_dir(model_dir, self.data.splits, self.labels)
            (predictions_dir / f"{name}.json").write_text(json.dumps(predictions))
            params = count_saved_parameters(model_dir)
            entry = {
                "route": record.route,
                "layers": record.layers,
                "num_layers": len(record.layers) if record.layers else self.teacher_depth,
                "metrics": metrics,
                "train_loss": record.train_loss,
                "train_loss_mean": record.train_loss_mean,
                "params": params,
                "trainable_params": record.trainable_params,
                "size_mb": round(weights_size_mb(model_dir), 3),
                "train_seconds": record.train_seconds,
                "eval_seconds": time.perf_counter() - started,
                "path": name,
                "history": record.history,
            }
            if (model_dir / "adapter").exists():
                entry["adapter_size_mb"] = round(weights_size_mb(model_dir / "adapter"), 3)
            models[name] = entry
        return models

    def results(self, models: dict[str, Any]) -> dict[str, Any]:
        import peft
        import torch
        import transformers

        from distilora import __version__

        return {
            "dataset": self.config.data.dataset,
            "teacher": self.config.teacher,
            "teacher_checkpoint": self.checkpoint,
            "labels": self.labels,
            "data_report": {
                split: {**info, "label_counts": _label_counts(self.data.splits[split]["label"], len(self.labels))}
                for split, info in self.data.report.items()
            },
            "data_fingerprint": self.data.fingerprint,
            "seed": self.config.seed,
            "models": models,
            "stage_seconds": self.stage_seconds,
            "reused_stages": self.reused,
            "config": self.config.to_dict(),
            "versions": {"distilora": __version__, "torch": torch.__version__,
                         "transformers": transformers.__version__, "peft": peft.__version__},
            "created": datetime.now(UTC).isoformat(timespec="seconds"),
        }

    def seed_runs(self, models: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
        """Validation and test metrics of every model for every seed (the teacher is trained once)."""
        runs = {name: [{"seed": self.config.seed, "metrics": entry["metrics"]}] for name, entry in models.items()}
        for (name, seed), _record in sorted(self.seed_records.items(), key=lambda item: item[0][1]):
            logger.info("[%s seed %d] evaluating", name, seed)
            metrics, _ = evaluate_model_dir(self._stage_dir(name, seed), self.data.splits, self.labels)
            runs[name].append({"seed": seed, "metrics": metrics})
        return runs

    def run(self) -> dict[str, Any]:
        self.train_teacher()
        for seed in self.config.all_seeds():
            self.train_students(seed)
            if self.config.run_lora:
                self.train_lora(seed)
        models = self.evaluate()
        results = self.results(models)
        if self.seed_records:
            results["seed_runs"] = self.seed_runs(models)
        write_atomic(self.out / "results.json", json.dumps(results, indent=1))
        write_atomic(self.out / "results.md", results_markdown(results))
        if self.config.report:
            from distilora.report import build_report

            logger.info("Writing the report (plots, confidence intervals, paired tests)")
            build_report(self.out, measure_speed=self.config.measure_speed)
            results = json.loads((self.out / "results.json").read_text())
        return results


def run_experiment(config: ExperimentConfig | None = None) -> dict[str, Any]:
    """Run the full comparison and return the contents of ``results.json``."""
    return Experiment(config or ExperimentConfig()).run()


def _students(specs: tuple[str, ...], teacher_depth: int) -> dict[str, list[int]]:
    """Name → teacher layers for each ``--layers`` spec; two specs for the same layers are an error."""
    students: dict[str, list[int]] = {}
    for spec in specs:
        layers = parse_layer_spec(spec, teacher_depth)
        named = spec.strip().lower() in ("odd", "even")
        name = student_name(spec if named else ",".join(map(str, layers)))
        if name in students or layers in students.values():
            raise LayerSpecError(f"--layers {spec!r} selects the same student twice")
        students[name] = layers
    return students


def _label_counts(labels: list[int], num_classes: int) -> list[int]:
    counts = [0] * num_classes
    for label in labels:
        counts[label] += 1
    return counts


def _save_plain(model, directory: Path) -> None:
    model.save_pretrained(directory)


def _save_lora(model, directory: Path) -> None:
    """The PEFT adapter under ``adapter/``, and the merged model (loads in plain transformers) beside it."""
    model.save_pretrained(directory / "adapter")
    merged = model.merge_and_unload()
    merged.save_pretrained(directory)


def _ensure_writable(directory: Path) -> None:
    try:
        directory.mkdir(parents=True, exist_ok=True)
        probe = directory / ".write-test"
        probe.write_text("ok")
        probe.unlink()
    except OSError as error:
        raise PermissionError(f"--output-dir {directory}: cannot write there ({error.strerror})") from error
