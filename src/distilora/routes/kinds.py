"""The kinds of model a route makes, readable without torch: the report, the service and the checks need only this."""

from __future__ import annotations

from enum import StrEnum


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


class RouteError(ValueError):
    """An unknown route name, or a set of routes that cannot run together."""
