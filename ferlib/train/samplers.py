"""Epoch-seeded samplers that shard across processes (see notebooks/02_baseline,
"The loss, the sampler and the metrics").

The engine draws every epoch's order from ``(seed, epoch)`` alone, so

* a resumed run needs no sampler state (epoch ``e`` gives the same order whether or not the
  run was interrupted before it), and
* a run on ``W`` processes sees the same global batches as a run on one process: rank ``r``
  takes every ``W``-th index of the one global order, so with a per-rank batch of ``B / W`` the
  union of the ranks' ``k``-th batches is the single process's ``k``-th batch of ``B``.

Shuffling uses :class:`torch.utils.data.DistributedSampler` (which works without a process
group when ``num_replicas`` and ``rank`` are given). Class-balanced sampling uses
:class:`DistributedClassBalancedSampler`: weights ``w_i = 1 / n_{y_i}`` (each class drawn
with probability ``1/K``, as :func:`ferlib.data.class_balanced_sampler`), one seeded weighted
draw with replacement per epoch, shared out between the ranks.
"""
from __future__ import annotations

import math

import numpy as np
import torch
from torch.utils.data import Sampler

__all__ = ["DistributedClassBalancedSampler", "class_balanced_weights"]


def class_balanced_weights(labels) -> torch.Tensor:
    """Per-sample weights ``1 / n_c`` for the sample's class ``c`` (float64, (N,)).

    Every class then has the same total weight, so a weighted draw picks each class with
    probability 1/K (K = number of classes present).
    """
    labels = np.asarray(labels)
    if labels.ndim != 1 or len(labels) == 0:
        raise ValueError(f"labels must be a non-empty 1-D array, got shape {labels.shape}")
    if labels.min() < 0:
        raise ValueError(f"labels must be >= 0, got {labels.min()} at row {int(labels.argmin())}")
    counts = np.bincount(labels)
    return torch.from_numpy(1.0 / counts[labels])  # (N,)


class DistributedClassBalancedSampler(Sampler[int]):
    """Class-balanced sampling with replacement, one seeded draw per epoch, sharded by rank.

    Each epoch draws ``num_samples`` indices (default: the dataset size) with probabilities
    proportional to ``1 / n_{y_i}`` from a generator seeded with ``seed + epoch``; the draw is
    padded to a multiple of ``num_replicas`` by repeating its head and rank ``r`` takes
    positions ``r, r + W, r + 2W, ...``. With ``num_replicas=1`` it is a plain seeded
    class-balanced sampler. Call :meth:`set_epoch` before each epoch (the engine does).
    """

    def __init__(self, labels, num_samples: int | None = None, seed: int = 0,
                 num_replicas: int = 1, rank: int = 0):
        self.weights = class_balanced_weights(labels)
        self.total = int(num_samples) if num_samples is not None else len(self.weights)
        if self.total <= 0:
            raise ValueError(f"num_samples must be positive, got {num_samples}")
        if num_replicas < 1 or not 0 <= rank < num_replicas:
            raise ValueError(f"rank {rank} is not in 0..num_replicas-1 = 0..{num_replicas - 1}")
        self.seed, self.num_replicas, self.rank = int(seed), int(num_replicas), int(rank)
        self.num_samples = math.ceil(self.total / self.num_replicas)  # per rank
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def global_order(self) -> torch.Tensor:
        """The whole epoch's draw, before sharding (the same on every rank)."""
        g = torch.Generator().manual_seed(self.seed + self.epoch)
        idx = torch.multinomial(self.weights, self.total, replacement=True, generator=g)  # (total,)
        pad = self.num_samples * self.num_replicas - self.total
        if pad:
            idx = torch.cat([idx, idx[:pad]])
        return idx

    def __iter__(self):
        return iter(self.global_order()[self.rank::self.num_replicas].tolist())

    def __len__(self) -> int:
        return self.num_samples
