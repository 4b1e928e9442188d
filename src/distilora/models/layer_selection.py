"""Which teacher layers a student keeps: fixed strategies, and greedy importance-based elimination."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from distilora.models.students import LayerSpecError

FIXED_STRATEGIES = ("odd", "even", "first", "last")


def fixed_layers(strategy: str, teacher_depth: int, student_depth: int) -> list[int]:
    """``odd`` / ``even`` (every other layer, whatever ``student_depth``), ``first`` (layers 1..k: drop the top),
    ``last`` (the top k: drop the bottom)."""
    if strategy in ("odd", "even"):
        layers = list(range(1 if strategy == "odd" else 2, teacher_depth + 1, 2))
    elif strategy == "first":
        layers = list(range(1, student_depth + 1))
    elif strategy == "last":
        layers = list(range(teacher_depth - student_depth + 1, teacher_depth + 1))
    else:
        raise LayerSpecError(f"unknown layer strategy {strategy!r}; choose from {', '.join(FIXED_STRATEGIES)}, "
                             "importance, or list teacher layers such as 1,3,5")
    if not layers:
        raise LayerSpecError(f"a {teacher_depth}-layer teacher has no {strategy} layers")
    return layers


Score = Callable[[list[int]], tuple[float, float]]
"""The ``(validation loss, validation macro-F1)`` of the teacher keeping only these layers."""


def greedy_layer_elimination(teacher_depth: int, keep: int, score: Score) -> tuple[list[int], list[dict[str, Any]]]:
    """Backward elimination: repeatedly drop the layer whose removal costs least (lowest loss; ties: higher
    macro-F1, then the later layer's position in the list) until ``keep`` layers remain.

    Returns the kept layers (in order) and every step's scores: ``{"kept", "candidates", "removed"}``.
    """
    if not 1 <= keep < teacher_depth:
        raise LayerSpecError(f"cannot keep {keep} of {teacher_depth} layers")
    kept = list(range(1, teacher_depth + 1))
    steps = []
    while len(kept) > keep:
        candidates = []
        for layer in kept:
            loss, macro_f1 = score([n for n in kept if n != layer])
            candidates.append({"layer": layer, "loss": float(loss), "macro_f1": float(macro_f1)})
        removed = min(candidates, key=lambda c: (c["loss"], -c["macro_f1"]))["layer"]
        steps.append({"kept": list(kept), "candidates": candidates, "removed": removed})
        kept.remove(removed)
    return kept, steps
