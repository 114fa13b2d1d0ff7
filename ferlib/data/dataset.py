"""The in-memory face dataset every loader returns (chapter 01_data).

Images are kept as one uint8 array, so a 28,709-image FER2013 split is 66 MB and indexing
is cheap; ``__getitem__`` scales to float in [0, 1]. Labels follow the canonical order of
:mod:`ferlib.data.labels`; ``class_names`` lists the classes the dataset uses (index i of
``class_names`` is label i).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch
from torch.utils.data import Dataset

__all__ = ["FaceDataset"]


@dataclass
class FaceDataset(Dataset):
    """Images (N, H, W) grey or (N, H, W, 3) RGB, uint8; labels (N,) int64.

    ``clean_labels`` is set when labels were flipped (:func:`ferlib.data.flip_labels`), so
    evaluation can use the true classes. ``extras`` holds per-sample arrays of length N
    (SynthFACS: ``au`` (N, n_aus), ``identity`` (N,), ``pose`` (N, 2), ...).
    """

    images: np.ndarray
    labels: np.ndarray
    class_names: tuple[str, ...]
    name: str = "unnamed"
    split: str = "train"
    clean_labels: np.ndarray | None = None
    extras: dict[str, np.ndarray] = field(default_factory=dict)

    def __post_init__(self):
        self.images = np.asarray(self.images)
        self.labels = np.asarray(self.labels, dtype=np.int64)
        self.class_names = tuple(self.class_names)
        if self.images.dtype != np.uint8:
            raise TypeError(f"{self.name}/{self.split}: images must be uint8, got {self.images.dtype}")
        if self.images.ndim not in (3, 4):
            raise ValueError(f"{self.name}/{self.split}: images must be (N,H,W) or (N,H,W,C), "
                             f"got shape {self.images.shape}")
        n = len(self.images)
        if self.labels.shape != (n,):
            raise ValueError(f"{self.name}/{self.split}: {n} images but labels of shape {self.labels.shape}")
        if n and (self.labels.min() < 0 or self.labels.max() >= len(self.class_names)):
            bad = int(np.flatnonzero((self.labels < 0) | (self.labels >= len(self.class_names)))[0])
            raise ValueError(f"{self.name}/{self.split}: label {self.labels[bad]} at row {bad} is "
                             f"outside 0..{len(self.class_names) - 1}")
        for key, arr in self.extras.items():
            if len(arr) != n:
                raise ValueError(f"{self.name}/{self.split}: extras[{key!r}] has {len(arr)} rows, expected {n}")

    # --- torch Dataset -------------------------------------------------------------
    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i):
        img = torch.from_numpy(np.ascontiguousarray(self.images[i])).float().div_(255.0)
        img = img.unsqueeze(0) if img.ndim == 2 else img.permute(2, 0, 1)  # (C, H, W)
        return img, int(self.labels[i])

    # --- helpers -------------------------------------------------------------------
    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    @property
    def in_channels(self) -> int:
        return 1 if self.images.ndim == 3 else self.images.shape[-1]

    @property
    def image_size(self) -> tuple[int, int]:
        return tuple(self.images.shape[1:3])

    def tensors(self) -> tuple[torch.Tensor, torch.Tensor]:
        """All images as one float tensor (N, C, H, W) in [0, 1] and the labels (N,)."""
        x = torch.from_numpy(self.images).float().div_(255.0)
        x = x.unsqueeze(1) if x.ndim == 3 else x.permute(0, 3, 1, 2)
        return x, torch.from_numpy(self.labels)

    def class_counts(self) -> np.ndarray:
        return np.bincount(self.labels, minlength=self.num_classes)

    def subset(self, indices, split: str | None = None) -> "FaceDataset":
        idx = np.asarray(indices, dtype=np.int64)
        return FaceDataset(
            self.images[idx], self.labels[idx], self.class_names, self.name,
            split or self.split,
            None if self.clean_labels is None else self.clean_labels[idx],
            {k: v[idx] for k, v in self.extras.items()})

    def summary(self):
        """Per-class counts and shares as a pandas table (one row per class, plus the total)."""
        import pandas as pd
        counts = self.class_counts()
        df = pd.DataFrame({"class": list(self.class_names), "count": counts,
                           "share": counts / max(counts.sum(), 1)})
        total = pd.DataFrame({"class": ["total"], "count": [counts.sum()], "share": [1.0]})
        out = pd.concat([df, total], ignore_index=True)
        out.attrs["title"] = f"{self.name} / {self.split}"
        return out

    def __repr__(self) -> str:
        counts = ", ".join(f"{c}={n}" for c, n in zip(self.class_names, self.class_counts()))
        return (f"FaceDataset({self.name}/{self.split}: {len(self)} images "
                f"{'x'.join(map(str, self.images.shape[1:]))}; {counts})")
