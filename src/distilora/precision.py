"""Numeric precision of training and inference: ``fp32``, ``bf16`` or ``auto`` (bf16 where the hardware has it).

bf16 is used the way ``transformers.Trainer`` / accelerate use it: autocast around the forward pass only, with fp32
weights, gradients and optimizer state, and outputs cast back to fp32. It is used only where the hardware computes
bf16 natively (CPUs with AVX512-BF16 or AMX-BF16, Arm CPUs with BF16, CUDA GPUs that support it); elsewhere it
would be emulated and slower than fp32, so ``bf16`` is refused there and ``auto`` picks fp32.
"""

from __future__ import annotations

import contextlib
import platform
from functools import cache
from pathlib import Path
from typing import Any

import torch

from distilora.config import PRECISIONS, check_precision

FP32, BF16, AUTO = PRECISIONS
NATIVE_BF16_FLAGS = frozenset({"avx512_bf16", "amx_bf16", "bf16"})
"""CPU flags (``/proc/cpuinfo``) of native bf16 arithmetic: x86 AVX512-BF16 and AMX-BF16, Arm BF16."""
RECORDED_FLAG_PREFIXES = ("avx", "amx", "fma", "f16c", "bf16", "vnni", "sve", "asimd", "i8mm")
"""The CPU flags recorded with results (the ones that decide matmul speed in fp32, bf16 and int8)."""


@cache
def _cpuinfo(*keys: str) -> str | None:
    """The value of the first ``/proc/cpuinfo`` line whose key is one of ``keys``; None where there is none."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return None
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key.strip() in keys:
            return value.strip()
    return None


def cpu_flags() -> frozenset[str]:
    """The CPU's feature flags from ``/proc/cpuinfo`` (x86 ``flags``, Arm ``Features``); empty where unreadable."""
    return frozenset((_cpuinfo("flags", "Features") or "").split())


def recorded_cpu_flags() -> list[str]:
    """The flags worth keeping with a measurement (vector and matrix extensions), sorted."""
    return sorted(flag for flag in cpu_flags() if flag.startswith(RECORDED_FLAG_PREFIXES))


def cpu_has_native_bf16() -> bool:
    """Whether this CPU computes bf16 natively: torch's own check, or the flags in ``/proc/cpuinfo``.

    Not ``torch.ops.mkldnn._is_mkldnn_bf16_supported()``: that is also true on plain AVX512 CPUs, where oneDNN
    emulates bf16.
    """
    if not torch.backends.mkldnn.is_available():
        return False
    torch_check = getattr(torch.cpu, "_is_avx512_bf16_supported", None)
    with contextlib.suppress(RuntimeError):
        if torch_check is not None and torch_check():
            return True
    return bool(cpu_flags() & NATIVE_BF16_FLAGS)


def native_bf16(device_type: str) -> bool:
    """Whether ``device_type`` (``cpu``, ``cuda``) computes bf16 natively."""
    if device_type == "cuda":
        return torch.cuda.is_available() and torch.cuda.is_bf16_supported(including_emulation=False)
    if device_type == "cpu":
        return cpu_has_native_bf16()
    return False


def default_device_type() -> str:
    return "cuda" if torch.cuda.is_available() else "cpu"


def resolve_precision(requested: str, device_type: str | None = None) -> str:
    """``fp32`` or ``bf16`` for ``requested`` on ``device_type``: ``auto`` is bf16 exactly where it is native.

    ``bf16`` on hardware without native bf16 is refused (a ValueError saying what to use instead), never emulated.
    """
    check_precision(requested)
    device_type = device_type or default_device_type()
    if requested == FP32:
        return FP32
    native = native_bf16(device_type)
    if requested == AUTO:
        return BF16 if native else FP32
    if not native:
        where = (f"this CPU ({cpu_name()}) has no native bf16 (no avx512_bf16, amx_bf16 or bf16 flag)"
                 if device_type == "cpu" else f"this {device_type} device has no native bf16")
        raise ValueError(f"--precision bf16: {where}, so bf16 would be emulated and slower than fp32; "
                         "use --precision fp32 or auto")
    return BF16


def autocast(precision: str, device_type: str) -> contextlib.AbstractContextManager:
    """``torch.autocast`` to bf16 on ``device_type`` for ``bf16``; nothing for ``fp32``. Wrap the forward pass only.

    ``precision`` is a resolved one (:func:`resolve_precision`), not ``auto``.
    """
    if precision == BF16:
        return torch.autocast(device_type=device_type, dtype=torch.bfloat16)
    if precision != FP32:
        raise ValueError(f"precision {precision!r}: resolve it first (fp32 or bf16)")
    return contextlib.nullcontext()


def cpu_name() -> str:
    """The CPU's model name (``/proc/cpuinfo``), or what the platform says."""
    return _cpuinfo("model name") or platform.processor() or platform.machine()


def precision_report(requested: str, resolved: str, device_type: str) -> dict[str, Any]:
    """What results.json records about precision: asked, used, on what, and the hardware's bf16 support."""
    return {"requested": requested, "resolved": resolved, "device": device_type,
            "native_bf16": native_bf16(device_type), "cpu": cpu_name(), "cpu_flags": recorded_cpu_flags()}
