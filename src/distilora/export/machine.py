"""The CPU features that decide int8 / bf16 speed and int8 numerics, as recorded with exports and benchmarks."""

from __future__ import annotations

import platform
from pathlib import Path

CPU_FLAGS = ("avx2", "fma", "avx512f", "avx512bw", "avx512_vnni", "avx_vnni", "avx512_bf16", "amx_tile", "amx_bf16",
             "amx_int8")
"""x86 flags from /proc/cpuinfo: VNNI / AMX-INT8 run int8 matmuls natively (without them onnxruntime's u8·s8 kernels
can saturate, which ``reduce_range`` avoids); AVX512-BF16 / AMX-BF16 run bf16."""


def cpu_info(cpuinfo: Path = Path("/proc/cpuinfo")) -> dict:
    """``{"model": name, "flags": {flag: present}}`` for ``CPU_FLAGS`` (flags empty where /proc/cpuinfo is absent)."""
    model, flags = platform.processor() or platform.machine(), None
    try:
        for line in cpuinfo.read_text().splitlines():
            key, _, value = line.partition(":")
            if key.strip() == "model name" and model in ("", platform.processor() or platform.machine()):
                model = value.strip()
            elif key.strip() == "flags" and flags is None:
                flags = set(value.split())
    except OSError:
        pass
    return {"model": model, "flags": {flag: flag in flags for flag in CPU_FLAGS} if flags is not None else {}}
