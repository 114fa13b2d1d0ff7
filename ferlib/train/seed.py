"""Seeding for reproducible runs (see notebooks/02_baseline, "The training engine").

``set_seed`` seeds Python's ``random``, NumPy's global generator and torch (CPU and all CUDA
devices) and asks cuDNN for deterministic kernels. On the CPU, with the same thread count, a
seeded run of :func:`ferlib.train.fit` is then bit-for-bit repeatable, which the resume test in
``tests/test_train_engine.py`` relies on. On CUDA, some kernels (atomic adds in scatter and
pooling backward) stay non-deterministic; runs agree only to a tolerance there.
"""
from __future__ import annotations

import random

import numpy as np
import torch

__all__ = ["set_seed", "get_rng_state", "set_rng_state"]


def set_seed(seed: int, deterministic: bool = True) -> None:
    """Seed ``random``, ``numpy`` and ``torch`` (CPU + CUDA) with ``seed``.

    ``deterministic`` turns on ``cudnn.deterministic`` and turns off ``cudnn.benchmark``
    (autotuning picks kernels by timing, which changes results run to run). It does not set
    thread counts: the machine is shared.
    """
    if not isinstance(seed, (int, np.integer)) or isinstance(seed, bool):
        raise TypeError(f"seed must be an int, got {type(seed).__name__} {seed!r}")
    seed = int(seed)
    if not 0 <= seed < 2**32:
        raise ValueError(f"seed must be in [0, 2**32), got {seed}")
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)  # also seeds every CUDA device
    if deterministic:
        torch.backends.cudnn.deterministic = True
        torch.backends.cudnn.benchmark = False


def get_rng_state() -> dict:
    """The global RNG states of Python, NumPy and torch, in a form ``torch.load(weights_only=True)``
    accepts (only tensors, tuples, ints and strings)."""
    np_state = np.random.get_state()
    state = {
        "python": random.getstate(),
        "numpy": (np_state[0], torch.from_numpy(np_state[1].astype(np.int64)),
                  int(np_state[2]), int(np_state[3]), float(np_state[4])),
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict) -> None:
    """Restore what :func:`get_rng_state` returned."""
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    name, keys, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((name, keys.numpy().astype(np.uint32), pos, has_gauss, cached))
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        cuda_states = state["cuda"]
        if len(cuda_states) == torch.cuda.device_count():
            torch.cuda.set_rng_state_all(cuda_states)
