"""LoRA: PEFT adapters on the frozen full-depth *pretrained* model; the classification head trains alongside."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import Any

import peft
from transformers import PreTrainedModel

from distilora.config import ExperimentConfig, LoraConfig, TrainConfig
from distilora.models.pretrained import load_pretrained_classifier
from distilora.routes.base import Route, RouteContext, RouteKind, register_route

ADAPTER_DIR = "adapter"


def build_lora_model(checkpoint: str, labels: list[str], settings: LoraConfig) -> peft.PeftModel:
    """Wrap the pretrained checkpoint with LoRA; the head trains alongside (PEFT's ``modules_to_save``)."""
    base = load_pretrained_classifier(checkpoint, labels)
    config = peft.LoraConfig(
        task_type=peft.TaskType.SEQ_CLS,
        r=settings.r,
        lora_alpha=settings.alpha,
        lora_dropout=settings.dropout,
        target_modules=list(settings.target_modules),
    )
    try:
        return peft.get_peft_model(base, config)
    except ValueError as error:
        names = sorted({name.rsplit(".", 1)[-1] for name, _ in base.named_modules() if name})
        raise ValueError(
            f"LoRA target modules {list(settings.target_modules)}: {error}. Module names: {names}"
        ) from error


def save_lora(model: peft.PeftModel, directory: Path) -> None:
    """The PEFT adapter under ``adapter/``, and the merged model (loads in plain transformers) beside it."""
    model.save_pretrained(directory / ADAPTER_DIR)
    model.merge_and_unload().save_pretrained(directory)


class Lora(Route):
    """LoRA on query and value (by default) of every layer of the pretrained checkpoint."""

    kind = RouteKind.LORA

    def training(self, config: ExperimentConfig) -> TrainConfig:
        return config.lora_training

    def build(self, ctx: RouteContext) -> PreTrainedModel:
        return build_lora_model(ctx.checkpoint, ctx.labels, ctx.config.lora)

    def fingerprint_parts(self, ctx: RouteContext) -> tuple[Any, ...]:
        c = ctx.config
        return ("lora", c.teacher, ctx.data_fingerprint, asdict(c.lora_training), asdict(c.lora),
                c.data.max_length)

    def save(self, model: PreTrainedModel, directory: Path) -> None:
        save_lora(model, directory)


register_route("lora", lambda teacher_depth: Lora("lora"))
