"""Layer-selected distillation: a student built from some of the fine-tuned teacher's layers, trained to match it."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from transformers import PreTrainedModel

from distilora.config import ExperimentConfig, TrainConfig
from distilora.models.students import build_student, parse_layer_spec, student_name
from distilora.routes.base import Route, RouteContext, RouteKind, register_route
from distilora.training.losses import DistillationObjective, Objective


class DistilledStudent(Route):
    """Embeddings, the chosen layers (in order), pooler and head copied from the fine-tuned teacher, then
    distilled with ``w_ce·CE + w_kd·T²·KL + w_cos·(1 − cos)`` on the teacher's cached outputs."""

    kind = RouteKind.DISTIL
    needs_teacher_targets = True

    def training(self, config: ExperimentConfig) -> TrainConfig:
        return config.student_training

    def build(self, ctx: RouteContext) -> PreTrainedModel:
        return build_student(ctx.teacher_model(), self.layers)

    def objective(self, config: ExperimentConfig) -> Objective:
        return DistillationObjective(config.distillation)

    def fingerprint_parts(self, ctx: RouteContext) -> tuple[Any, ...]:
        c = ctx.config
        # The teacher's weights, not only its settings: a retrained teacher means new students.
        teacher_fingerprint, teacher_weights = ctx.teacher_identity()
        return ("student", teacher_fingerprint, teacher_weights, self.layers, asdict(c.student_training),
                asdict(c.distillation))


def student_from_spec(spec: str, teacher_depth: int) -> DistilledStudent:
    """``odd``, ``even`` or an explicit list such as ``1,4,6`` (named ``layers-1-4-6``), checked against the teacher."""
    layers = parse_layer_spec(spec, teacher_depth)
    named = spec.strip().lower() in ("odd", "even")
    return DistilledStudent(student_name(spec if named else ",".join(map(str, layers))), layers)


for _spec in ("odd", "even"):
    register_route(_spec, lambda teacher_depth, spec=_spec: student_from_spec(spec, teacher_depth))
