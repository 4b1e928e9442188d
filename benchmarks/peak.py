"""The machine's fp32 matrix-multiply peak: the physical reference every achieved GFLOP/s is compared with."""

from __future__ import annotations

import statistics
import time

import torch


def synchronize(device: torch.device | str) -> None:
    """Wait for queued GPU work, so wall-clock timings are real (no-op on CPU)."""
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize()


def matmul_peak(size: int = 2048, repeats: int = 5, device: torch.device | str = "cpu",
                dtype: torch.dtype = torch.float32) -> dict[str, float]:
    """Best-of-``repeats`` GFLOP/s of ``torch.matmul`` on two ``size × size`` matrices (2·size³ FLOPs)."""
    generator = torch.Generator().manual_seed(0)
    a = torch.randn(size, size, generator=generator).to(device, dtype)
    b = torch.randn(size, size, generator=generator).to(device, dtype)
    out = torch.empty(size, size, device=device, dtype=dtype)
    torch.matmul(a, b, out=out)  # warm-up: thread pool, caches
    synchronize(device)
    seconds = []
    for _ in range(repeats):
        started = time.perf_counter()
        torch.matmul(a, b, out=out)
        synchronize(device)
        seconds.append(time.perf_counter() - started)
    flops = 2 * size**3
    return {
        "size": size,
        "repeats": repeats,
        "dtype": str(dtype).removeprefix("torch."),
        "threads": torch.get_num_threads(),
        "best_seconds": min(seconds),
        "gflops": flops / min(seconds) / 1e9,
        "median_gflops": flops / statistics.median(seconds) / 1e9,
    }


def best_peak(*measurements: dict[str, float]) -> dict:
    """The fastest of several peak measurements (e.g. at the start and end of the bench), with all of them kept.

    On a machine shared with other work one measurement can be far below the hardware's peak; the best one is
    the closest to the physical reference. ``spread`` (worst / best) shows how steady the machine was.
    """
    best = max(measurements, key=lambda m: m["gflops"])
    gflops = [m["gflops"] for m in measurements]
    return best | {"measurements_gflops": gflops, "spread": min(gflops) / max(gflops)}
