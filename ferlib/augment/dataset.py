"""Latent augmentation of training batches (Li et al., "balanced mixed data"; chapter
notebooks/04_latent_covariance_augmentation, "Table I: none, balanced resampling, latent
augmentation").

The paper samples class-balanced batches and mixes original and generated images, half of each
batch generated (an augmented share of 0.5). Here ``aug_ratio`` (default 0.5, the paper's) is
**the share of each sampled batch whose images are replaced** by decoded latent augmentations of themselves: for a batch of B
images, ``round(aug_ratio * B)`` rows chosen at random keep their labels and get
``G(z')``, ``z' ~ N(mu(x), s Sigma_y)`` (:mod:`ferlib.augment.latent`). With
``sampler="balanced"`` in ``ferlib.train.fit`` every class is drawn equally often, so minority
images are seen more often and, through the replacement, in new variants.

The paper's "training trick": the last epochs use original data only
(``clean_epochs_from``: from that epoch on, counted from 1 as ``ferlib.train.fit`` does, no
replacement; :func:`clean_epochs_from` converts "the last k of E epochs").
"""
from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from ferlib.augment.latent import ClassLatentStats

__all__ = ["augment_batch", "LatentAugmentation", "clean_epochs_from"]


def clean_epochs_from(epochs: int, clean_last: int) -> int | None:
    """First epoch (1-based, as ``ferlib.train.fit`` counts) of the last ``clean_last`` of
    ``epochs`` epochs; None when ``clean_last`` is 0 (augment every epoch)."""
    if clean_last < 0 or clean_last > epochs:
        raise ValueError(f"clean_last must be in 0..epochs={epochs}, got {clean_last}")
    return None if clean_last == 0 else epochs - clean_last + 1


@torch.no_grad()
def augment_batch(vaegan, stats: ClassLatentStats, x: torch.Tensor, y: torch.Tensor, *,
                  s: float = 1.0, aug_ratio: float = 0.5, generator: torch.Generator | None = None,
                  method: str = "correct") -> tuple[torch.Tensor, torch.Tensor]:
    """Replace ``round(aug_ratio * B)`` random rows of x (B, C, H, W) by ``G(z')`` with
    ``z' ~ N(mu(x_i), s Sigma_{y_i})``; labels are unchanged. Rows whose class has no statistics
    (``stats.present`` False) are kept. Returns (x_new, replaced mask (B,) bool).
    The VAE-GAN is run in eval mode (BatchNorm running statistics)."""
    if not 0.0 <= aug_ratio <= 1.0:
        raise ValueError(f"aug_ratio must be in [0, 1], got {aug_ratio}")
    if x.ndim != 4 or y.shape != (x.shape[0],):
        raise ValueError(f"augment_batch expects x (B, C, H, W) and y (B,), got {tuple(x.shape)} and {tuple(y.shape)}")
    B = x.shape[0]
    m = int(round(aug_ratio * B))
    mask = torch.zeros(B, dtype=torch.bool)
    if m == 0:
        return x, mask.to(x.device)
    gdev = generator.device if generator is not None else torch.device("cpu")
    order = torch.randperm(B, generator=generator, device=gdev).cpu()     # (B,)
    present = torch.as_tensor(stats.present, dtype=torch.bool)[y.cpu()]
    chosen = order[present[order]][:m]                                       # (<=m,)
    mask[chosen] = True
    if not mask.any():
        return x, mask.to(x.device)
    was = vaegan.training
    vaegan.eval()
    sub = x[mask.to(x.device)]                                               # (m, C, H, W)
    mu = vaegan.encode(sub.float())[0].float()                               # (m, d)
    z = stats.sample(mu, y[mask.to(y.device)].cpu(), s=s, n=1, generator=generator, method=method)[:, 0]  # (m, d)
    x_new = x.clone()
    x_new[mask.to(x.device)] = vaegan.decode(z).to(x.dtype)                 # (m, C, H, W)
    vaegan.train(was)
    return x_new, mask.to(x.device)


class LatentAugmentation:
    """A ``loss_fn(model, x, y, epoch, **kw) -> (loss, logits)`` for ``ferlib.train.fit`` that
    replaces part of each batch with latent augmentations (:func:`augment_batch`) and then
    applies ``base_loss`` (cross-entropy by default, or e.g. :func:`ferlib.models.dan.dan_loss_fn`).

    ``clean_epochs_from``: epochs with index >= this train on original data only (the paper's
    training trick); None = augment in every epoch. The VAE-GAN is frozen and moved to the
    batch's device on first use. ``seed`` seeds the generator of rows and latent noise.
    """

    def __init__(self, vaegan: nn.Module, stats: ClassLatentStats, s: float = 1.0,
                 aug_ratio: float = 0.5, clean_epochs_from: int | None = None,
                 method: str = "correct", base_loss=None, seed: int = 0):
        from ferlib.augment.latent import check_strength

        self.s = check_strength(s)
        if not 0.0 <= aug_ratio <= 1.0:
            raise ValueError(f"aug_ratio must be in [0, 1], got {aug_ratio}")
        if stats.latent_dim != vaegan.latent_dim:
            raise ValueError(f"latent dimension mismatch: statistics have d={stats.latent_dim}, "
                             f"the VAE-GAN has d={vaegan.latent_dim}")
        self.vaegan = vaegan.eval().requires_grad_(False)
        self.stats = stats
        self.aug_ratio = float(aug_ratio)
        self.clean_epochs_from = clean_epochs_from
        self.method = method
        self.base_loss = base_loss
        self.generator = torch.Generator().manual_seed(seed)
        self.replaced = 0   # number of rows replaced so far
        self.seen = 0

    def state_dict(self) -> dict:
        """Checkpointed by ``ferlib.train.fit`` so a resumed run draws the same augmentations."""
        return {"generator": self.generator.get_state(), "replaced": self.replaced, "seen": self.seen}

    def load_state_dict(self, state: dict) -> None:
        self.generator.set_state(state["generator"])
        self.replaced, self.seen = int(state["replaced"]), int(state["seen"])

    def augments_in(self, epoch: int) -> bool:
        return self.aug_ratio > 0 and (self.clean_epochs_from is None or epoch < self.clean_epochs_from)

    def __call__(self, model, x, y, epoch, **kw):
        if self.augments_in(epoch):
            dev = x.device
            if next(self.vaegan.parameters()).device != dev:
                self.vaegan.to(dev)
                self.stats.to(dev)
            x, mask = augment_batch(self.vaegan, self.stats, x, y, s=self.s, aug_ratio=self.aug_ratio,
                                    generator=self.generator, method=self.method)
            self.replaced += int(mask.sum())
        self.seen += len(y)
        if self.base_loss is not None:
            return self.base_loss(model, x, y, epoch, **kw)
        logits = model(x)                                                    # (B, K)
        return F.cross_entropy(logits, y), logits
