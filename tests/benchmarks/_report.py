"""What the benchmark scripts share: the line naming the machine, and printing / saving a result."""
from __future__ import annotations

import platform
from pathlib import Path

import torch

from ferlib.train.precision import cpu_model


def machine_line() -> str:
    """CPU, architecture, torch version and thread count (the benchmarks here run float32)."""
    return (f"CPU: {cpu_model()} ({platform.machine()}), torch {torch.__version__}, "
            f"{torch.get_num_threads()} threads, float32.")


def emit(text: str, out: str | None) -> None:
    """Print a result and, when ``out`` is given, write it there (the committed copy)."""
    print(text)
    if out:
        Path(out).write_text(text)
