"""The teacher: the pretrained checkpoint with a fresh head, every weight fine-tuned on the labels."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from transformers import PreTrainedModel

from distilora.config import ExperimentConfig, TrainConfig
from distilora.models.pretrained import load_pretrained_classifier
from distilora.routes.base import RouteContext, TrainerRoute
from distilora.routes.kinds import RouteKind
from distilora.routes.registry import register_route
from distilora.routes.space import SearchSpace


class FineTune(TrainerRoute):
    """Full fine-tuning of the pretrained checkpoint: the reference every compressed model is compared with."""

    kind = RouteKind.FINE_TUNE
    main_seed_only = True

    def training(self, config: ExperimentConfig) -> TrainConfig:
        return config.teacher_training

    def search_space(self, config: ExperimentConfig) -> SearchSpace | None:
        """The teacher is the run's reference (and every distilled student's source): not tuned."""
        return None

    def build(self, ctx: RouteContext) -> PreTrainedModel:
        return load_pretrained_classifier(ctx.checkpoint, ctx.labels, ctx.multi_label)

    def describe(self, config: ExperimentConfig) -> str:
        return f"{config.teacher}, every weight fine-tuned on the labels"

    def fingerprint_parts(self, ctx: RouteContext) -> tuple[Any, ...]:
        c = ctx.config
        return ("teacher", c.teacher, ctx.data_fingerprint, asdict(c.teacher_training), c.data.max_length)


register_route("teacher", lambda setup: FineTune("teacher"), groups={"default": 0, "all": 0})
