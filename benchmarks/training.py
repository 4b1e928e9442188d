"""Training throughput of each route — teacher (fine-tune), odd (distillation), lora — in three variants.

* ``naive``: a plain PyTorch loop, shuffled batches padded to ``max_length``, AdamW, and for distillation the
  teacher's forward pass on every student step;
* ``trainer``: ``transformers.Trainer`` with default settings (random sampler, ``DataCollatorWithPadding``);
  distillation through the usual ``compute_loss`` override that runs the teacher on every step;
* ``distilora``: :func:`distilora.training.train_model` with distilora's objectives; students train on the cached
  teacher targets, whose one-off pass is timed separately and amortised over the two students.

Every variant trains the same freshly built model (same seed) on the same texts with the same batch size, and
is timed by :class:`~benchmarks.steps.StepTimer` from the end of the warm-up step to the end of the last.
"""

from __future__ import annotations

import gc
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from transformers import PreTrainedModel, Trainer, TrainingArguments, set_seed

from benchmarks.config import BenchConfig
from benchmarks.flops import ModelShape, achieved, forward_flops, training_flops
from benchmarks.memory import PeakRSS
from benchmarks.peak import synchronize
from benchmarks.sample import BenchSample, naive_loader
from benchmarks.steps import StepTimer
from distilora.config import DistillationConfig, ExperimentConfig, TrainConfig
from distilora.precision import FP32
from distilora.routes import Route, RouteKind
from distilora.training import distillation_loss, train_model
from distilora.training.teacher_targets import cached_teacher_targets, with_example_index

VARIANTS = ("naive", "trainer", "distilora")
STUDENTS_SHARING_TARGETS = 2
"""distilora distils two students (odd, even) from one teacher-target pass."""


@dataclass
class BenchContext:
    """The :class:`~distilora.routes.RouteContext` of the bench: default settings, the given teacher."""

    checkpoint: str
    labels: list[str]
    teacher: PreTrainedModel
    config: ExperimentConfig = field(default_factory=ExperimentConfig)
    data_fingerprint: str = "bench"
    precision: str = FP32
    world_size: int = 1
    multi_label: bool = False
    class_weight: str = "none"

    def teacher_model(self) -> PreTrainedModel:
        return self.teacher

    def teacher_identity(self) -> tuple[str, str]:
        return ("bench", "bench")

    @property
    def teacher_depth(self) -> int:
        return self.teacher.config.num_hidden_layers

    def class_weights(self) -> None:
        return None


def _teacher_of(route: Route, ctx: BenchContext) -> PreTrainedModel | None:
    """The teacher a distillation route runs (naive loop, plain Trainer) on every step; None for other routes."""
    return ctx.teacher if route.needs_teacher_targets else None


def _learning_rate(route: Route, ctx: BenchContext) -> float:
    return route.training(ctx.config).learning_rate


def teacher_every_step_loss(model: torch.nn.Module, teacher: torch.nn.Module, inputs: dict[str, torch.Tensor],
                            labels: torch.Tensor) -> torch.Tensor:
    """Distillation as usually written: run the frozen teacher on the batch, then the student; same loss."""
    with torch.no_grad():
        target = teacher(**inputs, output_hidden_states=True)
    outputs = model(**inputs, output_hidden_states=True)
    return distillation_loss(outputs.logits, target.logits, labels, outputs.hidden_states[-1][:, 0],
                             target.hidden_states[-1][:, 0], DistillationConfig())["loss"]


class TeacherEveryStepTrainer(Trainer):
    """The common distillation ``Trainer``: ``compute_loss`` runs the teacher on every training step."""

    def __init__(self, *args, teacher: torch.nn.Module, **kwargs):
        super().__init__(*args, **kwargs)
        self.teacher = teacher

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        inputs = dict(inputs)
        labels = inputs.pop("labels")
        loss = teacher_every_step_loss(model, self.teacher, inputs, labels)
        return (loss, None) if return_outputs else loss


def train_naive(model: torch.nn.Module, route: Route, ctx: BenchContext, sample: BenchSample,
                options: BenchConfig) -> None:
    """A plain loop: shuffled, padded-to-max-length batches; AdamW; the teacher on every distillation step."""
    device = next(model.parameters()).device
    model.train()
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=_learning_rate(route, ctx))
    teacher = _teacher_of(route, ctx)
    loader = naive_loader(sample.tokenizer, sample.train_texts, sample.train_labels, options.batch_size,
                          options.max_length, options.seed)
    for batch in loader:
        inputs = {k: v.to(device) for k, v in batch.items()}
        labels = inputs.pop("labels")
        if teacher is not None:
            loss = teacher_every_step_loss(model, teacher, inputs, labels)
        else:
            loss = F.cross_entropy(model(**inputs).logits, labels)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()


def train_plain_trainer(model: torch.nn.Module, route: Route, ctx: BenchContext, sample: BenchSample,
                        options: BenchConfig, work: Path) -> None:
    """``transformers.Trainer`` with its defaults (only batch size, learning rate, step count, no checkpoints)."""
    args = TrainingArguments(output_dir=str(work), per_device_train_batch_size=options.batch_size,
                             learning_rate=_learning_rate(route, ctx), max_steps=options.warmup_steps + options.steps,
                             save_strategy="no", report_to="none", seed=options.seed)
    teacher = _teacher_of(route, ctx)
    extra = {"teacher": teacher} if teacher is not None else {}
    trainer_class = TeacherEveryStepTrainer if teacher is not None else Trainer
    trainer = trainer_class(model=model, args=args, train_dataset=sample.train, processing_class=sample.tokenizer,
                            **extra)
    trainer.train()


def train_distilora(model: PreTrainedModel, route: Route, ctx: BenchContext, sample: BenchSample,
                    options: BenchConfig, work: Path, targets: dict[str, np.ndarray] | None,
                    precision: str = FP32) -> None:
    """distilora's ``train_model``: one epoch over the sample; its only evaluation comes after the last step."""
    config = TrainConfig(epochs=1, learning_rate=_learning_rate(route, ctx), batch_size=options.batch_size,
                         evals_per_epoch=1)
    eval_dataset = sample.train.select(range(min(len(sample.train), options.batch_size)))
    train = with_example_index(sample.train) if targets is not None else sample.train
    train_model(model, sample.tokenizer, train, eval_dataset, route.objective(ctx), config, work, options.seed,
                sample.labels, teacher_targets=targets, precision=precision)


def teacher_target_pass(teacher: PreTrainedModel, sample: BenchSample,
                        precision: str = FP32) -> tuple[dict[str, np.ndarray], dict]:
    """Time distilora's one-off teacher pass (compute and save to the cache file)."""
    device = next(teacher.parameters()).device
    with tempfile.TemporaryDirectory(prefix="distilora-bench-targets-") as work, PeakRSS() as memory:
        started = time.perf_counter()
        targets = cached_teacher_targets(teacher, sample.tokenizer, sample.train, Path(work) / "targets.safetensors",
                                         precision)
        synchronize(device)
        seconds = time.perf_counter() - started
    flops = forward_flops(ModelShape.of(teacher), sample.train["length"])
    stats = {"samples": len(sample.train), "seconds": seconds, "samples_per_s": len(sample.train) / seconds,
             "amortised_over_students": STUDENTS_SHARING_TARGETS}
    return targets, stats | achieved(flops, seconds) | {"memory": memory.as_dict()}


def measure_variant(route: Route, ctx: BenchContext, variant: str, sample: BenchSample, options: BenchConfig,
             device: torch.device, targets: dict[str, np.ndarray] | None, precision: str = FP32) -> dict:
    set_seed(options.seed)
    model = route.build(ctx).to(device)
    shape = ModelShape.of(model)
    with (tempfile.TemporaryDirectory(prefix=f"distilora-bench-{route.name}-{variant}-") as work,
          PeakRSS() as memory, StepTimer(model, device) as timer):
        if variant == "naive":
            train_naive(model, route, ctx, sample, options)
        elif variant == "trainer":
            train_plain_trainer(model, route, ctx, sample, options, Path(work))
        else:
            train_distilora(model, route, ctx, sample, options, Path(work) / "train", targets, precision)
    stats = timer.stats(options.warmup_steps)
    del model
    gc.collect()
    flops = training_flops(shape, stats.lengths, frozen_base=route.kind is RouteKind.LORA)
    result = stats.to_dict() | achieved(flops, stats.seconds)
    result["effective_useful_tokens_per_s"] = result["useful_tokens_per_s"]
    result["effective_samples_per_s"] = result["samples_per_s"]
    return result | {"shape": shape.to_dict(), "memory": memory.as_dict()}


def _amortise(result: dict, targets: dict) -> None:
    """Add the student's share of the teacher-target pass to its timed seconds."""
    share = result["samples"] * targets["seconds"] / targets["samples"] / STUDENTS_SHARING_TARGETS
    seconds = result["seconds"] + share
    rate = result["useful_gflops_per_s"] * result["seconds"] / seconds
    result["amortised"] = {"teacher_target_seconds": share, "seconds": seconds,
                           "samples_per_s": result["samples"] / seconds,
                           "useful_tokens_per_s": result["useful_tokens"] / seconds,
                           "useful_gflops_per_s": rate}
    result["effective_useful_tokens_per_s"] = result["amortised"]["useful_tokens_per_s"]
    result["effective_samples_per_s"] = result["amortised"]["samples_per_s"]


def measure_route(route: Route, ctx: BenchContext, sample: BenchSample, options: BenchConfig,
                  device: torch.device) -> dict:
    """Every variant of one route, with speed-ups (useful tokens/s) against the naive loop and the plain Trainer."""
    out: dict = {}
    targets = None
    if route.needs_teacher_targets:
        targets, out["teacher_targets"] = teacher_target_pass(ctx.teacher, sample)
    for variant in VARIANTS:
        out[variant] = measure_variant(route, ctx, variant, sample, options, device, targets)
    if route.needs_teacher_targets:
        _amortise(out["distilora"], out["teacher_targets"])
    for variant in VARIANTS:
        speed = out[variant]["effective_useful_tokens_per_s"]
        out[variant]["speedup_vs_naive"] = speed / out["naive"]["effective_useful_tokens_per_s"]
        out[variant]["speedup_vs_trainer"] = speed / out["trainer"]["effective_useful_tokens_per_s"]
    return out
