"""Long-tail and label-noise tools (chapter 01_data, "Long tail and label noise").

* :func:`make_long_tailed` subsamples to the exponential profile of Cui et al. (2019,
  "Class-Balanced Loss Based on Effective Number of Samples", Sec. 5):
  ``n_c = n_max * ratio ** (-rank_c / (K - 1))``, so the head class keeps ``n_max`` and the
  tail class ``n_max / ratio``.
* :func:`flip_labels` is the symmetric-noise protocol of SCN / RUL / EAC (reference-facts,
  "Label noise protocol"): exactly ``round(rate * N)`` samples get a uniformly random
  *different* class; the clean labels are kept for evaluation. :func:`add_label_noise` is the
  form the experiments use (rate 0 is a no-op; a validation split can drop its clean labels).
* :func:`class_balanced_sampler` draws every class with probability 1/K
  (:class:`torch.utils.data.WeightedRandomSampler` with weights ``1 / n_y``).
* :func:`stratified_split` and :func:`stratified_cap` keep class proportions
  (:func:`sklearn.model_selection.train_test_split`).
"""
from __future__ import annotations

import numpy as np
import torch
from torch.utils.data import WeightedRandomSampler

from .dataset import FaceDataset

__all__ = ["long_tail_counts", "make_long_tailed", "flip_labels", "add_label_noise",
           "class_balanced_sampler", "stratified_split", "stratified_cap"]


def long_tail_counts(n_max: int, num_classes: int, imbalance_ratio: float) -> np.ndarray:
    """Exponential profile ``n_r = floor(n_max * ratio ** (-r / (K - 1)))`` for ranks r = 0..K-1."""
    if imbalance_ratio < 1:
        raise ValueError(f"imbalance_ratio must be >= 1 (head / tail), got {imbalance_ratio}")
    if num_classes < 1:
        raise ValueError(f"num_classes must be >= 1, got {num_classes}")
    r = np.arange(num_classes)
    expo = r / (num_classes - 1) if num_classes > 1 else r * 0.0
    # the small epsilon keeps exact powers (e.g. 1000 / 10 = 100) from flooring to 99
    return np.maximum(np.floor(n_max * float(imbalance_ratio) ** (-expo) + 1e-9), 1).astype(np.int64)


def make_long_tailed(ds: FaceDataset, imbalance_ratio: float, seed: int = 0, order=None,
                     n_max: int | None = None) -> FaceDataset:
    """Subsample ``ds`` so class counts follow ``n_max * ratio^(-rank/(K-1))``.

    ``order`` lists class indices (or names) from head to tail; by default classes are ranked by
    their current count (largest first, ties by index). ``n_max`` defaults to the largest head
    size whose whole profile fits the available images (the head's count for a balanced set).
    An explicit ``n_max`` that some class cannot fill is an error naming the class.
    """
    counts = ds.class_counts()
    k = ds.num_classes
    if order is None:
        order = np.lexsort((np.arange(k), -counts))
    else:
        order = np.asarray([ds.class_names.index(c) if isinstance(c, str) else int(c) for c in order])
        if sorted(order.tolist()) != list(range(k)):
            raise ValueError(f"order must be a permutation of the {k} classes, got {order.tolist()}")
    if n_max is None:
        # the largest head size whose whole profile fits the available images
        expo = np.arange(k) / (k - 1) if k > 1 else np.zeros(k)
        fit = counts[order] * float(imbalance_ratio) ** expo + 1e-9
        n_max = int(min(counts[order[0]], np.floor(fit.min())))
    n_max = int(n_max)
    target = np.zeros(k, np.int64)
    target[order] = long_tail_counts(n_max, k, imbalance_ratio)
    short = [(ds.class_names[c], int(counts[c]), int(target[c])) for c in range(k) if counts[c] < target[c]]
    if short:
        raise ValueError("make_long_tailed: not enough images for " + ", ".join(
            f"{name} (has {have}, needs {need})" for name, have, need in short))
    rng = np.random.default_rng(seed)
    keep = [rng.choice(np.flatnonzero(ds.labels == c), size=target[c], replace=False) for c in range(k)]
    idx = np.sort(np.concatenate(keep))
    return ds.subset(idx)


def flip_labels(ds: FaceDataset, rate: float, seed: int = 0) -> FaceDataset:
    """Symmetric label noise: exactly ``round(rate * N)`` samples, chosen uniformly, get a
    uniformly random class different from their own. The returned dataset keeps the clean
    labels in ``clean_labels`` and the flipped positions in ``extras['flipped']``.
    """
    if not 0 <= rate <= 1:
        raise ValueError(f"flip_labels: rate must be in [0, 1], got {rate}")
    k = ds.num_classes
    if k < 2 and rate > 0:
        raise ValueError("flip_labels: need at least 2 classes to flip labels")
    clean = ds.labels if ds.clean_labels is None else ds.clean_labels
    n = len(ds)
    n_flip = int(round(rate * n))
    rng = np.random.default_rng(seed)
    idx = rng.choice(n, size=n_flip, replace=False)
    noisy = ds.labels.copy()
    # an offset in 1..K-1 added modulo K gives every other class with probability 1/(K-1)
    noisy[idx] = (noisy[idx] + rng.integers(1, k, size=n_flip)) % k
    flipped = np.zeros(n, bool)
    flipped[idx] = True
    extras = dict(ds.extras)
    extras["flipped"] = flipped
    return FaceDataset(ds.images, noisy, ds.class_names, ds.name, ds.split, clean.copy(), extras)


def add_label_noise(ds: FaceDataset, rate: float, seed: int = 0,
                    keep_clean: bool = True) -> FaceDataset:
    """:func:`flip_labels` as the SCN / EAN experiments apply it (a fixed share ``rate`` of
    samples gets a uniformly random different class); ``rate`` 0 returns ``ds`` itself.
    ``keep_clean=False`` drops the clean labels, so evaluation on the result scores the noisy
    labels (a realistic validation split for model selection)."""
    if rate == 0:
        return ds
    noisy = flip_labels(ds, rate, seed)
    if keep_clean:
        return noisy
    return FaceDataset(noisy.images, noisy.labels, noisy.class_names, noisy.name, noisy.split,
                       None, dict(noisy.extras))


def class_balanced_sampler(labels, num_samples: int | None = None, seed: int = 0) -> WeightedRandomSampler:
    """Sampler drawing (with replacement) every class with probability 1/K: weights ``1/n_y``.

    ``labels``: array-like or a :class:`FaceDataset`. ``num_samples`` defaults to N.
    """
    if isinstance(labels, FaceDataset):
        labels = labels.labels
    labels = np.asarray(labels, dtype=np.int64)
    if labels.ndim != 1 or len(labels) == 0:
        raise ValueError(f"class_balanced_sampler: labels must be a non-empty 1-D array, got shape {labels.shape}")
    if labels.min() < 0:
        raise ValueError(f"class_balanced_sampler: negative label at row {int(labels.argmin())}")
    counts = np.bincount(labels)
    weights = torch.from_numpy(1.0 / counts[labels])  # (N,)
    gen = torch.Generator().manual_seed(int(seed))
    return WeightedRandomSampler(weights, int(num_samples or len(labels)), replacement=True, generator=gen)


def stratified_split(ds: FaceDataset, fraction: float, seed: int = 0) -> tuple[FaceDataset, FaceDataset]:
    """Split off a stratified share ``fraction`` of ``ds``: returns ``(rest, held)``.

    ``held`` has split name ``"val"``. A class too small to appear in both parts is kept in
    ``rest`` only when stratification is impossible (sklearn then raises; we explain).
    """
    from sklearn.model_selection import train_test_split
    if not 0 < fraction < 1:
        raise ValueError(f"stratified_split: fraction must be in (0, 1), got {fraction}")
    idx = np.arange(len(ds))
    try:
        rest, held = train_test_split(idx, test_size=fraction, random_state=seed, stratify=ds.labels)
    except ValueError as e:
        raise ValueError(f"stratified_split of {ds.name}/{ds.split} (N={len(ds)}, counts "
                         f"{ds.class_counts().tolist()}) with fraction {fraction}: {e}") from None
    return ds.subset(np.sort(rest)), ds.subset(np.sort(held), split="val")


def stratified_cap(ds: FaceDataset, n: int | None, seed: int = 0) -> FaceDataset:
    """At most ``n`` samples of ``ds`` keeping class proportions (``ds`` itself when it is
    already small enough or ``n`` is None)."""
    if n is None or len(ds) <= n:
        return ds
    if n < 1:
        raise ValueError(f"stratified_cap: n must be >= 1, got {n}")
    from sklearn.model_selection import train_test_split
    idx = np.arange(len(ds))
    counts = ds.class_counts()
    present = counts[counts > 0]
    stratify = ds.labels if (n >= len(present) and present.min() >= 2 and len(ds) - n >= len(present)) else None
    _, keep = train_test_split(idx, test_size=int(n), random_state=seed, stratify=stratify)
    return ds.subset(np.sort(keep))
