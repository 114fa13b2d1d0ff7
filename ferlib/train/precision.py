"""Which number format a training step runs in, chosen by what the processor can do (see
notebooks/02_baseline, "The cpu recipe").

On CUDA, mixed precision is float16 autocast with a gradient scaler. On a CPU, bfloat16 autocast
(with channels-last tensors) is 2-4x faster for small conv nets, but only where the processor has
bfloat16 matrix units (Intel AMX, AVX512-BF16 on Intel and recent AMD); elsewhere oneDNN emulates
bfloat16 and the step gets slower. ``precision="auto"`` therefore picks bfloat16 on a CPU only
when those units are present; ``tests/benchmarks/bench_backbones.py`` measures both side by side
and records the processor.
"""
from __future__ import annotations

import platform
from functools import lru_cache
from pathlib import Path

import torch

__all__ = ["PRECISIONS", "resolve_precision", "cpu_model", "cpu_has_bf16_units", "autocast_dtype"]

PRECISIONS = ("auto", "fp32", "bf16", "fp16")
_DTYPES = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}


@lru_cache(maxsize=1)
def cpu_model() -> str:
    """The processor's model name ("AMD EPYC", "Intel(R) Xeon(R) Platinum 8480+", ...)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown"


@lru_cache(maxsize=1)
def cpu_has_bf16_units() -> bool:
    """True when the CPU computes bfloat16 matrix products natively (AMX tiles or AVX512-BF16)."""
    cpu = getattr(torch._C, "_cpu", None)
    checks = ("_is_amx_tile_supported", "_is_avx512_bf16_supported")
    return any(bool(getattr(cpu, name)()) for name in checks if cpu is not None and hasattr(cpu, name))


def resolve_precision(precision: str, device: torch.device) -> str:
    """``auto`` -> "fp16" on CUDA, "bf16" on a CPU with bfloat16 units, else "fp32".

    An explicit choice is kept, except "fp16" on a CPU (no fast kernels there: an error)."""
    if precision not in PRECISIONS:
        raise ValueError(f"precision {precision!r}: choose one of {', '.join(PRECISIONS)}")
    if precision == "auto":
        if device.type == "cuda":
            return "fp16"
        return "bf16" if device.type == "cpu" and cpu_has_bf16_units() else "fp32"
    if precision == "fp16" and device.type == "cpu":
        raise ValueError("precision 'fp16' is for CUDA; on a CPU use 'bf16' or 'fp32'")
    return precision


def autocast_dtype(precision: str) -> torch.dtype | None:
    """The autocast dtype of a resolved precision (None: full float32)."""
    return _DTYPES[precision]
