"""Per-image augmentation of a training batch (see notebooks/02_baseline, "The cpu recipe").

The images stay uint8 in memory (:class:`ferlib.data.FaceDataset`); the engine reads a batch, and
:class:`BatchAugment` draws a fresh random crop from the reflect-padded image and a horizontal
flip for every image, as in the usual CIFAR/FER2013 recipes (e.g. Khaireddin & Chen 2021). It is
the same operation as torchvision's ``v2.RandomCrop(size, padding, padding_mode="reflect")``
followed by ``v2.RandomHorizontalFlip()`` applied image by image (a test checks this), done for
the whole batch with one gather: v2 draws one set of parameters per call, and calling it per
image cost 5-14 ms an image on the 2-core CPU, more than the training step itself. The draws use
torch's global generator, which :func:`ferlib.train.fit` seeds and checkpoints, so a resumed run
repeats an uninterrupted one.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

__all__ = ["AUGMENTS", "BatchAugment", "make_augment"]

AUGMENTS = ("none", "flip", "crop_flip")


class BatchAugment:
    """``BatchAugment("crop_flip", padding=4)(x)``: x (B, C, H, W) float -> a new (B, C, H, W)
    where image i is the (H, W) window at a random offset (0..2*padding in each direction) of its
    reflect-padded copy, mirrored left-right with probability 0.5. ``"flip"``: the flip only."""

    def __init__(self, name: str = "crop_flip", padding: int = 4):
        if name not in AUGMENTS or name == "none":
            raise ValueError(f"augment {name!r}: choose one of {', '.join(AUGMENTS)}")
        if isinstance(padding, bool) or not isinstance(padding, int) or padding < 0:
            raise ValueError(f"augment padding must be an int >= 0, got {padding!r}")
        self.name, self.padding = name, padding

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        if x.ndim != 4 or not x.is_floating_point():
            raise ValueError(f"BatchAugment expects a float batch (B, C, H, W), got "
                             f"{x.dtype} {tuple(x.shape)}")
        b, _, h, w = x.shape
        p = self.padding if self.name == "crop_flip" else 0
        if p >= min(h, w):
            raise ValueError(f"augment padding {p} must be smaller than the image ({h}x{w}) for reflection")
        xp = F.pad(x, (p, p, p, p), mode="reflect") if p else x  # (B, C, H+2p, W+2p)
        oy = torch.randint(0, 2 * p + 1, (b,))
        ox = torch.randint(0, 2 * p + 1, (b,))
        flip = torch.rand(b) < 0.5
        rows = oy[:, None] + torch.arange(h)  # (B, H)
        cols = ox[:, None] + torch.arange(w)  # (B, W)
        cols = torch.where(flip[:, None], cols.flip(1), cols)
        out = xp[torch.arange(b)[:, None, None], :, rows[:, :, None], cols[:, None, :]]  # (B, H, W, C)
        return out.permute(0, 3, 1, 2).contiguous()

    def __repr__(self) -> str:
        return f"BatchAugment({self.name!r}, padding={self.padding})"


def make_augment(name: str | None, padding: int = 4) -> BatchAugment | None:
    """None for "none" (or None), else a :class:`BatchAugment`."""
    if name is None or name == "none":
        return None
    return BatchAugment(name, padding)
