"""What a finished stage records beside its weights, and the fingerprint that decides whether it is reused."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any


def fingerprint(*parts: Any) -> str:
    """Stable hash of JSON-able parts (configs, hashes, names)."""
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:16]


@dataclass
class StageRecord:
    """What training a model produced, kept beside its weights."""

    name: str
    route: str
    fingerprint: str
    layers: list[int] | None = None
    seed: int | None = None
    train_loss: float | None = None
    train_loss_mean: float | None = None
    train_seconds: float | None = None
    trainable_params: int | None = None
    precision: str | None = None
    """``fp32`` / ``bf16`` the stage trained in; None: not trained by gradient, or trained before precisions existed
    (fp32)."""
    world_size: int | None = None
    """Processes that trained it together (torchrun); None: trained before this was recorded (1)."""
    history: list[dict[str, Any]] = field(default_factory=list)
    details: dict[str, Any] = field(default_factory=dict)
    """Route-specific facts (importance scores, the C a search chose, …), copied into results.json."""

    @property
    def best_validation_macro_f1(self) -> float | None:
        scores = [entry["eval_macro_f1"] for entry in self.history if "eval_macro_f1" in entry]
        return max(scores) if scores else None
