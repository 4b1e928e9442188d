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
    fields: dict[str, str] = {}
    try:
        for line in cpuinfo.read_text().splitlines():  # the first processor's lines are enough
            key, _, value = line.partition(":")
            fields.setdefault(key.strip(), value.strip())
    except OSError:
        pass
    flags = set(fields["flags"].split()) if "flags" in fields else None
    return {"model": fields.get("model name") or platform.processor() or platform.machine(),
            "flags": {flag: flag in flags for flag in CPU_FLAGS} if flags is not None else {}}
