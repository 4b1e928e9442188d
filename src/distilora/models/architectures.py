"""Per-architecture facts the layer surgery and LoRA need: where the encoder layers live, what attention is called."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import torch
from peft.utils.constants import TRANSFORMERS_MODELS_TO_LORA_TARGET_MODULES_MAPPING
from transformers import PretrainedConfig, PreTrainedModel


@dataclass(frozen=True)
class Architecture:
    """Where one encoder family keeps its layers, and its names for the attention projections."""

    layers: str
    """Path of the ``nn.ModuleList`` of encoder layers, relative to the base model (``model.base_model_prefix``)."""
    depth: str = "num_hidden_layers"
    """Config attribute holding the number of encoder layers."""
    attention: Mapping[str, str] = field(default_factory=dict)
    """Canonical name (``query``, ``key``, ``value``) -> this family's module name, where they differ."""


ARCHITECTURES: dict[str, Architecture] = {
    "bert": Architecture("encoder.layer"),
    "roberta": Architecture("encoder.layer"),
    "electra": Architecture("encoder.layer"),
    "mpnet": Architecture("encoder.layer", attention={"query": "q", "key": "k", "value": "v"}),
    "distilbert": Architecture(
        "transformer.layer", depth="n_layers", attention={"query": "q_lin", "key": "k_lin", "value": "v_lin"}
    ),
    "deberta-v2": Architecture(
        "encoder.layer", attention={"query": "query_proj", "key": "key_proj", "value": "value_proj"}
    ),
}
"""Known encoders by ``config.model_type``; others fall back to a search for a ``*layer`` list of the right length."""

CANONICAL_TARGETS = ("query", "key", "value")


def depth_attribute(config: PretrainedConfig) -> str:
    """Name of the config attribute that holds the number of encoder layers."""
    known = ARCHITECTURES.get(getattr(config, "model_type", ""))
    return known.depth if known else "num_hidden_layers"


def encoder_depth(config: PretrainedConfig) -> int | None:
    """Number of encoder layers the config declares, or ``None`` if it has no such field."""
    return getattr(config, depth_attribute(config), None)


def layer_list_candidates(model: PreTrainedModel) -> list[str]:
    """Module paths where the table says the layer list is (with and without the base-model prefix)."""
    known = ARCHITECTURES.get(getattr(model.config, "model_type", ""))
    if known is None:
        return []
    prefix = getattr(model, "base_model_prefix", "")
    return [f"{prefix}.{known.layers}", known.layers] if prefix else [known.layers]


def attention_names(model_type: str) -> dict[str, str]:
    """Canonical attention name -> module name for ``model_type``: the table, else PEFT's query/value default."""
    known = ARCHITECTURES.get(model_type)
    if known is not None:
        return {name: known.attention.get(name, name) for name in CANONICAL_TARGETS}
    peft_default = TRANSFORMERS_MODELS_TO_LORA_TARGET_MODULES_MAPPING.get(model_type) or []
    if len(peft_default) == 2:  # PEFT's default for most encoders: [query projection, value projection]
        return {"query": peft_default[0], "value": peft_default[1]}
    return {}


def _matches(module_names: Sequence[str], target: str) -> bool:
    """PEFT's rule for a string target: a module named exactly ``target`` or ending in ``.target``."""
    return any(name == target or name.endswith("." + target) for name in module_names)


def lora_target_modules(model: PreTrainedModel, requested: Sequence[str]) -> list[str]:
    """Translate ``query``/``key``/``value`` to this architecture's module names; names it already has pass through."""
    module_names = [name for name, _ in model.named_modules() if name]
    model_type = getattr(model.config, "model_type", "")
    mapping = attention_names(model_type)
    targets: list[str] = []
    for name in requested:
        target = name if _matches(module_names, name) else mapping.get(name, name)
        if not _matches(module_names, target):
            linear = sorted({n.rsplit(".", 1)[-1] for n, m in model.named_modules() if isinstance(m, torch.nn.Linear)})
            raise ValueError(
                f"LoRA target {name!r} matches no module of this {model_type or type(model).__name__} model; "
                f"use query, key, value or one of its linear modules: {', '.join(linear)}"
            )
        if target not in targets:
            targets.append(target)
    return targets
