"""What a route is: one way of producing a classifier from the pretrained checkpoint.

A :class:`Route` says what kind of model it makes, what goes into its fingerprint (a finished stage with the same
fingerprint is reused), how it is trained and how it is saved. A :class:`TrainerRoute` is trained by the one
Trainer loop: it gives its model, objective and :class:`~distilora.config.TrainConfig`. The experiment, the report,
the service and the benchmark all use these objects and their names; adding a route is one call to
:func:`~distilora.routes.registry.register_route`.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar, Protocol

import datasets
import torch
from transformers import PreTrainedModel, PreTrainedTokenizerBase, TrainerCallback

from distilora.config import ExperimentConfig, TrainConfig
from distilora.data.transfer import TransferTexts
from distilora.precision import FP32
from distilora.routes.kinds import RouteKind
from distilora.routes.space import SearchSpace, distillation_space, trainer_space
from distilora.run_dir import StageRecord, fingerprint
from distilora.training.losses import CrossEntropyObjective, Objective
from distilora.training.trainer import TrainResult, train_model


class RouteContext(Protocol):
    """What a route may ask of the run that trains it."""

    config: ExperimentConfig
    checkpoint: str
    """The resolved pretrained checkpoint (``from_pretrained`` accepts it)."""
    labels: list[str]
    multi_label: bool
    """Independent 0/1 labels (sigmoid, BCE) rather than exclusive classes."""
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
        """Cross-entropy weights per class (``--class-weight balanced``; multi-label: each label's ``pos_weight``),
        or None."""
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

    def transfer_texts(self) -> TransferTexts | None:
        """The cleaned transfer texts (``--transfer-texts``) the distilling routes train on, or None."""
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
    can_collapse: ClassVar[bool] = True
    """Checked for collapse after training (not the majority class, which is collapsed by design)."""
    uses_trainer: ClassVar[bool] = False
    """Trained by the one Trainer loop (:class:`TrainerRoute`): on every process of a torchrun run, in the run's
    precision. False: fitted by the main process alone, whatever the precision (TF-IDF, majority)."""

    def __init__(self, name: str, layers: list[int] | None = None):
        self.name = name
        self.layers = layers
        """1-based teacher layers the model keeps; None: all of them."""
        self.variant_of: str | None = None
        """The route this one trains again with other settings (``odd-tuned``: ``odd``); its layers may repeat."""

    @abstractmethod
    def fingerprint_parts(self, ctx: RouteContext) -> tuple[Any, ...]:
        """Everything besides the seed that decides the trained model: a change means training again."""

    @abstractmethod
    def train(self, ctx: RouteContext, seed: int, work_dir: Path) -> TrainResult:
        """Make the model and train or fit it (the seed is already set)."""

    @abstractmethod
    def save(self, model: Any, directory: Path) -> None:
        """Save the trained model so that :mod:`distilora.inference` loads it from ``directory``."""

    def describe(self, config: ExperimentConfig) -> str:
        """One line on how the model is made (results.json ``description``, the report, the page)."""
        return self.kind.value

    def details(self) -> dict[str, Any]:
        """Route-specific facts for results.json, saved with the stage (e.g. the importance scores)."""
        return {}

    def search_space(self, config: ExperimentConfig) -> SearchSpace | None:
        """The settings ``distilora tune`` may vary for this route; None: nothing to tune."""
        return None

    def tuning_sections(self, config: ExperimentConfig, chosen: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """The config objects the search space's sections read the route's settings from; ``chosen``: what the
        run's own stage of this route recorded (its results.json entry), for settings it chose while training."""
        return {"distil": config.distillation, "lora": config.lora, "tfidf": config.tfidf}

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

    def transfer_parts(self, ctx: RouteContext) -> tuple[Any, ...]:
        """The transfer texts a distilling route trains on (their content and weight).

        Empty without them (and for routes that do not distil), so other stages keep their fingerprints.
        """
        if not (self.needs_teacher_targets and ctx.config.transfer.files):
            return ()
        texts = ctx.transfer_texts()
        return ({"transfer": texts.fingerprint, "transfer_weight": ctx.config.transfer.weight},) if texts else ()

    def fingerprint(self, ctx: RouteContext, seed: int) -> str:
        augmentation = ctx.config.data.augmentation()  # added only when set: unaugmented stages keep their fingerprint
        return fingerprint(*self.fingerprint_parts(ctx), ctx.config.class_weight, seed, *self.execution_parts(ctx),
                           *([{"augmentation": augmentation}] if augmentation else []), *self.transfer_parts(ctx))

    def restore(self, record: StageRecord) -> None:
        """Take back what a reused stage decided when it was trained (e.g. the layers importance chose)."""
        if record.layers is not None:
            self.layers = record.layers

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.name!r}, kind={self.kind.value})"


class TrainerRoute(Route):
    """A route whose transformers model is trained by the one Trainer loop: it gives the model, the objective,
    the training settings and any extra callbacks."""

    uses_trainer = True
    restore_best: bool = True
    """Early-stop and keep the best validation checkpoint (False: the final model)."""

    @abstractmethod
    def training(self, config: ExperimentConfig) -> TrainConfig:
        """The training settings this route uses."""

    @abstractmethod
    def build(self, ctx: RouteContext) -> PreTrainedModel:
        """A fresh, untrained model (the seed is already set)."""

    def objective(self, ctx: RouteContext) -> Objective:
        return CrossEntropyObjective(ctx.class_weights())

    def search_space(self, config: ExperimentConfig) -> SearchSpace | None:
        """Every Trainer setting; the distillation weights and temperature too where the route distils."""
        space = trainer_space()
        return space + distillation_space() if self.needs_teacher_targets else space

    def tuning_sections(self, config: ExperimentConfig, chosen: Mapping[str, Any] | None = None) -> dict[str, Any]:
        return {**super().tuning_sections(config, chosen), "train": self.training(config)}

    def callbacks(self, model: PreTrainedModel) -> list[TrainerCallback]:
        """Extra Trainer callbacks this route needs (AdaLoRA's rank allocation, …)."""
        return []

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
