"""One entry point from a dataset name to train / val / test splits (chapter 01_data,
"The splits the chapters use").

``load_splits("synthfacs", profile="smoke")`` needs no files. Real datasets read from
``data_root`` (never downloaded). Protocol (reference-facts, "How published numbers are made"):
the model is selected on ``val`` and reported on ``test``; ``val`` is either a stratified 10 %
holdout of the training split (``val_split="holdout"``) or one of the dataset's own splits.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..config import Profile, get_profile
from .dataset import FaceDataset
from .longtail import stratified_cap, stratified_split

__all__ = ["Splits", "load_splits", "DATASETS", "DATASET_SPLITS", "HOLDOUT_FRACTION"]

#: dataset names :func:`load_splits` accepts
DATASETS = ("synthfacs", "fer2013", "ferplus", "rafdb", "affectnet", "sfew")
HOLDOUT_FRACTION = 0.10

# dataset -> (training split name, default evaluation split)
DATASET_SPLITS = {
    "fer2013": ("Training", "PublicTest"),
    "ferplus": ("Training", "PublicTest"),
    "rafdb": ("train", "test"),
    "affectnet": ("train", "val"),
    "sfew": ("train", "val"),
}


@dataclass
class Splits:
    """Train / validation / test :class:`FaceDataset` of one dataset under one protocol."""

    train: FaceDataset
    val: FaceDataset
    test: FaceDataset

    def __iter__(self):
        return iter((self.train, self.val, self.test))

    def summary(self):
        """Per-class counts of the three splits side by side (pandas)."""
        import pandas as pd
        cols = {name: getattr(self, name).class_counts() for name in ("train", "val", "test")}
        df = pd.DataFrame(cols, index=list(self.train.class_names))
        df.loc["total"] = df.sum()
        return df


def _resize(ds: FaceDataset, image_size: int | None, grayscale: bool) -> FaceDataset:
    """Grey and resized copy (PIL, bilinear) when the images differ from what is asked."""
    imgs = ds.images
    need_grey = grayscale and imgs.ndim == 4
    need_size = image_size is not None and imgs.shape[1:3] != (image_size, image_size)
    if not (need_grey or need_size):
        return ds
    from PIL import Image
    out = []
    for im in imgs:
        p = Image.fromarray(im)
        if need_grey:
            p = p.convert("L")
        if need_size:
            p = p.resize((image_size, image_size), Image.BILINEAR)
        out.append(np.asarray(p))
    return FaceDataset(np.stack(out) if out else np.zeros((0, image_size or imgs.shape[1],
                                                            image_size or imgs.shape[2]), np.uint8),
                       ds.labels, ds.class_names, ds.name, ds.split, ds.clean_labels, ds.extras)


def _load_real(dataset: str, data_root, progress: bool, image_size: int, grayscale: bool):
    if dataset == "fer2013":
        from .fer2013 import load_fer2013
        return load_fer2013(data_root, progress=progress)
    from . import folders
    from .ferplus import load_ferplus
    loader = {"ferplus": load_ferplus, "rafdb": folders.load_rafdb,
              "affectnet": folders.load_affectnet, "sfew": folders.load_sfew}[dataset]
    if dataset == "ferplus":
        return loader(data_root, progress=progress)
    return loader(data_root, image_size=image_size, grayscale=grayscale, progress=progress)


def load_splits(dataset: str, data_root=None, eval_split: str | None = None,
                val_split: str = "holdout", profile: str | Profile = "smoke", seed: int = 0,
                image_size: int | None = None, grayscale: bool = True,
                progress: bool = False) -> Splits:
    """Train / val / test splits of ``dataset`` (one of :data:`DATASETS`) sized by ``profile``.

    * ``synthfacs``: no files; ``make_synthfacs(profile.synth_train, profile.synth_test, seed)``.
      ``eval_split`` may name a nuisance condition ("frontal", "profile", "occluded", "dim", ...)
      to render the test split under it.
    * real datasets: ``data_root`` is the folder (or the FER2013 CSV file). ``eval_split``
      defaults to the dataset's public evaluation split (FER2013/FERPlus "PublicTest", RAF-DB
      "test", AffectNet and SFEW "val"). ``val_split="holdout"`` holds out a stratified 10 % of
      the training split; otherwise it names one of the dataset's splits (e.g. "PublicTest" when
      ``eval_split="PrivateTest"``). ``val_split == eval_split`` is an error: selecting and
      reporting on the same split inflates the result.
    * the profile caps ``real_train_cap`` / ``real_eval_cap`` subsample stratified with ``seed``.
    * real images are converted to grey (``grayscale``) and resized to ``image_size``
      (default ``profile.image_size``) so every backbone sees the same input.
    """
    prof = get_profile(profile)
    name = dataset.lower()
    if name not in DATASETS:
        raise ValueError(f"unknown dataset {dataset!r}: choose one of {', '.join(DATASETS)}")
    size = int(image_size or prof.image_size)
    if name == "synthfacs":
        from .synthfacs import CONDITIONS, make_synthfacs
        cond = eval_split or "default"
        if cond in ("test", "holdout"):
            cond = "default"
        if cond not in CONDITIONS:
            raise ValueError(f"synthfacs: eval_split must be None or a condition ({', '.join(CONDITIONS)}), "
                             f"got {eval_split!r}")
        if val_split not in ("holdout", "val"):
            raise ValueError(f"synthfacs: val_split must be 'holdout' (its own generated val split), got {val_split!r}")
        d = make_synthfacs(prof.synth_train, prof.synth_test, seed=seed, size=size,
                           test_condition=cond, progress=progress)
        return Splits(d["train"], d["val"], d["test"])

    if data_root is None:
        from .errors import missing_root_message
        raise FileNotFoundError(missing_root_message(name, None))
    parts = _load_real(name, data_root, progress, size, grayscale)
    train_name, default_eval = DATASET_SPLITS[name]
    if default_eval not in parts and "Test" in parts:   # FER2013 image folders: train/ and test/
        default_eval = "Test"
    eval_name = eval_split or default_eval
    available = ", ".join(parts)
    if eval_name not in parts:
        raise ValueError(f"{name}: eval_split {eval_name!r} is not in {data_root} (splits found: {available})")
    if val_split == eval_name:
        raise ValueError(f"{name}: val_split and eval_split are both {eval_name!r}; select on one split "
                         f"and report on another (e.g. val_split='holdout')")
    if eval_name == train_name:
        raise ValueError(f"{name}: eval_split {eval_name!r} is the training split")
    if train_name not in parts or len(parts[train_name]) == 0:
        source = getattr(parts, "source", None) or data_root
        raise ValueError(f"{name}: {source} has no {train_name!r} rows (splits found: {available}); "
                         f"the training split is needed")
    train = parts[train_name]
    if val_split == "holdout":
        train, val = stratified_split(train, HOLDOUT_FRACTION, seed=seed)
    elif val_split in parts and val_split != train_name:
        val = parts[val_split]
    else:
        raise ValueError(f"{name}: val_split must be 'holdout' or one of the evaluation splits "
                         f"({', '.join(s for s in parts if s != train_name)}), got {val_split!r}")
    test = parts[eval_name]
    train = stratified_cap(train, prof.real_train_cap, seed)
    val = stratified_cap(val, prof.real_eval_cap, seed)
    test = stratified_cap(test, prof.real_eval_cap, seed)
    train, val, test = (_resize(ds, size, grayscale) for ds in (train, val, test))
    return Splits(train, val, test)
