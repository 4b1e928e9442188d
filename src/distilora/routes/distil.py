"""Layer-selected distillation: a student built from some of the fine-tuned teacher's layers, trained to match it,
and the same student trained without its teacher (the ablation that says what the teacher adds)."""

from __future__ import annotations

import logging
from dataclasses import asdict
from typing import Any

from transformers import PreTrainedModel

from distilora import distributed
from distilora.config import ExperimentConfig, TrainConfig
from distilora.models.layer_selection import FIXED_STRATEGIES, fixed_layers, greedy_layer_elimination
from distilora.models.students import build_student, parse_layer_spec, student_name
from distilora.routes.base import RouteContext, TrainerRoute
from distilora.routes.kinds import RouteKind
from distilora.routes.registry import RouteFactory, RouteSetup, register_route, register_spec_resolver
from distilora.training.losses import CrossEntropyObjective, DistillationObjective, Objective

logger = logging.getLogger(__name__)


def _layers(layers: list[int] | None) -> str:
    return ",".join(map(str, layers)) if layers else "(chosen by importance)"


class DistilledStudent(TrainerRoute):
    """Embeddings, the chosen layers (in order), pooler and head copied from the fine-tuned teacher, then
    distilled with ``w_ce·CE + w_kd·T²·KL + w_cos·(1 − cos) [+ w_hidden·hidden]`` on the teacher's cached outputs."""

    kind = RouteKind.DISTIL
    needs_teacher_targets = True

    def training(self, config: ExperimentConfig) -> TrainConfig:
        return config.student_training

    def build(self, ctx: RouteContext) -> PreTrainedModel:
        return build_student(ctx.teacher_model(), self.layers)

    def objective(self, ctx: RouteContext) -> Objective:
        return DistillationObjective(ctx.config.distillation, self.layers, ctx.class_weights(),
                                     ctx.config.transfer.weight)

    def describe(self, config: ExperimentConfig) -> str:
        d = config.distillation
        terms = " + ".join(name for name, w in (("CE", d.w_ce), ("KL", d.w_kd), ("cosine", d.w_cos),
                                                 ("hidden-state MSE", d.w_hidden)) if w > 0)
        return f"teacher layers {_layers(self.layers)}, distilled ({terms})"

    def fingerprint_parts(self, ctx: RouteContext) -> tuple[Any, ...]:
        c = ctx.config
        # The teacher's weights, not only its settings: a retrained teacher means retrained students.
        teacher_fingerprint, teacher_weights = ctx.teacher_identity()
        return ("student", teacher_fingerprint, teacher_weights, self.layers, asdict(c.student_training),
                asdict(c.distillation))


class ImportanceStudent(DistilledStudent):
    """The student whose layers greedy backward elimination on the fine-tuned teacher keeps: repeatedly remove the
    layer whose removal costs least on validation (loss; ties: macro-F1) until ``student_depth`` remain."""

    def __init__(self, name: str, student_depth: int):
        super().__init__(name, None)
        self.student_depth = student_depth
        self.importance: dict[str, Any] | None = None

    def build(self, ctx: RouteContext) -> PreTrainedModel:
        teacher = ctx.teacher_model()
        logger.info("[%s] choosing %d of %d layers by greedy elimination on validation", self.name,
                    self.student_depth, ctx.teacher_depth)
        # Chosen once (by the main process of a torchrun run) so that every process builds the same student.
        chosen, steps = distributed.from_main_process(lambda: greedy_layer_elimination(
            ctx.teacher_depth, self.student_depth, lambda kept: ctx.validation_scores(build_student(teacher, kept))))
        self.layers = chosen
        self.importance = {"criterion": "validation loss (ties: macro-F1)", "steps": steps, "chosen": chosen}
        logger.info("[%s] kept layers %s (removed in order: %s)", self.name, chosen, [s["removed"] for s in steps])
        return build_student(teacher, chosen)

    def details(self) -> dict[str, Any]:
        return {"importance": self.importance} if self.importance else {}

    def describe(self, config: ExperimentConfig) -> str:
        return super().describe(config) + "; layers kept by greedy elimination on validation loss"

    def fingerprint_parts(self, ctx: RouteContext) -> tuple[Any, ...]:
        c = ctx.config
        teacher_fingerprint, teacher_weights = ctx.teacher_identity()
        return ("importance-student", teacher_fingerprint, teacher_weights, self.student_depth,
                asdict(c.student_training), asdict(c.distillation))


class StudentWithoutTeacher(DistilledStudent):
    """A student's exact initialisation (the teacher's layers) trained on the labels alone, with the same schedule:
    the ablation that separates what distillation adds from what the layer initialisation gives."""

    kind = RouteKind.BASELINE
    needs_teacher_targets = False

    def __init__(self, name: str, layers: list[int], ablation_of: str):
        super().__init__(name, layers)
        self.ablation_of = ablation_of

    def objective(self, ctx: RouteContext) -> Objective:
        return CrossEntropyObjective(ctx.class_weights())

    def describe(self, config: ExperimentConfig) -> str:
        return f"teacher layers {_layers(self.layers)}, trained on the labels alone (no teacher)"

    def details(self) -> dict[str, Any]:
        return {"ablation_of": self.ablation_of}

    def fingerprint_parts(self, ctx: RouteContext) -> tuple[Any, ...]:
        teacher_fingerprint, teacher_weights = ctx.teacher_identity()
        return ("student-no-kd", teacher_fingerprint, teacher_weights, self.layers, asdict(ctx.config.student_training))


def student_from_spec(spec: str, setup: RouteSetup) -> DistilledStudent:
    """A strategy (odd, even, first, last) or an explicit list such as ``1,4,6`` (named ``layers-1-4-6``)."""
    text = spec.strip().lower()
    if text in FIXED_STRATEGIES:
        return DistilledStudent(text, fixed_layers(text, setup.teacher_depth, setup.student_depth))
    layers = parse_layer_spec(spec, setup.teacher_depth)
    return DistilledStudent(student_name(",".join(map(str, layers))), layers)


def is_layer_list(name: str) -> bool:
    """``1,4,6``: teacher layers (checked against the teacher by :func:`student_from_spec`)."""
    return name.replace(",", "").replace(" ", "").isdigit()


def _strategy(strategy: str) -> RouteFactory:
    return lambda setup: student_from_spec(strategy, setup)


register_route("odd", _strategy("odd"), groups={"default": 1, "all": 1})
register_route("even", _strategy("even"), groups={"default": 2, "all": 2})
register_route("first", _strategy("first"), groups={"all": 3})
register_route("last", _strategy("last"), groups={"all": 4})
register_route("importance", lambda setup: ImportanceStudent("importance", setup.student_depth), groups={"all": 5})
register_route("odd-no-kd", lambda setup: StudentWithoutTeacher(
    "odd-no-kd", fixed_layers("odd", setup.teacher_depth, setup.student_depth), ablation_of="odd"),
    groups={"default": 4, "all": 6})
register_spec_resolver(is_layer_list, student_from_spec, "a list of teacher layers such as 1,3,5")
