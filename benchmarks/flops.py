"""Count the FLOPs of a BERT-family classifier from its shapes and the real (non-padding) token counts.

One multiply-add is 2 FLOPs. Per encoder layer, for a sequence of ``n`` real tokens (hidden ``h``,
intermediate ``i``):

* dense: ``n · 2·(4·h² + 2·h·i)`` — the Q, K, V and output projections (4·h²) and the two feed-forward
  matrices (2·h·i);
* attention: ``2·2·n²·h`` — ``Q·Kᵀ`` and ``softmax·V``, each ``n·n·h`` multiply-adds;
* LoRA adapters (unmerged only): ``n · 2·r·(in + out)`` per adapted projection;

plus, once per sequence, the pooler (``2·h²``) and the classifier (``2·h·labels``). Embedding look-ups,
layer norms, GELU, softmax, biases and residual adds are element-wise (O(n·h)) and not counted.

Training counts forward + backward: 3× forward for every trained weight matrix (forward, input gradient,
weight gradient) and for the weight-free attention products (two input gradients); a *frozen* weight matrix
(the LoRA base model) costs 2× forward (no weight gradient).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass

import torch

FLOP_METHOD = (
    "1 multiply-add = 2 FLOPs, counted on real (non-padding) tokens only. Per layer and sequence of n real tokens: "
    "dense n*2*(4h^2 + 2hi) + attention 2*2*n^2*h (+ LoRA n*2r(in+out) per unmerged adapter); per sequence "
    "pooler 2h^2 + classifier 2*h*labels; element-wise ops (embeddings, layer norm, GELU, softmax, biases) not "
    "counted. Training = forward + backward = 3x forward for trained weights and attention products, 2x forward "
    "for frozen weights (LoRA base). The teacher forward pass that the naive / plain-Trainer distillation runs "
    "on every step is not useful work and is not counted; distilora's one-off teacher-target pass is reported "
    "separately. Achieved GFLOP/s = useful FLOPs / measured seconds / 1e9; fraction = achieved / matmul peak."
)


@dataclass(frozen=True)
class ModelShape:
    """The shapes that decide a BERT classifier's FLOPs."""

    hidden: int
    intermediate: int
    layers: int
    num_labels: int
    lora_per_token: int = 0
    """FLOPs per token of every unmerged LoRA adapter of the model, all layers together."""

    @classmethod
    def of(cls, model: torch.nn.Module) -> ModelShape:
        """Read the shapes from ``model.config``; count unmerged LoRA adapters (PEFT) from the modules."""
        config = model.config
        lora = 0
        for module in model.modules():
            if hasattr(module, "lora_A") and hasattr(module, "r") and not getattr(module, "merged", False):
                for adapter, rank in module.r.items():
                    if adapter in module.lora_A:
                        lora += 2 * rank * (module.in_features + module.out_features)
        return cls(config.hidden_size, config.intermediate_size, config.num_hidden_layers, config.num_labels, lora)

    def to_dict(self) -> dict[str, int]:
        return asdict(self)


@dataclass(frozen=True)
class FlopCount:
    """Forward FLOPs split by kind, so training can weight trained and frozen parts differently."""

    dense: int
    attention: int
    adapters: int
    head: int

    @property
    def forward(self) -> int:
        return self.dense + self.attention + self.adapters + self.head

    def training(self, frozen_base: bool = False) -> int:
        """Forward + backward: 3× forward, but 2× for the dense weights of a frozen base model."""
        dense = 2 * self.dense if frozen_base else 3 * self.dense
        return dense + 3 * (self.attention + self.adapters + self.head)


def count_flops(shape: ModelShape, lengths: Iterable[int]) -> FlopCount:
    """FLOPs of one forward pass over sequences with these real token counts."""
    h, i, layers = shape.hidden, shape.intermediate, shape.layers
    tokens = squares = sequences = 0
    for n in lengths:
        tokens += n
        squares += n * n
        sequences += 1
    return FlopCount(
        dense=layers * tokens * 2 * (4 * h * h + 2 * h * i),
        attention=layers * 2 * 2 * squares * h,
        adapters=tokens * shape.lora_per_token,
        head=sequences * (2 * h * h + 2 * h * shape.num_labels),
    )


def forward_flops(shape: ModelShape, lengths: Iterable[int]) -> int:
    """FLOPs of one forward pass (see the module docstring)."""
    return count_flops(shape, lengths).forward


def training_flops(shape: ModelShape, lengths: Iterable[int], frozen_base: bool = False) -> int:
    """FLOPs of one training step (forward + backward) over these sequences."""
    return count_flops(shape, lengths).training(frozen_base)


def achieved(flops: int, seconds: float) -> dict[str, float]:
    """Useful GFLOP and achieved useful GFLOP/s (its fraction of the peak is added by :func:`add_fractions`)."""
    return {"useful_gflop": flops / 1e9, "useful_gflops_per_s": flops / seconds / 1e9}


def add_fractions(results: dict | list, peak_gflops: float) -> None:
    """Beside every ``useful_gflops_per_s`` in ``results`` (nested), set ``fraction_of_peak``."""
    items = results.values() if isinstance(results, dict) else results
    if isinstance(results, dict) and "useful_gflops_per_s" in results:
        results["fraction_of_peak"] = results["useful_gflops_per_s"] / peak_gflops
    for value in items:
        if isinstance(value, dict | list):
            add_fractions(value, peak_gflops)
