"""Data-parallel training with ``torchrun`` (see notebooks/02_baseline, "The training engine").

:func:`ferlib.train.fit` notices an initialised process group and trains data-parallel by
itself, so chapters need no changes:

* ``batch_size`` stays the GLOBAL batch: each of the W processes loads ``batch_size / W``
  (it must divide) and gradients are averaged over the processes, so the optimiser sees the
  same mean gradient as one process with the whole batch;
* the sample order of every epoch is one global permutation (or one global class-balanced
  draw, :class:`~ferlib.train.samplers.DistributedClassBalancedSampler`) seeded by
  ``(seed, epoch)`` and dealt out round-robin (:class:`torch.utils.data.DistributedSampler`),
  so the union of the ranks' k-th batches is the single-process k-th batch;
* the default cross-entropy loss runs through :class:`~torch.nn.parallel.DistributedDataParallel`
  (bucketed all-reduce overlapped with backward); a custom ``loss_fn`` may call model methods
  other than ``forward`` (``forward_features``, heads), which DDP cannot see, so for those the
  engine averages the gradients with one flat all-reduce after ``backward`` instead;
* rank 0 evaluates, selects the epoch, writes checkpoints and records; every rank returns the
  same :class:`~ferlib.train.FitResult` (rank 0's result and best weights are broadcast).

Checkpoints under torchrun: rank 0 writes ``checkpoint_dir/last.pt`` and every rank reads it
to resume, so on several machines ``checkpoint_dir`` must be on a shared file system; restart
the same torchrun command to resume.

What differs from one process: BatchNorm normalises each rank's share of the batch with that
share's statistics (running statistics are rank 0's), and summation order changes rounding.
Without BatchNorm a 2-process run matches the single-process run to float rounding
(``tests/test_train_ddp.py``); with BatchNorm expect small differences, as with any DDP run.

Commands
--------
One machine, all its GPUs (NCCL)::

    torchrun --standalone --nproc_per_node=gpu -m ferlib.methods.baseline \\
        --dataset fer2013 --data-root ../shared/data/fer2013 --profile full --out book/records/full

Several machines (run on each node; ``--node_rank`` 0..N-1, the same rendezvous endpoint =
host:port of node 0, reachable from all nodes)::

    torchrun --nnodes=2 --nproc_per_node=8 --node_rank=$NODE_RANK \\
        --rdzv_backend=c10d --rdzv_endpoint=$MASTER_HOST:29500 --rdzv_id=ferlib-fer2013 \\
        -m ferlib.methods.baseline --dataset fer2013 --data-root /data/fer2013 --profile full \\
        --out records/full

CPU only, 2 processes (gloo; what the test does)::

    torchrun --standalone --nproc_per_node=2 -m ferlib.methods.baseline --dataset synthfacs \\
        --profile smoke --device cpu --out /tmp/ddp_smoke
"""
from __future__ import annotations

import os
from contextlib import contextmanager

import torch
import torch.distributed as dist

from ferlib.config import resolve_device

__all__ = ["init_distributed", "cleanup_distributed", "distributed", "is_main_process",
           "world_info", "torchrun_env_present"]


def torchrun_env_present() -> bool:
    """True when launched by torchrun (RANK and WORLD_SIZE are set)."""
    return "RANK" in os.environ and "WORLD_SIZE" in os.environ


def world_info() -> tuple[int, int]:
    """(world size, rank): (1, 0) without a process group."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_world_size(), dist.get_rank()
    return 1, 0


def is_main_process() -> bool:
    return world_info()[1] == 0


def init_distributed(device: str | torch.device = "auto") -> tuple[int, int]:
    """Initialise the process group from torchrun's environment; returns (world size, rank).

    Backend NCCL when ``device`` resolves to CUDA (each process takes GPU ``LOCAL_RANK``),
    gloo on the CPU. Without torchrun's variables, or with WORLD_SIZE 1, nothing happens.
    """
    if dist.is_available() and dist.is_initialized():
        return world_info()
    if not torchrun_env_present() or int(os.environ["WORLD_SIZE"]) <= 1:
        return 1, 0
    if not dist.is_available():
        raise RuntimeError("torch.distributed is not available in this torch build")
    dev = resolve_device(device)
    if dev.type == "cuda":
        local = int(os.environ.get("LOCAL_RANK", 0))
        if local >= torch.cuda.device_count():
            raise ValueError(f"LOCAL_RANK {local} but only {torch.cuda.device_count()} GPUs are visible; "
                             "use --nproc_per_node=gpu")
        torch.cuda.set_device(local)
        dist.init_process_group("nccl", device_id=torch.device("cuda", local))
    else:
        dist.init_process_group("gloo")
    return world_info()


def cleanup_distributed() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()


@contextmanager
def distributed(device: str | torch.device = "auto"):
    """``with distributed(device) as (world, rank): ...`` -- init from torchrun's env, clean up."""
    info = init_distributed(device)
    try:
        yield info
    finally:
        cleanup_distributed()
