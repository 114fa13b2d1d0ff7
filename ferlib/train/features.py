"""Penultimate features of a dataset under a trained backbone, cached on disk
(used by notebooks/03_ahm_semantic_space, "The experiment", and
notebooks/05_adjacency_threshold_tuning, "Thresholds on real features").

The cache file is named by two SHA-256 digests: one of the model's ``state_dict`` (names,
dtypes, shapes and bytes of every tensor) and one of the dataset (images, labels and shape), so
a retrained backbone or a different split can never pick up stale features.
"""
from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
from torch.utils.data import SequentialSampler
from tqdm.auto import tqdm

from ferlib.config import resolve_device

__all__ = ["extract_features", "model_hash", "dataset_hash", "feature_cache_path"]


def model_hash(model: nn.Module) -> str:
    """SHA-256 of the model's state_dict: every tensor's name, dtype, shape and bytes."""
    from ferlib.train.engine import unwrap_model

    h = hashlib.sha256()
    for name, t in unwrap_model(model).state_dict().items():
        t = t.detach().cpu().contiguous()
        h.update(f"{name}|{t.dtype}|{tuple(t.shape)}|".encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()


def dataset_hash(dataset) -> str:
    """SHA-256 of a dataset's images and labels (needs ``.images`` and ``.labels`` arrays)."""
    images, labels = getattr(dataset, "images", None), getattr(dataset, "labels", None)
    if images is None or labels is None:
        raise TypeError(f"feature caching needs a dataset with .images and .labels arrays "
                        f"(a FaceDataset); got {type(dataset).__name__}")
    h = hashlib.sha256()
    for arr in (np.ascontiguousarray(images), np.ascontiguousarray(labels, dtype=np.int64)):
        h.update(f"{arr.dtype}|{arr.shape}|".encode())
        h.update(memoryview(arr).cast("B"))
    return h.hexdigest()


def feature_cache_path(model: nn.Module, dataset, cache_dir, tta_flip: bool = False) -> Path:
    """Where :func:`extract_features` caches this model's features of this dataset."""
    flip = "_flip" if tta_flip else ""
    return Path(cache_dir) / f"features_{model_hash(model)[:20]}_{dataset_hash(dataset)[:20]}{flip}.npz"


@torch.no_grad()
def extract_features(model: nn.Module, dataset, device: str | torch.device = "auto",
                     batch_size: int = 256, cache_dir=None, progress: bool = False,
                     tta_flip: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """``model.forward_features`` over ``dataset`` in eval mode -> (features (N, D) float32,
    labels (N,) int64, the dataset's ``labels`` as given).

    ``tta_flip`` averages the features of each image and of its mirror image: the feature-space
    counterpart of the flip averaging that :func:`ferlib.train.evaluate` applies to the
    classifier's probabilities, so that a head fitted on these features (AHM and its controls)
    is scored under the same evaluation as the backbone's own classifier.

    With ``cache_dir`` the result is stored as ``features_<model sha>_<data sha>.npz`` and a
    second call with the same weights and data loads it instead of running the model.
    """
    from ferlib.train.engine import make_loader, unwrap_model

    model = unwrap_model(model)
    if not hasattr(model, "forward_features"):
        raise TypeError(f"{type(model).__name__} has no forward_features(x) -> (B, D); "
                        "build it with ferlib.models.build_backbone")
    path = None
    if cache_dir is not None:
        path = feature_cache_path(model, dataset, cache_dir, tta_flip)
        if path.exists():
            with np.load(path) as f:
                return f["features"], f["labels"]
    dev = resolve_device(device)
    model.to(dev)
    was_training = model.training
    model.eval()
    feats, labels = [], []
    loader = make_loader(dataset, batch_size, SequentialSampler(range(len(dataset))),
                         pin_memory=dev.type == "cuda")
    try:
        for batch in tqdm(loader, desc="features", disable=not progress, leave=False):
            x = batch[0].to(dev, non_blocking=True)                     # (B, C, H, W)
            f = model.forward_features(x)                                # (B, D)
            if tta_flip:
                f = (f + model.forward_features(torch.flip(x, dims=[-1]))) / 2
            if f.ndim != 2:
                raise ValueError(f"forward_features must return (B, D); got shape {tuple(f.shape)}")
            feats.append(f.float().cpu())
            labels.append(torch.as_tensor(batch[1]))
    finally:
        model.train(was_training)
    features = torch.cat(feats).numpy().astype(np.float32, copy=False)  # (N, D)
    y = torch.cat(labels).numpy().astype(np.int64, copy=False)  # (N,)
    if not np.isfinite(features).all():
        raise FloatingPointError(f"non-finite features from {type(model).__name__} on {dataset!r}")
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.stem + f".tmp{os.getpid()}.npz")
        np.savez(tmp, features=features, labels=y)
        os.replace(tmp, path)
    return features, y
