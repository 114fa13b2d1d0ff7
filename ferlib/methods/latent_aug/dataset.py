"""Latent augmentation of training batches (Li et al., "balanced mixed data"; chapter
notebooks/04_latent_covariance_augmentation, "Table I: none, balanced resampling, latent
augmentation").

The paper samples class-balanced batches and mixes original and generated images, half of each
batch generated (an augmented share of 0.5). Here ``aug_ratio`` (default 0.5, the paper's) is
**the share of each sampled batch whose images are replaced** by decoded latent augmentations of themselves: for a batch of B
images, ``round(aug_ratio * B)`` rows chosen at random keep their labels and get
``G(z')``, ``z' ~ N(mu(x), s Sigma_y)`` (:mod:`ferlib.methods.latent_aug.latent`). With
``sampler="balanced"`` in ``ferlib.train.fit`` every class is drawn equally often, so minority
images are seen more often and, through the replacement, in new variants.

The paper's "training trick": the last epochs use original data only
(``clean_epochs_from``: from that epoch on, counted from 1 as ``ferlib.train.fit`` does, no
replacement; :func:`clean_epochs_from` converts "the last k of E epochs").

The control :class:`MatchedResampling` (record method ``balanced:matched``) replaces the same
rows of the same batches (:func:`replacement_rows`, its own generator) by real training images
of the row's class, drawn with replacement (:func:`resample_batch`): the same number of extra
draws per class as the latent augmentation, with real images instead of generated ones.
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from ferlib.methods.latent_aug.latent import ClassLatentStats

__all__ = ["augment_batch", "LatentAugmentation", "clean_epochs_from", "replacement_rows",
           "resample_batch", "BatchReplacement", "MatchedResampling"]


def clean_epochs_from(epochs: int, clean_last: int) -> int | None:
    """First epoch (1-based, as ``ferlib.train.fit`` counts) of the last ``clean_last`` of
    ``epochs`` epochs; None when ``clean_last`` is 0 (augment every epoch)."""
    if clean_last < 0 or clean_last > epochs:
        raise ValueError(f"clean_last must be in 0..epochs={epochs}, got {clean_last}")
    return None if clean_last == 0 else epochs - clean_last + 1


def replacement_rows(x: torch.Tensor, y: torch.Tensor, present, aug_ratio: float = 0.5,
                     generator: torch.Generator | None = None) -> torch.Tensor:
    """The rows of a batch x (B, C, H, W), y (B,) to replace: ``round(aug_ratio * B)`` rows in a
    random order drawn from ``generator``, skipping rows whose class is not ``present`` (a bool
    per class). Returns a CPU bool mask (B,). Shared by :func:`augment_batch` and
    :func:`resample_batch`, so both replace the same rows for the same generator state."""
    if not 0.0 <= aug_ratio <= 1.0:
        raise ValueError(f"aug_ratio must be in [0, 1], got {aug_ratio}")
    if x.ndim != 4 or y.shape != (x.shape[0],):
        raise ValueError(f"a batch must be x (B, C, H, W) and y (B,), got {tuple(x.shape)} and {tuple(y.shape)}")
    B = x.shape[0]
    m = int(round(aug_ratio * B))
    mask = torch.zeros(B, dtype=torch.bool)
    if m == 0:
        return mask
    gdev = generator.device if generator is not None else torch.device("cpu")
    order = torch.randperm(B, generator=generator, device=gdev).cpu()     # (B,)
    present = torch.as_tensor(np.asarray(present), dtype=torch.bool)[y.cpu()]
    mask[order[present[order]][:m]] = True                                  # (<=m rows)
    return mask


@torch.no_grad()
def augment_batch(vaegan, stats: ClassLatentStats, x: torch.Tensor, y: torch.Tensor, *,
                  s: float = 1.0, aug_ratio: float = 0.5, generator: torch.Generator | None = None,
                  method: str = "correct", draw_generator: torch.Generator | None = None
                  ) -> tuple[torch.Tensor, torch.Tensor]:
    """Replace ``round(aug_ratio * B)`` random rows of x (B, C, H, W) by ``G(z')`` with
    ``z' ~ N(mu(x_i), s Sigma_{y_i})``; labels are unchanged. Rows whose class has no statistics
    (``stats.present`` False) are kept. The rows come from ``generator``
    (:func:`replacement_rows`), the latent noise from ``draw_generator`` (default: the same
    generator). Returns (x_new, replaced mask (B,) bool).
    The VAE-GAN is run in eval mode (BatchNorm running statistics)."""
    mask = replacement_rows(x, y, stats.present, aug_ratio, generator)
    if not mask.any():
        return x, mask.to(x.device)
    was = vaegan.training
    vaegan.eval()
    sub = x[mask.to(x.device)]                                               # (m, C, H, W)
    mu = vaegan.encode(sub.float())[0].float()                               # (m, d)
    z = stats.sample(mu, y[mask.to(y.device)].cpu(), s=s, n=1, method=method,
                     generator=generator if draw_generator is None else draw_generator)[:, 0]  # (m, d)
    x_new = x.clone()
    x_new[mask.to(x.device)] = vaegan.decode(z).to(x.dtype)                 # (m, C, H, W)
    vaegan.train(was)
    return x_new, mask.to(x.device)


@torch.no_grad()
def resample_batch(pool, x: torch.Tensor, y: torch.Tensor, *, present=None, aug_ratio: float = 0.5,
                   generator: torch.Generator | None = None,
                   draw_generator: torch.Generator | None = None, augment=None
                   ) -> tuple[torch.Tensor, torch.Tensor]:
    """The balanced-resampling control of :func:`augment_batch`: the rows it would replace
    (:func:`replacement_rows`, same ``generator``) get real images of their own class from
    ``pool`` (a dataset with ``labels`` and ``pool[i] -> (image, label)``, the training split),
    drawn uniformly with replacement by ``draw_generator`` (default: ``generator``) and passed
    through ``augment`` (the training augmentation the loader's images got) if given. Labels are
    unchanged. ``present``: the classes that may be replaced (default: all in ``pool``).
    Returns (x_new, replaced mask (B,) bool)."""
    labels = np.asarray(pool.labels)
    k = max(int(labels.max()), int(y.max()) if len(y) else 0) + 1
    k = k if present is None else max(k, len(present))
    counts = np.bincount(labels, minlength=k)                                # (k,)
    ok = counts > 0                                  # a class with no pool image cannot be re-drawn
    if present is not None:
        ok[:len(present)] &= np.asarray(present, dtype=bool)
        ok[len(present):] = False
    mask = replacement_rows(x, y, ok, aug_ratio, generator)
    if not mask.any():
        return x, mask.to(x.device)
    rows_y = y.cpu()[mask].numpy()                                           # (m,)
    order = np.argsort(labels, kind="stable")                                # pool rows by class
    start = np.concatenate([[0], np.cumsum(counts)[:-1]])
    u = torch.rand(len(rows_y), generator=generator if draw_generator is None else draw_generator,
                   dtype=torch.float64).numpy()
    picks = order[start[rows_y] + np.minimum((u * counts[rows_y]).astype(np.int64), counts[rows_y] - 1)]
    drawn = torch.stack([pool[int(i)][0] for i in picks])                   # (m, C, H, W)
    if augment is not None:
        drawn = augment(drawn)
    x_new = x.clone()
    x_new[mask.to(x.device)] = drawn.to(x.device, x.dtype)
    return x_new, mask.to(x.device)


class BatchReplacement:
    """A ``loss_fn(model, x, y, epoch, **kw) -> (loss, logits)`` for ``ferlib.train.fit`` that
    replaces part of each batch (:meth:`replace`) and then applies ``base_loss`` (cross-entropy
    by default, or e.g. :func:`ferlib.methods.dan.model.dan_loss_fn`).

    ``clean_epochs_from``: epochs with index >= this train on original data only (the paper's
    training trick); None = replace in every epoch. ``seed`` seeds two generators: ``generator``
    picks the rows (:func:`replacement_rows`), ``draw_generator`` what replaces them, so two
    subclasses with the same seed replace the same rows of the same batches.
    ``replaced_per_class`` counts the replaced rows of each class, ``seen`` all rows.
    """

    def __init__(self, num_classes: int, aug_ratio: float = 0.5,
                 clean_epochs_from: int | None = None, base_loss=None, seed: int = 0):
        if not 0.0 <= aug_ratio <= 1.0:
            raise ValueError(f"aug_ratio must be in [0, 1], got {aug_ratio}")
        self.aug_ratio = float(aug_ratio)
        self.clean_epochs_from = clean_epochs_from
        self.base_loss = base_loss
        self.generator = torch.Generator().manual_seed(seed)
        self.draw_generator = torch.Generator().manual_seed(seed + 1)
        self.replaced_per_class = np.zeros(int(num_classes), dtype=np.int64)
        self.seen = 0

    @property
    def replaced(self) -> int:
        """Rows replaced so far."""
        return int(self.replaced_per_class.sum())

    def replace(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        raise NotImplementedError

    def state_dict(self) -> dict:
        """Checkpointed by ``ferlib.train.fit`` so a resumed run draws the same replacements."""
        return {"generator": self.generator.get_state(),
                "draw_generator": self.draw_generator.get_state(),
                "replaced_per_class": self.replaced_per_class.tolist(), "seen": self.seen}

    def load_state_dict(self, state: dict) -> None:
        self.generator.set_state(state["generator"])
        if "draw_generator" in state:        # checkpoints before the split into two generators
            self.draw_generator.set_state(state["draw_generator"])
        if "replaced_per_class" in state:
            self.replaced_per_class = np.asarray(state["replaced_per_class"], dtype=np.int64)
        self.seen = int(state["seen"])

    def augments_in(self, epoch: int) -> bool:
        return self.aug_ratio > 0 and (self.clean_epochs_from is None or epoch < self.clean_epochs_from)

    def __call__(self, model, x, y, epoch, **kw):
        if self.augments_in(epoch):
            x, mask = self.replace(x, y)
            self.replaced_per_class += np.bincount(y[mask].cpu().numpy(),
                                                   minlength=len(self.replaced_per_class))
        self.seen += len(y)
        if self.base_loss is not None:
            return self.base_loss(model, x, y, epoch, **kw)
        logits = model(x)                                                    # (B, K)
        return F.cross_entropy(logits, y), logits


class LatentAugmentation(BatchReplacement):
    """:class:`BatchReplacement` by latent augmentations (:func:`augment_batch`), Li et al.'s
    balanced mixed data. The VAE-GAN is frozen and moved to the batch's device on first use.
    """

    def __init__(self, vaegan: nn.Module, stats: ClassLatentStats, s: float = 1.0,
                 aug_ratio: float = 0.5, clean_epochs_from: int | None = None,
                 method: str = "correct", base_loss=None, seed: int = 0):
        from ferlib.methods.latent_aug.latent import check_strength

        self.s = check_strength(s)
        if stats.latent_dim != vaegan.latent_dim:
            raise ValueError(f"latent dimension mismatch: statistics have d={stats.latent_dim}, "
                             f"the VAE-GAN has d={vaegan.latent_dim}")
        super().__init__(stats.num_classes, aug_ratio, clean_epochs_from, base_loss, seed)
        self.vaegan = vaegan.eval().requires_grad_(False)
        self.stats = stats
        self.method = method

    def replace(self, x, y):
        if next(self.vaegan.parameters()).device != x.device:
            self.vaegan.to(x.device)
            self.stats.to(x.device)
        return augment_batch(self.vaegan, self.stats, x, y, s=self.s, aug_ratio=self.aug_ratio,
                             generator=self.generator, method=self.method,
                             draw_generator=self.draw_generator)


class MatchedResampling(BatchReplacement):
    """The control of :class:`LatentAugmentation`: the same rows replaced (same ``seed``,
    ``aug_ratio``, ``present`` classes and schedule), by real images of the row's class drawn with
    replacement from ``pool`` (:func:`resample_batch`) instead of generated ones, so both
    training sets hold the same number of draws per class. In distribution a re-drawn image is
    what the class-balanced sampler draws anyway; what makes this the control is that everything
    else (draws per class, recipe, the clean last epochs) is that of the latent run.
    ``augment``: the training augmentation of the loader (``ferlib.train.augment.make_augment``),
    applied to the re-drawn images. See notebooks/04_latent_covariance_augmentation,
    "Table I: none, balanced resampling, latent augmentation".
    """

    def __init__(self, pool, present=None, aug_ratio: float = 0.5,
                 clean_epochs_from: int | None = None, base_loss=None, seed: int = 0,
                 augment=None):
        if not hasattr(pool, "labels") or len(pool) == 0:
            raise ValueError("pool must be a non-empty dataset with labels (the training split)")
        k = int(np.asarray(pool.labels).max()) + 1 if present is None else len(present)
        super().__init__(k, aug_ratio, clean_epochs_from, base_loss, seed)
        self.pool, self.present, self.augment = pool, present, augment

    def replace(self, x, y):
        return resample_batch(self.pool, x, y, present=self.present, aug_ratio=self.aug_ratio,
                              generator=self.generator, draw_generator=self.draw_generator,
                              augment=self.augment)
