"""What a route is, and the one registry of routes.

A route is one way of producing a classifier from the pretrained checkpoint: how its model is built, the
objective and :class:`~distilora.config.TrainConfig` it trains with, the data it needs, what goes into its
fingerprint (a finished stage with the same fingerprint is reused), and how it is saved. The experiment, the
report, the service and the benchmark all use these objects and their names; adding a route is one call to
:func:`register_route`.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from enum import StrEnum
from pathlib import Path
from typing import Any, ClassVar, Protocol

from transformers import PreTrainedModel

from distilora.config import ExperimentConfig, TrainConfig
from distilora.run_dir import fingerprint
from distilora.training.losses import CrossEntropyObjective, Objective


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

    def teacher_model(self) -> PreTrainedModel:
        """The fine-tuned teacher, frozen and in eval mode."""
        ...

    def teacher_identity(self) -> tuple[str, str]:
        """The teacher stage's fingerprint and a hash of its weight files."""
        ...


class Route(ABC):
    """One way of producing a classifier. Subclasses set ``kind`` and implement the abstract methods."""

    kind: ClassVar[RouteKind]
    main_seed_only: ClassVar[bool] = False
    """Trained once, with the main seed (the teacher), rather than once per seed."""
    needs_teacher_targets: ClassVar[bool] = False
    """Train on the teacher's cached logits and [CLS] states as well as the labels."""

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

    def objective(self, config: ExperimentConfig) -> Objective:
        return CrossEntropyObjective()

    def fingerprint(self, ctx: RouteContext, seed: int) -> str:
        return fingerprint(*self.fingerprint_parts(ctx), seed)

    def save(self, model: PreTrainedModel, directory: Path) -> None:
        """Save the trained model so that plain ``transformers`` loads it from ``directory``."""
        model.save_pretrained(directory)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.name!r}, kind={self.kind.value})"


RouteFactory = Callable[[int], Route]
"""Makes a route for a teacher with this many layers."""

_REGISTRY: dict[str, RouteFactory] = {}


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


def create_route(name: str, teacher_depth: int) -> Route:
    """The registered route ``name``, or a distilled student for a layer list such as ``1,4,6``."""
    if name in _REGISTRY:
        return _REGISTRY[name](teacher_depth)
    from distilora.routes.distil import student_from_spec

    if name.replace(",", "").replace(" ", "").isdigit():
        return student_from_spec(name, teacher_depth)
    raise RouteError(f"unknown route {name!r}; registered: {', '.join(registered_routes())} "
                     "(or a list of teacher layers such as 1,3,5)")


def configured_routes(config: ExperimentConfig, teacher_depth: int) -> list[Route]:
    """The routes a run trains, in order: teacher, one student per layer spec, LoRA, then any extra routes.

    Checked before any training: every name is known, every layer spec fits the teacher, nothing twice.
    """
    from distilora.routes.distil import student_from_spec

    routes = [create_route("teacher", teacher_depth)]
    routes += [student_from_spec(spec, teacher_depth) for spec in config.students]
    if config.run_lora:
        routes.append(create_route("lora", teacher_depth))
    routes += [create_route(name, teacher_depth) for name in config.extra_routes]
    names: set[str] = set()
    student_layers: list[list[int]] = []
    for route in routes:
        if route.name in names:
            raise RouteError(f"route {route.name!r} is selected twice")
        if route.kind is RouteKind.DISTIL:
            if route.layers in student_layers:
                raise RouteError(f"route {route.name!r} selects the same student layers {route.layers} twice")
            student_layers.append(route.layers)
        names.add(route.name)
    return routes
