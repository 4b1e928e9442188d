"""Time optimizer steps and count the tokens each one trained on, the same way for every training variant.

A global optimizer step post-hook stamps the end of every step; a forward pre-hook on the trained model records
each training batch's real (attention-mask) and padded token counts. Nothing in the code under test changes.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import torch
from torch.optim.optimizer import register_optimizer_step_post_hook

from benchmarks.peak import synchronize


@dataclass
class StepStats:
    """What the timed steps (after the warm-up) did."""

    steps: int
    seconds: float
    samples: int
    useful_tokens: int
    executed_tokens: int
    lengths: list[int] = field(repr=False)

    def to_dict(self) -> dict[str, float]:
        return {
            "steps": self.steps,
            "seconds": self.seconds,
            "samples": self.samples,
            "useful_tokens": self.useful_tokens,
            "executed_tokens": self.executed_tokens,
            "padding_fraction": 1 - self.useful_tokens / self.executed_tokens if self.executed_tokens else 0.0,
            "samples_per_s": self.samples / self.seconds,
            "useful_tokens_per_s": self.useful_tokens / self.seconds,
        }


class StepTimer:
    """``with StepTimer(model) as timer: train(model)`` then ``timer.stats(warmup=1)``."""

    def __init__(self, model: torch.nn.Module, device: torch.device | str = "cpu"):
        self.model = model
        self.device = device
        self.step_ends: list[float] = []
        self.batches: list[tuple[list[int], int]] = []
        self._handles: list = []

    def _on_forward(self, module: torch.nn.Module, args: tuple, kwargs: dict) -> None:
        if not module.training:
            return  # evaluation forwards are not training steps
        mask = kwargs.get("attention_mask")
        ids = kwargs.get("input_ids", args[0] if args else None)
        if mask is None:
            mask = torch.ones_like(ids)
        self.batches.append((mask.sum(dim=1).tolist(), int(mask.shape[1])))

    def _on_step(self, optimizer: torch.optim.Optimizer, args: tuple, kwargs: dict) -> None:
        synchronize(self.device)
        self.step_ends.append(time.perf_counter())

    def __enter__(self) -> StepTimer:
        self._handles = [
            register_optimizer_step_post_hook(self._on_step),
            self.model.register_forward_pre_hook(self._on_forward, with_kwargs=True),
        ]
        return self

    def __exit__(self, *exc_info) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles = []

    def stats(self, warmup: int = 1) -> StepStats:
        """Steps ``warmup+1 …``: from the end of the last warm-up step to the end of the last step."""
        if len(self.batches) != len(self.step_ends):
            raise RuntimeError(f"{len(self.batches)} training forwards but {len(self.step_ends)} optimizer steps: "
                               "the bench needs one forward per step (no gradient accumulation)")
        if warmup < 1:
            raise ValueError("the timed window starts at the end of a warm-up step: warmup must be >= 1")
        if len(self.step_ends) <= warmup:
            raise RuntimeError(f"only {len(self.step_ends)} steps ran; need more than the {warmup} warm-up step(s)")
        timed = self.batches[warmup:]
        lengths = [n for batch, _ in timed for n in batch]
        return StepStats(
            steps=len(timed),
            seconds=self.step_ends[-1] - self.step_ends[warmup - 1],
            samples=len(lengths),
            useful_tokens=sum(lengths),
            executed_tokens=sum(len(batch) * padded for batch, padded in timed),
            lengths=lengths,
        )
