"""What every stage of a run shares, and what routes may ask of it: :class:`RunContext`."""

from __future__ import annotations

import copy
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import datasets
import numpy as np
import torch
from transformers import AutoConfig, AutoModelForSequenceClassification, PreTrainedModel

from distilora import distributed
from distilora.artifacts import verified_snapshot
from distilora.config import ExperimentConfig
from distilora.data import TaskData, encode_splits, load_task_data, token_rows
from distilora.data.perturb import augment_training_split, augment_transfer_texts
from distilora.data.transfer import TransferTexts, load_transfer_texts
from distilora.evaluation.metrics import classification_metrics
from distilora.experiment.transfer import TransferRows, check_transfer_routes
from distilora.inference import forward_in_batches
from distilora.models import load_tokenizer, resolve_checkpoint
from distilora.models.architectures import encoder_depth
from distilora.precision import default_device_type, resolve_precision
from distilora.routes import Route, configured_routes
from distilora.run_dir import RunLayout, StageRecord, StageStore
from distilora.training.teacher_targets import cache_key, cached_teacher_targets, with_example_index

TEACHER = "teacher"
"""The route every student is distilled from."""


@dataclass
class TeacherStage:
    """The finished teacher: its training record and its directory."""

    record: StageRecord
    directory: Path


@dataclass
class TeacherCache:
    """The teacher as a context and its copies (:meth:`RunContext.with_config`) share it, filled on first use."""

    stage: TeacherStage | None = None
    locate: Callable[[], TeacherStage] | None = None
    """Finds (or trains) the teacher when no stage was set; a run sets the stage when it trains the teacher."""
    model: PreTrainedModel | None = None
    identity: tuple[str, str] | None = None
    targets: dict[str, np.ndarray] | None = None


class RunContext:
    """The data, tokenizer, encoded splits and teacher of a run: the routes' :class:`~distilora.routes.RouteContext`.

    Under ``torchrun`` every process builds one. Every route name and layer spec is checked, and the precision
    resolved (bf16 without native support refused), before anything is read or written.
    """

    def __init__(self, config: ExperimentConfig, *, check_writable: bool = True):
        self.config = config
        distributed.quiet_other_processes()
        self.device_type = default_device_type()
        self.precision = resolve_precision(config.precision, self.device_type)
        self.world_size = distributed.world_size()
        self.run = RunLayout(config.resolved_output_dir(), config.seed)
        self.writes_to = self.run
        """Where the context writes its caches (the teacher's targets): the run, or a tuning trial's work directory."""
        self.checkpoint = resolve_checkpoint(config.teacher)
        self.teacher_depth = encoder_depth(AutoConfig.from_pretrained(self.checkpoint))
        self.routes: list[Route] = configured_routes(config, self.teacher_depth)
        check_transfer_routes(config, self.routes)
        with distributed.main_process_first():  # the datasets cache is filled once
            self.data: TaskData = load_task_data(config.data, config.seed)
        self.labels = self.data.labels
        self.multi_label = self.data.multi_label
        config.calibration.check_labels(self.labels, self.multi_label)  # refused before anything is trained
        self.transfer = TransferRows(load_transfer_texts(config.transfer, self.data, config.seed)
                                     if config.transfer.files else None)
        if check_writable:  # after every check of the input: a refused run leaves nothing behind
            self.run.ensure_writable()
        self.data_fingerprint = self.data.fingerprint
        self.training_fingerprint = augment_training_split(self.data, config.data, config.seed)
        """The training rows as trained on: the data's fingerprint, with the augmentation when there is one."""
        if self.transfer.texts is not None:
            augment_transfer_texts(self.transfer.texts, config.data, config.seed)
        self.tokenizer = load_tokenizer(self.checkpoint)
        self.tokenizer.model_max_length = config.data.max_length
        self.encoded = encode_splits(self.data.splits, self.tokenizer, config.data.max_length)
        self.stage_seconds: dict[str, float] = {}
        self.teacher = TeacherCache()
        self._validation_encodings: list[dict[str, list[int]]] | None = None

    def with_config(self, config: ExperimentConfig) -> RunContext:
        """This context with other route settings (``config``), sharing its data, tokenizer and teacher."""
        other = copy.copy(self)
        other.config = config
        return other

    # ---- the teacher ---------------------------------------------------------------------------------------------
    def teacher_stage(self) -> TeacherStage:
        if self.teacher.stage is None:
            if self.teacher.locate is None:
                raise RuntimeError("the teacher is not trained yet: train the 'teacher' route first")
            self.teacher.stage = self.teacher.locate()
        return self.teacher.stage

    def teacher_model(self) -> PreTrainedModel:
        if self.teacher.model is None:
            with verified_snapshot(self.teacher_stage().directory) as source:
                teacher = AutoModelForSequenceClassification.from_pretrained(source)
            self.teacher.model = teacher.eval().requires_grad_(False)
        return self.teacher.model

    def teacher_identity(self) -> tuple[str, str]:
        if self.teacher.identity is None:
            stage = self.teacher_stage()
            self.teacher.identity = (stage.record.fingerprint, StageStore.weights_hash(stage.directory))
        return self.teacher.identity

    def teacher_targets(self) -> dict[str, np.ndarray]:
        """The teacher's logits and per-layer [CLS] states on the training split, then on the transfer texts if any;
        cached by the teacher's *weights* and the rows' content."""
        if self.teacher.targets is None:
            self.teacher.targets = self._cached_targets(self.encoded["train"], self.training_fingerprint,
                                                        "teacher_targets", "training examples")
        if self.transfer.texts is None:
            return self.teacher.targets
        if self.transfer.targets is None:
            rows = self.transfer.encode(self.tokenizer, self.config.data.max_length)
            targets = self._cached_targets(rows, self.transfer.texts.fingerprint, "transfer_targets",
                                           "transfer texts")
            self.transfer.targets = {key: np.concatenate([self.teacher.targets[key], targets[key]])
                                     for key in self.teacher.targets}
        return self.transfer.targets

    def _cached_targets(self, rows: datasets.Dataset, rows_fingerprint: str, stage: str,
                        what: str) -> dict[str, np.ndarray]:
        _, weights = self.teacher_identity()
        key = cache_key(weights, rows_fingerprint, self.config.data.max_length, self.precision)
        cache_file = self.run.teacher_targets_file(key)
        if not cache_file.exists():
            cache_file = self.writes_to.teacher_targets_file(key)
        started = time.perf_counter()
        with distributed.main_process_first():  # the main process computes and saves, the others read the file
            targets = cached_teacher_targets(self.teacher_model(), self.tokenizer, rows, cache_file, self.precision,
                                             what)
        self.stage_seconds[stage] = time.perf_counter() - started
        return targets

    # ---- data ----------------------------------------------------------------------------------------------------
    def training_data(self, route: Route) -> datasets.Dataset:
        if not route.needs_teacher_targets:
            return self.encoded["train"]
        train = with_example_index(self.encoded["train"])
        if self.transfer.texts is None:
            return train
        return self.transfer.after(train, self.tokenizer, self.config.data.max_length)

    def class_weights(self) -> torch.Tensor | None:
        if self.config.class_weight == "none":
            return None
        counts = np.asarray(self.data.label_counts("train"), dtype=np.float64)
        if self.multi_label:  # each label's negatives per positive: BCE's pos_weight
            negatives = len(self.data.splits["train"]) - counts
            return torch.tensor(negatives / np.maximum(counts, 1), dtype=torch.float32)
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

    def transfer_texts(self) -> TransferTexts | None:
        return self.transfer.texts

    def validation_texts(self) -> tuple[list[str], list[int]]:
        return list(self.data.splits["validation"]["text"]), list(self.data.splits["validation"]["label"])
