"""Training objectives. Each returns the total loss and its named components (logged at every logging step)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

import torch
import torch.nn.functional as F

from distilora.config import DistillationConfig

TEACHER_LOGITS = "teacher_logits"
TEACHER_CLS = "teacher_cls"


def distillation_loss(
    student_logits: torch.Tensor,
    teacher_logits: torch.Tensor,
    labels: torch.Tensor,
    student_cls: torch.Tensor,
    teacher_cls: torch.Tensor,
    config: DistillationConfig,
) -> dict[str, torch.Tensor]:
    """``w_ce·CE(s, y) + w_kd·T²·KL(softmax(t/T) ‖ softmax(s/T)) + w_cos·(1 − cos(h_t, h_s))``, batch-averaged."""
    temperature = config.temperature
    ce = F.cross_entropy(student_logits, labels)
    kd = F.kl_div(
        F.log_softmax(student_logits / temperature, dim=-1),
        F.log_softmax(teacher_logits / temperature, dim=-1),
        reduction="batchmean",
        log_target=True,
    ) * temperature**2
    cos = (1 - F.cosine_similarity(student_cls, teacher_cls, dim=-1)).mean()
    total = config.w_ce * ce + config.w_kd * kd + config.w_cos * cos
    return {"loss": total, "ce": ce, "kd": kd, "cos": cos}


class Objective(Protocol):
    """``objective(outputs, labels, teacher_targets)`` → ``{"loss": total, component: value, …}``."""

    def __call__(self, outputs: Any, labels: torch.Tensor, teacher: dict[str, torch.Tensor]
                 ) -> dict[str, torch.Tensor]: ...


@dataclass
class CrossEntropyObjective:
    """Plain supervised fine-tuning (teacher and LoRA routes)."""

    def __call__(self, outputs, labels: torch.Tensor, teacher: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        return {"loss": F.cross_entropy(outputs.logits, labels)}


@dataclass
class DistillationObjective:
    """Match the teacher's logits and final [CLS] state (student route). Falls back to CE where no teacher
    targets are in the batch, so validation loss is the same cross-entropy for every model."""

    config: DistillationConfig

    def __call__(self, outputs, labels: torch.Tensor, teacher: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        if TEACHER_LOGITS not in teacher:
            return {"loss": F.cross_entropy(outputs.logits, labels)}
        student_cls = outputs.hidden_states[-1][:, 0]
        return distillation_loss(outputs.logits, teacher[TEACHER_LOGITS].to(outputs.logits.dtype), labels,
                                 student_cls, teacher[TEACHER_CLS].to(student_cls.dtype), self.config)
