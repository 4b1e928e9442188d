"""LoRA and its PEFT variants on the frozen full-depth *pretrained* model, and the LoRA + distillation hybrids.

The classification head (and ``LoraConfig.modules_to_save``) trains in full beside the adapters. Every route saves
the PEFT adapter under ``adapter/`` and the merged model (loads in plain transformers) beside it.
"""

from __future__ import annotations

import logging
from dataclasses import asdict
from pathlib import Path
from typing import Any

import peft
from transformers import PreTrainedModel, TrainerCallback

from distilora.config import ExperimentConfig, LoraConfig, TrainConfig
from distilora.models.layer_selection import fixed_layers
from distilora.models.pretrained import load_pretrained_classifier
from distilora.models.students import build_student
from distilora.routes.base import RouteContext, TrainerRoute
from distilora.routes.kinds import RouteError, RouteKind
from distilora.routes.registry import register_route
from distilora.routes.space import (
    ADAPTER_LEARNING_RATES,
    SearchSpace,
    distillation_space,
    lora_space,
    trainer_space,
)
from distilora.training.losses import DistillationObjective, Objective
from distilora.training.trainer import num_training_steps

logger = logging.getLogger(__name__)

ADAPTER_DIR = "adapter"
VARIANT_NAMES = {"lora": "LoRA", "dora": "DoRA", "rslora": "rsLoRA", "pissa": "PiSSA", "adalora": "AdaLoRA"}
VARIANTS = tuple(VARIANT_NAMES)
"""``--lora-variant``: plain LoRA, DoRA (magnitude / direction), rank-stabilised scaling, PiSSA (principal singular
vectors as the initialisation), AdaLoRA (ranks reallocated during training)."""


def peft_config(settings: LoraConfig, variant: str, target_modules: list[str], total_steps: int) -> peft.PeftConfig:
    """The PEFT configuration of a LoRA ``variant`` (``total_steps``: AdaLoRA's rank-allocation schedule)."""
    common = dict(task_type=peft.TaskType.SEQ_CLS, lora_alpha=settings.alpha, lora_dropout=settings.dropout,
                  target_modules=target_modules, modules_to_save=list(settings.modules_to_save) or None)
    if variant == "adalora":
        # Warm up for 10 % of the steps, prune ranks until 70 %, then keep the final budget fixed.
        return peft.AdaLoraConfig(init_r=settings.r, target_r=settings.final_adalora_r, total_step=total_steps,
                                  tinit=max(1, total_steps // 10), tfinal=max(1, total_steps * 3 // 10),
                                  deltaT=max(1, total_steps // 50), **common)
    extra = {"lora": {}, "dora": {"use_dora": True}, "rslora": {"use_rslora": True},
             "pissa": {"init_lora_weights": "pissa_niter_4"}}
    if variant not in extra:
        raise RouteError(f"unknown LoRA variant {variant!r}; choose from {', '.join(VARIANTS)}")
    return peft.LoraConfig(r=settings.r, **common, **extra[variant])


def wrap_with_lora(base: PreTrainedModel, settings: LoraConfig, variant: str = "lora",
                   total_steps: int = 1) -> peft.PeftModel:
    """``base`` with adapters on its attention query / value projections (whatever the architecture calls them)."""
    from distilora.models.architectures import lora_target_modules

    targets = lora_target_modules(base, settings.target_modules)
    return peft.get_peft_model(base, peft_config(settings, variant, targets, total_steps))


def build_lora_model(checkpoint: str, labels: list[str], settings: LoraConfig, variant: str = "lora",
                     total_steps: int = 1) -> peft.PeftModel:
    """Wrap the pretrained checkpoint (with a fresh head) with LoRA."""
    return wrap_with_lora(load_pretrained_classifier(checkpoint, labels), settings, variant, total_steps)


def save_lora(model: peft.PeftModel, directory: Path, with_adapter: bool = True) -> None:
    """The PEFT adapter under ``adapter/``, and the merged model (loads in plain transformers) beside it."""
    if with_adapter:
        model.save_pretrained(directory / ADAPTER_DIR)
    model.merge_and_unload().save_pretrained(directory)


class AdaLoraRankAllocation(TrainerCallback):
    """AdaLoRA's ``update_and_allocate`` after every optimizer step, before the gradients are zeroed."""

    def __init__(self, model: peft.PeftModel):
        self.model = model

    def on_optimizer_step(self, args, state, control, **kwargs):
        self.model.base_model.update_and_allocate(state.global_step)


class Lora(TrainerRoute):
    """A LoRA variant on query and value (by default) of every layer of the pretrained checkpoint."""

    kind = RouteKind.LORA

    def __init__(self, name: str, variant: str = "lora", layers: list[int] | None = None):
        super().__init__(name, layers)
        if variant not in VARIANTS:
            raise RouteError(f"unknown LoRA variant {variant!r}; choose from {', '.join(VARIANTS)}")
        self.variant = variant
        # AdaLoRA's rank pattern changes as it trains: an earlier checkpoint does not fit the final model's shapes.
        self.restore_best = variant != "adalora"

    def training(self, config: ExperimentConfig) -> TrainConfig:
        return config.lora_training

    def search_space(self, config: ExperimentConfig) -> SearchSpace | None:
        """The Trainer settings at the adapters' learning rates, LoRA's own; the distillation's where it distils."""
        space = trainer_space(ADAPTER_LEARNING_RATES) + lora_space()
        return space + distillation_space() if self.needs_teacher_targets else space

    def base_model(self, ctx: RouteContext) -> PreTrainedModel:
        return load_pretrained_classifier(ctx.checkpoint, ctx.labels, ctx.multi_label)

    def build(self, ctx: RouteContext) -> PreTrainedModel:
        # AdaLoRA schedules its rank budget over the whole run; the other variants do not need the step count.
        adalora = self.variant == "adalora"
        steps = num_training_steps(self.training(ctx.config), len(ctx.encoded["train"])) if adalora else 1
        return wrap_with_lora(self.base_model(ctx), ctx.config.lora, self.variant, steps)

    def callbacks(self, model: PreTrainedModel) -> list[TrainerCallback]:
        return [AdaLoraRankAllocation(model)] if self.variant == "adalora" else []

    def describe(self, config: ExperimentConfig) -> str:
        c = config.lora
        name = VARIANT_NAMES[self.variant]
        rank = f"r {c.r}→{c.final_adalora_r}" if self.variant == "adalora" else f"r {c.r}"
        return f"{name} ({rank}, α {c.alpha}) on {', '.join(c.target_modules)} of the pretrained model"

    def fingerprint_parts(self, ctx: RouteContext) -> tuple[Any, ...]:
        c = ctx.config
        return ("lora", self.variant, c.teacher, ctx.data_fingerprint, asdict(c.lora_training), asdict(c.lora),
                c.data.max_length)

    def save(self, model: PreTrainedModel, directory: Path) -> None:
        # PiSSA trains on residual base weights: its adapter does not apply to the original checkpoint (PEFT's
        # conversion to plain LoRA fails when modules_to_save are trained), so only the merged model is saved.
        save_lora(model, directory, with_adapter=self.variant != "pissa")


class LoraDistilled(Lora):
    """Hybrid: LoRA on the full-depth pretrained model trained with the distillation objective from the fine-tuned
    teacher (its logits and [CLS] states) instead of the labels alone."""

    kind = RouteKind.HYBRID
    needs_teacher_targets = True

    def __init__(self, name: str, teacher_depth: int):
        super().__init__(name)
        self.teacher_depth = teacher_depth

    def objective(self, ctx: RouteContext) -> Objective:
        layer_map = self.layers or list(range(1, self.teacher_depth + 1))
        return DistillationObjective(ctx.config.distillation, layer_map, ctx.class_weights(),
                                     ctx.config.transfer.weight)

    def describe(self, config: ExperimentConfig) -> str:
        return super().describe(config) + ", distilled from the teacher"

    def fingerprint_parts(self, ctx: RouteContext) -> tuple[Any, ...]:
        return (*super().fingerprint_parts(ctx), "kd", *ctx.teacher_identity(), asdict(ctx.config.distillation))


class StudentLora(LoraDistilled):
    """Hybrid: a layer-selected student distilled with only LoRA adapters and the head trainable — a few hundred
    thousand trained parameters; the adapter is what one ships per task."""

    def __init__(self, name: str, layers: list[int]):
        super().__init__(name, len(layers))
        self.layers = layers

    def base_model(self, ctx: RouteContext) -> PreTrainedModel:
        return build_student(ctx.teacher_model(), self.layers)

    def describe(self, config: ExperimentConfig) -> str:
        c = config.lora
        return (f"teacher layers {','.join(map(str, self.layers))}, distilled through LoRA (r {c.r}) and the head "
                "only")

    def fingerprint_parts(self, ctx: RouteContext) -> tuple[Any, ...]:
        return (*super().fingerprint_parts(ctx), "student", self.layers)


VARIANT_TAG = "lora-variant"
"""Registry tag of the LoRA routes: their variant (``--lora-variant dora`` selects the route tagged ``dora``)."""

register_route("lora", lambda setup: Lora("lora"), groups={"default": 3, "all": 9}, tags={VARIANT_TAG: "lora"})
for _place, _variant in enumerate(VARIANTS[1:], start=10):
    register_route(f"lora-{_variant}", lambda setup, variant=_variant: Lora(f"lora-{variant}", variant),
                   groups={"all": _place}, tags={VARIANT_TAG: _variant})
register_route("lora-kd", lambda setup: LoraDistilled("lora-kd", setup.teacher_depth), groups={"all": 14})
register_route("odd-lora", lambda setup: StudentLora(
    "odd-lora", fixed_layers("odd", setup.teacher_depth, setup.student_depth)), groups={"all": 15})
