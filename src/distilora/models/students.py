"""Build a shallower student from selected encoder layers of a fine-tuned teacher."""

from __future__ import annotations

import copy
import re

import torch
from transformers import AutoModelForSequenceClassification, PreTrainedModel

from distilora.models.architectures import depth_attribute, encoder_depth, layer_list_candidates


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
    """State-dict prefix of the encoder's layer list (``bert.encoder.layer`` for BERT, see ``ARCHITECTURES``)."""
    depth = encoder_depth(model.config)
    model_type = getattr(model.config, "model_type", "") or "unknown"
    where = "distilora.models.architectures.ARCHITECTURES"
    if depth is None:
        raise LayerSpecError(
            f"{type(model).__name__} (model type {model_type!r}): its config has no {depth_attribute(model.config)}; "
            f"add its layer-list path and depth attribute to {where}"
        )
    modules = dict(model.named_modules())
    for name in layer_list_candidates(model):
        if isinstance(modules.get(name), torch.nn.ModuleList) and len(modules[name]) == depth:
            return name
    for name, module in modules.items():
        if isinstance(module, torch.nn.ModuleList) and len(module) == depth and name.endswith("layer"):
            return name
    raise LayerSpecError(
        f"{type(model).__name__} (model type {model_type!r}): could not find its list of {depth} encoder layers; "
        f"add its layer-list path and depth attribute to {where}"
    )


def build_student(teacher: PreTrainedModel, layers: list[int]) -> PreTrainedModel:
    """A model with ``len(layers)`` layers: embeddings, the chosen layers in order, pooler and head from ``teacher``."""
    prefix = encoder_layers_prefix(teacher)
    config = copy.deepcopy(teacher.config)
    setattr(config, depth_attribute(config), len(layers))
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
