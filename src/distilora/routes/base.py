"""What a route is, and the one registry of routes.

A route is one way of producing a classifier from the pretrained checkpoint: how its model is built, the
objective and :class:`~distilora.config.TrainConfig` it trains with, the data it needs, what goes into its
fingerprint (a finished stage with the same fingerprint is reused), and how it is saved. The experiment, the
report, the service and the benchmark all use these objects and their names; adding a route is one call to
:func:`register_route`.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any, ClassVar, Protocol

import datasets
import torch
from transformers import PreTrainedModel, PreTrainedTokenizerBase, TrainerCallback

from distilora.config import ExperimentConfig, TrainConfig
from distilora.precision import FP32
from distilora.run_dir import StageRecord, fingerprint
from distilora.training.losses import CrossEntropyObjective, Objective
from distilora.training.trainer import TrainResult, train_model


class RouteKind(StrEnum):
    """What kind of model a route makes (results.json's ``route`` field holds the value)."""

    FINE_TUNE = "fine-tune"
    """Every weight trained on the labels (the teacher)."""
    DISTIL = "distil"
    """A shallower student trained to match the fine-tuned teacher."""
    LORA = "lora"
    """Low-rank adapters on the frozen full-depth pretrained model."""
    HYBRID = "hybrid"
    """LoRA trained with the distillation objective: full depth (lora-kd), or adapters on a half-depth student."""
    BASELINE = "baseline"
    """A reference model: a student trained on labels alone (ablation), TF-IDF + logistic regression, or majority."""


def names_of_kind(models: Mapping[str, Mapping[str, Any]], kind: RouteKind) -> list[str]:
    """The models of a run's results (``{name: entry}``, entries with a ``route`` field) made by ``kind``, in order."""
    return [name for name, entry in models.items() if entry.get("route") == kind]


class RouteContext(Protocol):
    """What a route may ask of the run that trains it."""

    config: ExperimentConfig
    checkpoint: str
    """The resolved pretrained checkpoint (``from_pretrained`` accepts it)."""
    labels: list[str]
    data_fingerprint: str
    teacher_depth: int
    tokenizer: PreTrainedTokenizerBase
    encoded: datasets.DatasetDict
    """The tokenized splits."""
    precision: str
    """The run's resolved precision, ``fp32`` or ``bf16`` (:mod:`distilora.precision`)."""
    world_size: int
    """Processes training together (torchrun); 1 for a plain run."""

    def teacher_model(self) -> PreTrainedModel:
        """The fine-tuned teacher, frozen and in eval mode."""
        ...

    def teacher_identity(self) -> tuple[str, str]:
        """The teacher stage's fingerprint and a hash of its weight files."""
        ...

    def class_weights(self) -> torch.Tensor | None:
        """Cross-entropy weights per class (``--class-weight balanced``), or None."""
        ...

    def validation_scores(self, model: PreTrainedModel) -> tuple[float, float]:
        """``(cross-entropy loss, macro-F1)`` of ``model`` on the validation split."""
        ...

    def training_data(self, route: Route) -> datasets.Dataset:
        """The encoded training split, with the teacher's targets where ``route.needs_teacher_targets``."""
        ...

    def teacher_targets(self) -> dict[str, Any]:
        """The teacher's cached outputs on the training split (indexed by the split's ``example_index``)."""
        ...

    def train_texts(self) -> tuple[list[str], list[int]]:
        """The training split's texts and label ids (for routes that do not tokenize)."""
        ...

    def validation_texts(self) -> tuple[list[str], list[int]]:
        ...


class Route(ABC):
    """One way of producing a classifier. Subclasses set ``kind`` and implement the abstract methods."""

    kind: ClassVar[RouteKind]
    main_seed_only: ClassVar[bool] = False
    """Trained once, with the main seed (the teacher), rather than once per seed."""
    needs_teacher_targets: ClassVar[bool] = False
    """Train on the teacher's cached logits and [CLS] states as well as the labels."""
    tokenized: ClassVar[bool] = True
    """Reads token ids (its directory gets the tokenizer)."""
    restore_best: bool = True
    """Early-stop and keep the best validation checkpoint (False: the final model)."""
    can_collapse: ClassVar[bool] = True
    """Checked for collapse after training (not the majority class, which is collapsed by design)."""
    uses_trainer: ClassVar[bool] = True
    """Trained by the one Trainer loop: on every process of a torchrun run, in the run's precision. False: fitted by
    the main process alone, whatever the precision (TF-IDF, majority)."""

    def __init__(self, name: str, layers: list[int] | None = None):
        self.name = name
        self.layers = layers
        """1-based teacher layers the model keeps; None: all of them."""

    @abstractmethod
    def training(self, config: ExperimentConfig) -> TrainConfig:
        """The training settings this route uses."""

    @abstractmethod
    def build(self, ctx: RouteContext) -> PreTrainedModel:
        """A fresh, untrained model (the seed is already set)."""

    @abstractmethod
    def fingerprint_parts(self, ctx: RouteContext) -> tuple[Any, ...]:
        """Everything besides the seed that decides the trained model: a change means training again."""

    def objective(self, ctx: RouteContext) -> Objective:
        return CrossEntropyObjective(ctx.class_weights())

    def callbacks(self, model: PreTrainedModel) -> list[TrainerCallback]:
        """Extra Trainer callbacks this route needs (AdaLoRA's rank allocation, …)."""
        return []

    def describe(self, config: ExperimentConfig) -> str:
        """One line on how the model is made (results.json ``description``, the report, the page)."""
        return self.kind.value

    def details(self) -> dict[str, Any]:
        """Route-specific facts for results.json, saved with the stage (e.g. the importance scores)."""
        return {}

    def execution_parts(self, ctx: RouteContext) -> tuple[Any, ...]:
        """How the training ran, where that changes the model: bf16, several processes (a larger global batch).

        Empty for fp32 in one process, so stages trained before these options existed keep their fingerprints.
        """
        if not self.uses_trainer:
            return ()
        parts = {"precision": ctx.precision} if ctx.precision != FP32 else {}
        if ctx.world_size > 1:
            parts["world_size"] = ctx.world_size
        return (parts,) if parts else ()

    def fingerprint(self, ctx: RouteContext, seed: int) -> str:
        return fingerprint(*self.fingerprint_parts(ctx), ctx.config.class_weight, seed, *self.execution_parts(ctx))

    def train(self, ctx: RouteContext, seed: int, work_dir: Path) -> TrainResult:
        """Build the model and train it with the one Trainer loop (the seed is already set)."""
        model = self.build(ctx)
        return train_model(model, ctx.tokenizer, ctx.training_data(self), ctx.encoded["validation"],
                           self.objective(ctx), self.training(ctx.config), work_dir, seed, ctx.labels,
                           callbacks=self.callbacks(model), restore_best=self.restore_best,
                           teacher_targets=ctx.teacher_targets() if self.needs_teacher_targets else None,
                           precision=ctx.precision)

    def save(self, model: PreTrainedModel, directory: Path) -> None:
        """Save the trained model so that plain ``transformers`` loads it from ``directory``."""
        model.save_pretrained(directory)

    def restore(self, record: StageRecord) -> None:
        """Take back what a reused stage decided when it was trained (e.g. the layers importance chose)."""
        if record.layers is not None:
            self.layers = record.layers

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.name!r}, kind={self.kind.value})"


@dataclass(frozen=True)
class RouteSetup:
    """What a route factory is told: the teacher's depth and the students' depth (``--student-depth``)."""

    teacher_depth: int
    student_depth: int


RouteFactory = Callable[[RouteSetup], Route]
"""Makes a route for a teacher of ``setup.teacher_depth`` layers."""

_REGISTRY: dict[str, RouteFactory] = {}
_GROUPS: dict[str, tuple[str, ...]] = {}


class RouteError(ValueError):
    """An unknown route name, or a set of routes that cannot run together."""


def register_route(name: str, factory: RouteFactory | None = None, *, replace: bool = False):
    """Register ``factory`` under ``name`` (usable as a decorator). ``replace=True`` overrides an existing one."""

    def add(factory: RouteFactory) -> RouteFactory:
        if name in _REGISTRY and not replace:
            raise RouteError(f"a route named {name!r} is already registered")
        _REGISTRY[name] = factory
        return factory

    return add(factory) if factory is not None else add


def unregister_route(name: str) -> None:
    _REGISTRY.pop(name, None)


def registered_routes() -> list[str]:
    return sorted(_REGISTRY)


def register_group(name: str, routes: Iterable[str]) -> None:
    """A name for a list of routes (``--routes default``)."""
    _GROUPS[name] = tuple(routes)


def route_groups() -> dict[str, tuple[str, ...]]:
    return dict(_GROUPS)


def student_depth(config: ExperimentConfig, teacher_depth: int) -> int:
    """``config.student_depth``, or half the teacher's depth; checked against the teacher."""
    depth = config.student_depth if config.student_depth is not None else max(1, teacher_depth // 2)
    if not 1 <= depth < teacher_depth:
        raise RouteError(f"--student-depth {depth}: a student of a {teacher_depth}-layer teacher needs 1 to "
                         f"{teacher_depth - 1} layers")
    return depth


def create_route(name: str, setup: RouteSetup) -> Route:
    """The registered route ``name``, or a distilled student for a layer list such as ``1,4,6``."""
    if name in _REGISTRY:
        return _REGISTRY[name](setup)
    from distilora.routes.distil import student_from_spec

    if name.replace(",", "").replace(" ", "").isdigit():
        return student_from_spec(name, setup)
    raise RouteError(f"unknown route {name!r}; registered: {', '.join(registered_routes())}; groups: "
                     f"{', '.join(sorted(_GROUPS))} (or a list of teacher layers such as 1,3,5)")


def selected_names(config: ExperimentConfig) -> list[str]:
    """``config.routes`` with groups expanded, then ``config.students``; the teacher first; each name once."""
    names = ["teacher"]
    for name in (*config.routes, *config.students):
        for member in _GROUPS.get(name, (name,)):
            if member not in names:
                names.append(member)
    return names


def configured_routes(config: ExperimentConfig, teacher_depth: int) -> list[Route]:
    """The routes a run trains, in order: the teacher, then the selected routes and students.

    Checked before any training: every name is known, every layer spec fits the teacher, no layers twice.
    """
    setup = RouteSetup(teacher_depth, student_depth(config, teacher_depth))
    routes = [create_route(name, setup) for name in selected_names(config)]
    names: set[str] = set()
    student_layers: dict[tuple[int, ...], str] = {}
    for route in routes:
        if route.name in names:
            raise RouteError(f"route {route.name!r} is selected twice")
        names.add(route.name)
        if route.kind is RouteKind.DISTIL and route.layers is not None:
            key = tuple(route.layers)
            if key in student_layers:
                raise RouteError(f"routes {student_layers[key]!r} and {route.name!r} select the same student "
                                 f"layers {route.layers}")
            student_layers[key] = route.name
    return routes
