"""One ``transformers.Trainer`` for every route; the route is the objective plugged into it."""

from __future__ import annotations

import logging
import math
import shutil
import time
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from transformers import (
    DataCollatorWithPadding,
    EarlyStoppingCallback,
    PreTrainedModel,
    PreTrainedTokenizerBase,
    Trainer,
    TrainerCallback,
    TrainingArguments,
)
from transformers.trainer_utils import get_last_checkpoint

from distilora import distributed
from distilora.config import TrainConfig
from distilora.data.encoding import TOKEN_FIELDS
from distilora.evaluation.metrics import classification_metrics
from distilora.precision import BF16, FP32
from distilora.training.losses import TEACHER_CLS, TEACHER_LAYER_CLS, TEACHER_LOGITS, loss_component
from distilora.training.teacher_targets import EXAMPLE_INDEX

logger = logging.getLogger(__name__)

MODEL_INPUTS = (*TOKEN_FIELDS, "labels")
TEACHER_INPUTS = (TEACHER_LOGITS, TEACHER_CLS, TEACHER_LAYER_CLS)


class TeacherTargetCollator:
    """Pads token fields per batch (dynamic padding) and looks up the teacher's cached outputs, if any, by each
    example's ``example_index``."""

    def __init__(self, tokenizer: PreTrainedTokenizerBase, teacher_targets: dict[str, np.ndarray] | None = None):
        self.pad = DataCollatorWithPadding(tokenizer)
        self.targets = teacher_targets

    def __call__(self, features: list[dict[str, Any]]) -> dict[str, torch.Tensor]:
        batch = self.pad([{k: f[k] for k in MODEL_INPUTS if k in f} for f in features])
        if self.targets is not None and EXAMPLE_INDEX in features[0]:
            rows = np.asarray([f[EXAMPLE_INDEX] for f in features])
            batch[TEACHER_LOGITS] = torch.from_numpy(self.targets[TEACHER_LOGITS][rows])
            layer_cls = torch.from_numpy(self.targets[TEACHER_LAYER_CLS][rows])
            batch[TEACHER_LAYER_CLS] = layer_cls
            batch[TEACHER_CLS] = layer_cls[:, -1]
        return batch


class ClassifierTrainer(Trainer):
    """A Trainer whose loss is ``objective(outputs, labels, teacher_targets)``; logs every loss component (each one
    declared in :data:`~distilora.training.losses.LOSS_COMPONENTS`) beside the total."""

    def __init__(self, *args, objective, **kwargs):
        super().__init__(*args, **kwargs)
        self.objective = objective
        # Our objectives return batch means, so let the Trainer scale them for gradient accumulation.
        self.model_accepts_loss_kwargs = False
        self._component_sums: dict[str, float] = defaultdict(float)
        self._component_count = 0

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        teacher = {k: inputs[k] for k in TEACHER_INPUTS if k in inputs}
        model_inputs = {k: v for k, v in inputs.items() if k in MODEL_INPUTS and k != "labels"}
        outputs = model(**model_inputs, output_hidden_states=bool(teacher) and self.objective.wants_hidden_states)
        losses = self.objective(outputs, inputs["labels"], teacher)
        if model.training and len(losses) > 1:
            for name, value in losses.items():
                if name != "loss":
                    self._component_sums[loss_component(name).logged] += float(value.detach())
            self._component_count += 1
        if return_outputs:
            return losses["loss"], {"logits": outputs.logits}
        return losses["loss"]

    def log(self, logs: dict[str, float], start_time: float | None = None) -> None:
        if "loss" in logs and self._component_count:
            for logged, total in self._component_sums.items():
                logs[logged] = round(total / self._component_count, 6)
            self._component_sums.clear()
            self._component_count = 0
        super().log(logs, start_time)


@dataclass
class TrainResult:
    """What a finished training run tells the evaluation and the report."""

    model: torch.nn.Module
    history: list[dict[str, float]]
    train_loss: float
    train_loss_mean: float
    train_seconds: float
    trainable_params: int


def count_parameters(model: torch.nn.Module, trainable_only: bool = False) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)


def steps_per_epoch(config: TrainConfig, num_train: int, processes: int | None = None) -> int:
    """Optimizer steps per epoch; each of the ``processes`` (default: this run's) takes ``batch_size`` per step."""
    processes = processes or distributed.world_size()
    return math.ceil(num_train / (config.batch_size * config.gradient_accumulation_steps * processes))


def num_training_steps(config: TrainConfig, num_train: int, processes: int | None = None) -> int:
    """Optimizer steps of a full training run (without early stopping)."""
    return math.ceil(steps_per_epoch(config, num_train, processes) * config.epochs)


def training_arguments(config: TrainConfig, work_dir: Path, num_train: int, seed: int,
                       restore_best: bool = True, precision: str = FP32) -> TrainingArguments:
    """The Trainer's settings. ``precision="bf16"``: the Trainer's own mixed precision (accelerate's autocast around
    the forward pass, fp32 weights, gradients and optimizer state), on CPU as on GPU."""
    if precision not in (FP32, BF16):
        raise ValueError(f"precision {precision!r}: resolve it first (fp32 or bf16)")
    per_epoch = steps_per_epoch(config, num_train)
    eval_steps = max(1, per_epoch // max(1, config.evals_per_epoch))
    on_gpu = torch.cuda.is_available()
    return TrainingArguments(
        output_dir=str(work_dir),
        num_train_epochs=config.epochs,
        learning_rate=config.learning_rate,
        per_device_train_batch_size=config.batch_size,
        per_device_eval_batch_size=config.eval_batch_size,
        gradient_accumulation_steps=config.gradient_accumulation_steps,
        warmup_steps=config.warmup_ratio,
        weight_decay=config.weight_decay,
        max_grad_norm=config.max_grad_norm,
        lr_scheduler_type="linear",
        eval_strategy="steps",
        eval_steps=eval_steps,
        save_strategy="steps",
        save_steps=eval_steps,
        save_total_limit=2,
        load_best_model_at_end=restore_best,
        metric_for_best_model="macro_f1",
        greater_is_better=True,
        logging_steps=min(config.logging_steps, eval_steps),
        logging_first_step=True,
        seed=seed,
        data_seed=seed,
        report_to="none",
        remove_unused_columns=False,
        label_names=["labels"],
        train_sampling_strategy="group_by_length",
        bf16=precision == BF16,
        use_cpu=not on_gpu,
        ddp_timeout=int(distributed.TIMEOUT.total_seconds()),
        # Every route gives every trainable parameter a gradient (checked under torchrun for all 16 routes): DDP's
        # search for unused ones would cost an extra autograd traversal per step and a warning.
        ddp_find_unused_parameters=False,
    )


def last_complete_checkpoint(work_dir: Path) -> str | None:
    """The newest checkpoint the Trainer finished writing (``trainer_state.json`` is its last file).

    A run killed in the middle of a save leaves a half-written checkpoint: it is removed, not resumed from.
    """
    if not work_dir.exists():
        return None
    while (checkpoint := get_last_checkpoint(str(work_dir))) is not None:
        if (Path(checkpoint) / "trainer_state.json").exists():
            return checkpoint
        logger.warning("Removing incomplete checkpoint %s (the run stopped while saving it)", checkpoint)
        shutil.rmtree(checkpoint)
    return None


def train_model(
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    train_dataset,
    eval_dataset,
    objective,
    config: TrainConfig,
    work_dir: Path,
    seed: int,
    labels: list[str],
    *,
    callbacks: list[TrainerCallback] | None = None,
    teacher_targets: dict[str, np.ndarray] | None = None,
    restore_best: bool = True,
    precision: str = FP32,
) -> TrainResult:
    """Train ``model`` with ``objective``; early-stop on validation macro-F1 and restore the best checkpoint.

    ``teacher_targets``: the teacher's cached outputs, looked up by the training split's ``example_index``.
    ``restore_best=False``: keep the final model and train every epoch (no early stopping).
    ``precision``: ``fp32`` or ``bf16`` (resolved; see :mod:`distilora.precision`).
    A checkpoint left in ``work_dir`` by an interrupted run is resumed from. Under torchrun every process calls this
    (DDP); the main process alone inspects and cleans ``work_dir`` before the start.
    """

    def compute_metrics(prediction) -> dict[str, float]:
        metrics = classification_metrics(prediction.label_ids, prediction.predictions, labels)
        return {"accuracy": metrics["accuracy"], "macro_f1": metrics["macro_f1"]}

    trainer = ClassifierTrainer(
        model=model,
        args=training_arguments(config, work_dir, len(train_dataset), seed, restore_best, precision),
        train_dataset=train_dataset,
        eval_dataset=eval_dataset,
        data_collator=TeacherTargetCollator(tokenizer, teacher_targets),
        processing_class=tokenizer,
        compute_metrics=compute_metrics,
        callbacks=[*([EarlyStoppingCallback(early_stopping_patience=config.early_stopping_patience)] if restore_best
                     else []), *(callbacks or [])],
        objective=objective,
    )
    resume = distributed.from_main_process(lambda: last_complete_checkpoint(work_dir))
    if resume:
        logger.info("Resuming from %s", resume)
    started = time.perf_counter()
    output = trainer.train(resume_from_checkpoint=resume)
    seconds = time.perf_counter() - started
    history = trainer.state.log_history
    losses = [entry["loss"] for entry in history if "loss" in entry]
    # Without the autocast accelerate wrapped the forward pass in for bf16: the model given back computes in fp32
    # unless its caller asks for bf16 again.
    model = trainer.accelerator.unwrap_model(trainer.model, keep_fp32_wrapper=False)
    return TrainResult(
        model=model,
        history=history,
        train_loss=losses[-1] if losses else float(output.training_loss),
        train_loss_mean=float(output.training_loss),
        train_seconds=seconds,
        trainable_params=count_parameters(model, trainable_only=True),
    )
