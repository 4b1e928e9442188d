"""Build a shallower student from selected encoder layers of a fine-tuned teacher."""

from __future__ import annotations

import copy
import re

import torch
from transformers import AutoModelForSequenceClassification, PreTrainedModel


class LayerSpecError(ValueError):
    """A ``--layers`` value the teacher cannot provide."""


def parse_layer_spec(spec: str | list[int], num_teacher_layers: int) -> list[int]:
    """Turn ``odd``, ``even`` or ``"1,4,6"`` into 1-based teacher layer numbers, checked against the teacher."""
    if isinstance(spec, str):
        text = spec.strip().lower()
        if not text:
            raise LayerSpecError("empty layer spec: use odd, even or a comma-separated list such as 1,3,5")
        if text in ("odd", "even"):
            layers = list(range(1 if text == "odd" else 2, num_teacher_layers + 1, 2))
            if not layers:
                raise LayerSpecError(f"layer spec {spec!r}: a {num_teacher_layers}-layer teacher has no {text} layers")
            return layers
        try:
            layers = [int(part) for part in text.split(",")]
        except ValueError:
            raise LayerSpecError(
                f"layer spec {spec!r}: use odd, even or comma-separated 1-based layer numbers such as 1,3,5"
            ) from None
    else:
        layers = list(spec)
    if not layers:
        raise LayerSpecError("empty layer spec: select at least one teacher layer")
    bad = [n for n in layers if not 1 <= n <= num_teacher_layers]
    if bad:
        raise LayerSpecError(f"layer spec {spec!r}: layers {bad} do not exist; the teacher has 1..{num_teacher_layers}")
    if len(set(layers)) != len(layers):
        raise LayerSpecError(f"layer spec {spec!r}: a layer is selected twice")
    return layers


def student_name(spec: str) -> str:
    """``odd`` / ``even`` keep their name; an explicit list becomes ``layers-1-4-6``."""
    text = str(spec).strip().lower()
    return text if text in ("odd", "even") else "layers-" + "-".join(p.strip() for p in text.split(","))


def encoder_layers_prefix(model: PreTrainedModel) -> str:
    """State-dict prefix of the encoder's layer list (``bert.encoder.layer`` for BERT)."""
    depth = model.config.num_hidden_layers
    for name, module in model.named_modules():
        if isinstance(module, torch.nn.ModuleList) and len(module) == depth and name.endswith("layer"):
            return name
    raise LayerSpecError(f"{type(model).__name__}: could not find its list of {depth} encoder layers")


def build_student(teacher: PreTrainedModel, layers: list[int]) -> PreTrainedModel:
    """A model with ``len(layers)`` layers: embeddings, the chosen layers in order, pooler and head from ``teacher``."""
    prefix = encoder_layers_prefix(teacher)
    config = copy.deepcopy(teacher.config)
    config.num_hidden_layers = len(layers)
    student = AutoModelForSequenceClassification.from_config(config)
    source_index = {teacher_layer - 1: student_layer for student_layer, teacher_layer in enumerate(layers)}
    pattern = re.compile(rf"^{re.escape(prefix)}\.(\d+)\.(.*)$")
    state = {}
    for key, tensor in teacher.state_dict().items():
        match = pattern.match(key)
        if match is None:
            state[key] = tensor.clone()
        elif int(match.group(1)) in source_index:
            state[f"{prefix}.{source_index[int(match.group(1))]}.{match.group(2)}"] = tensor.clone()
    student.load_state_dict(state, strict=True)
    student.config.distilora_layers = list(layers)
    return student
