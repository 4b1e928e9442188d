"""The bench's settings: the full sizes, the ``--quick`` sizes, and anything set explicitly."""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace

from distilora.config import DEFAULT_DATASET, DEFAULT_TEACHER

FULL = {"steps": 30, "batch_size": 32, "infer_samples": 512, "latency_samples": 100, "peak_size": 2048,
        "peak_repeats": 5}
QUICK = {"steps": 3, "batch_size": 16, "infer_samples": 128, "latency_samples": 12, "peak_size": 1024,
         "peak_repeats": 3}


@dataclass
class BenchConfig:
    """``None`` sizes take the full (or ``quick``) defaults; see :meth:`resolved`."""

    dataset: str = DEFAULT_DATASET
    output: str | None = "bench-results/bench.json"
    quick: bool = False
    run: str | None = None
    teacher: str = DEFAULT_TEACHER
    steps: int | None = None
    batch_size: int | None = None
    infer_samples: int | None = None
    latency_samples: int | None = None
    peak_size: int | None = None
    peak_repeats: int | None = None
    infer_batch_size: int = 64
    warmup_steps: int = 1
    max_length: int = 128
    threads: int | None = None
    seed: int = 42

    def resolved(self) -> BenchConfig:
        """A copy with every size filled in."""
        defaults = QUICK if self.quick else FULL
        return replace(self, **{k: v for k, v in defaults.items() if getattr(self, k) is None})

    @property
    def train_samples(self) -> int:
        """Warm-up plus timed steps, one batch each: every training variant sees exactly these texts."""
        return (self.warmup_steps + self.steps) * self.batch_size

    def to_dict(self) -> dict:
        return asdict(self)
