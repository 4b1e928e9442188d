"""Training objectives. Each returns the total loss and its named components (logged at every logging step)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import torch
import torch.nn.functional as F

from distilora.config import DistillationConfig

LOGGED_PREFIX = "loss_"
"""A component ``kd`` is logged as ``loss_kd`` beside the total ``loss``."""


@dataclass(frozen=True)
class LossComponent:
    """One term an objective returns beside the total ``loss``: what the Trainer logs, the report plots and tells."""

    key: str
    """The name the objective returns it under."""
    label: str
    """What the training curves call it."""
    phrase: str
    """What the report's findings call it."""
    matches_teacher: bool
    """A term against the teacher's outputs (distillation), not the labels."""

    @property
    def logged(self) -> str:
        """Its name in the training history."""
        return f"{LOGGED_PREFIX}{self.key}"


CE = LossComponent("ce", "CE (vs. labels)", "CE", matches_teacher=False)
KD = LossComponent("kd", "KL to teacher (× T²)", "the KL term (× T²)", matches_teacher=True)
COS = LossComponent("cos", "1 − cosine to teacher [CLS]", "the cosine term (1 − cos)", matches_teacher=True)
HIDDEN = LossComponent("hidden", "hidden-state distance to teacher layers [CLS]",
                       "the hidden-state term (‖h_s − h_t‖² of unit [CLS] states)", matches_teacher=True)
LOSS_COMPONENTS: tuple[LossComponent, ...] = (CE, KD, COS, HIDDEN)
"""Every component an objective may return, in the order the training curves show them."""


def loss_component(key: str) -> LossComponent:
    """The declared component ``key``; an objective returning an undeclared one is a programming error."""
    for component in LOSS_COMPONENTS:
        if component.key == key:
            return component
    raise ValueError(f"loss component {key!r} is not declared in distilora.training.losses.LOSS_COMPONENTS")


def logged_components(history: Sequence[dict[str, Any]]) -> list[LossComponent]:
    """The components a training history holds values of, in declared order."""
    logged = {key for entry in history for key in entry}
    return [component for component in LOSS_COMPONENTS if component.logged in logged]


TEACHER_LOGITS = "teacher_logits"
TEACHER_CLS = "teacher_cls"
"""The teacher's final-layer [CLS] state."""
TEACHER_LAYER_CLS = "teacher_layer_cls"
"""The teacher's [CLS] state after the embeddings and after each layer: ``(batch, depth + 1, hidden)``."""


IGNORE_INDEX = -100
"""The label of a row that has none (a transfer text): it gets no CE term, only the teacher terms."""


def _cross_entropy(logits: torch.Tensor, labels: torch.Tensor, weights: torch.Tensor | None) -> torch.Tensor:
    """The (class-weighted) mean CE over the labelled rows; 0 for a batch without any. Multi-label rows (0/1 per
    label): the mean binary cross-entropy instead (:func:`_binary_cross_entropy`)."""
    if labels.ndim == 2:
        return _binary_cross_entropy(logits, labels, weights)
    weights = None if weights is None else weights.to(logits)
    total = F.cross_entropy(logits, labels, weight=weights, ignore_index=IGNORE_INDEX, reduction="sum")
    labelled = (labels != IGNORE_INDEX).to(logits.dtype)
    if weights is not None:
        labelled = labelled * weights[labels.clamp(min=0)]
    # Clamped, not branched on: no device sync per step, and 0 (with zero gradients) for a batch of transfer rows.
    return total / labelled.sum().clamp(min=torch.finfo(logits.dtype).tiny)


def _binary_cross_entropy(logits: torch.Tensor, labels: torch.Tensor, pos_weight: torch.Tensor | None
                          ) -> torch.Tensor:
    """Multi-label: the mean over labelled rows and labels of each label's BCE of ``sigmoid(logit)``, positives
    weighted by ``pos_weight`` (one per label; ``--class-weight balanced``); 0 for a batch of transfer rows."""
    labelled = (labels != IGNORE_INDEX).to(logits.dtype)
    targets = labels.clamp(min=0).to(logits.dtype)
    pos_weight = None if pos_weight is None else pos_weight.to(logits)
    total = (F.binary_cross_entropy_with_logits(logits, targets, pos_weight=pos_weight, reduction="none")
             * labelled).sum()
    return total / labelled.sum().clamp(min=torch.finfo(logits.dtype).tiny)


def row_weights(labels: torch.Tensor, transfer_weight: float) -> torch.Tensor:
    """Each row's weight in the teacher terms: 1 for a labelled row, ``transfer_weight`` for a transfer row."""
    unlabelled = labels == IGNORE_INDEX if labels.ndim == 1 else (labels == IGNORE_INDEX).all(dim=-1)
    ones = torch.ones(unlabelled.shape, dtype=torch.float32, device=labels.device)
    return torch.where(unlabelled, ones * transfer_weight, ones)


def softened_divergence(student_logits: torch.Tensor, teacher_logits: torch.Tensor, temperature: float,
                        multi_label: bool) -> torch.Tensor:
    """Per row: ``KL(softmax(t/T) ‖ softmax(s/T))`` over classes, or for independent labels the sum over labels of
    the Bernoulli ``KL(sigmoid(t/T) ‖ sigmoid(s/T))``."""
    student, teacher = student_logits / temperature, teacher_logits / temperature
    if not multi_label:
        return F.kl_div(F.log_softmax(student, dim=-1), F.log_softmax(teacher, dim=-1), reduction="none",
                        log_target=True).sum(dim=-1)
    # Both outcomes of each label: log σ(x) and log σ(−x) = log(1 − σ(x)).
    log_student = torch.stack([F.logsigmoid(student), F.logsigmoid(-student)], dim=-1)
    log_teacher = torch.stack([F.logsigmoid(teacher), F.logsigmoid(-teacher)], dim=-1)
    return F.kl_div(log_student, log_teacher, reduction="none", log_target=True).sum(dim=(-2, -1))


def _weighted_mean(values: torch.Tensor, weights: torch.Tensor | None) -> torch.Tensor:
    if weights is None:
        return values.mean()
    weights = weights.to(values)
    return (values * weights).sum() / weights.sum()


def hidden_matching_loss(student_states: Sequence[torch.Tensor], teacher_states: torch.Tensor,
                         layer_map: Sequence[int], weights: torch.Tensor | None = None) -> torch.Tensor:
    """Patient KD: ``mean_j ‖norm(h_s[j]) − norm(h_t[m(j)])‖²`` over the [CLS] states, batch-averaged.

    ``student_states[j]`` is the student's [CLS] after its layer ``j`` (1-based; 0 is the embeddings),
    ``teacher_states[:, i]`` the teacher's after its layer ``i``, and ``layer_map[j - 1]`` the teacher layer the
    student's layer ``j`` was copied from. For unit vectors the squared distance is ``2 − 2·cos``. ``weights``: each
    row's weight in the mean (:func:`row_weights`).
    """
    terms = []
    for j, teacher_layer in enumerate(layer_map, start=1):
        s = F.normalize(student_states[j], dim=-1)
        t = F.normalize(teacher_states[:, teacher_layer].to(s.dtype), dim=-1)
        terms.append(_weighted_mean((s - t).pow(2).sum(dim=-1), weights))
    return torch.stack(terms).mean()


def distillation_loss(
    student_logits: torch.Tensor,
    teacher_logits: torch.Tensor,
    labels: torch.Tensor,
    student_cls: torch.Tensor,
    teacher_cls: torch.Tensor,
    config: DistillationConfig,
    class_weights: torch.Tensor | None = None,
    weights: torch.Tensor | None = None,
) -> dict[str, torch.Tensor]:
    """``w_ce·CE(s, y) + w_kd·T²·KL(softmax(t/T) ‖ softmax(s/T)) + w_cos·(1 − cos(h_t, h_s))``, batch-averaged.

    CE is the mean over the labelled rows (label :data:`IGNORE_INDEX`: none); the teacher terms are means over every
    row, weighted by ``weights`` (:func:`row_weights`; None: alike). Multi-label ``labels`` (0/1 rows): BCE, and the
    per-label Bernoulli KL summed over labels (:func:`softened_divergence`).
    """
    temperature = config.temperature
    ce = _cross_entropy(student_logits, labels, class_weights)
    divergence = softened_divergence(student_logits, teacher_logits, temperature, multi_label=labels.ndim == 2)
    kd = _weighted_mean(divergence, weights) * temperature**2
    cos = _weighted_mean(1 - F.cosine_similarity(student_cls, teacher_cls, dim=-1), weights)
    total = config.w_ce * ce + config.w_kd * kd + config.w_cos * cos
    return {"loss": total, CE.key: ce, KD.key: kd, COS.key: cos}


class Objective(Protocol):
    """``objective(outputs, labels, teacher_targets)`` → ``{"loss": total, component: value, …}``."""

    wants_hidden_states: bool

    def __call__(self, outputs: Any, labels: torch.Tensor, teacher: dict[str, torch.Tensor]
                 ) -> dict[str, torch.Tensor]: ...


@dataclass
class CrossEntropyObjective:
    """Supervised training on the labels alone (teacher, LoRA, the no-teacher student)."""

    class_weights: torch.Tensor | None = None
    wants_hidden_states = False

    def __call__(self, outputs, labels: torch.Tensor, teacher: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        return {"loss": _cross_entropy(outputs.logits, labels, self.class_weights)}


@dataclass
class DistillationObjective:
    """Match the teacher's logits and final [CLS] state, and with ``w_hidden`` > 0 its intermediate [CLS] states.
    Falls back to CE where no teacher targets are in the batch, so validation loss is the same for every model.

    ``layer_map[j - 1]`` is the teacher layer the model's layer ``j`` comes from (needed only for ``w_hidden``).
    Rows labelled :data:`IGNORE_INDEX` (transfer texts) get the teacher terms only, weighted ``transfer_weight``.
    """

    config: DistillationConfig
    layer_map: Sequence[int] | None = None
    class_weights: torch.Tensor | None = None
    transfer_weight: float = 1.0
    wants_hidden_states = True

    def __post_init__(self) -> None:
        if self.config.w_hidden > 0 and not self.layer_map:
            raise ValueError("w_hidden > 0 needs the map from the model's layers to the teacher's")

    def __call__(self, outputs, labels: torch.Tensor, teacher: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        if TEACHER_LOGITS not in teacher:
            return {"loss": _cross_entropy(outputs.logits, labels, self.class_weights)}
        student_cls = outputs.hidden_states[-1][:, 0]
        weights = row_weights(labels, self.transfer_weight)
        losses = distillation_loss(outputs.logits, teacher[TEACHER_LOGITS].to(outputs.logits.dtype), labels,
                                   student_cls, teacher[TEACHER_CLS].to(student_cls.dtype), self.config,
                                   self.class_weights, weights)
        if self.config.w_hidden > 0:
            states = [h[:, 0] for h in outputs.hidden_states]
            losses[HIDDEN.key] = hidden_matching_loss(states, teacher[TEACHER_LAYER_CLS], self.layer_map, weights)
            losses["loss"] = losses["loss"] + self.config.w_hidden * losses[HIDDEN.key]
        return losses
