"""The plain cross-entropy classifier every chapter compares against (notebooks/02_baseline).

``train_baseline`` trains the profile's backbone with cross-entropy, optionally with
class-balanced sampling, selects the epoch on the validation split, writes one results record
(method ``"baseline"`` or ``"baseline+balanced"``) and saves the backbone next to it, so later
chapters start from it (:func:`load_or_train_baseline`) instead of training again.
"""
from __future__ import annotations

import hashlib
import json
import os
import re
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

import torch
import torch.nn as nn

from ferlib.config import Profile, get_profile, given_or
from ferlib.train.engine import FitResult, fit
from ferlib.train.seed import set_seed

if TYPE_CHECKING:
    from ferlib.data.splits import Splits

__all__ = ["train_baseline", "load_or_train_baseline", "build_baseline_model", "baseline_method",
           "BaselineRun"]


class BaselineRun(NamedTuple):
    """What :func:`load_or_train_baseline` returns; ``result`` is None when reused from disk."""

    model: nn.Module
    record: dict
    record_path: Path | None
    checkpoint_path: Path | None
    result: FitResult | None


def baseline_method(balanced: bool) -> str:
    return "baseline+balanced" if balanced else "baseline"


def build_baseline_model(splits: Splits, profile: str | Profile = "smoke",
                         backbone: str | None = None) -> nn.Module:
    """The profile's backbone (or ``backbone``) sized for the splits' classes, channels and images."""
    from ferlib.models import build_backbone

    prof = get_profile(profile)
    train = splits.train
    return build_backbone(backbone or prof.backbone, num_classes=train.num_classes,
                          in_channels=train.in_channels, width=prof.width,
                          image_size=train.image_size[0], dropout=prof.dropout)


def _params(splits: Splits, prof: Profile, backbone: str, epochs: int, balanced: bool) -> dict:
    return {"profile": prof.name, "backbone": backbone, "width": prof.width,
            **prof.recipe(), "epochs": epochs, "balanced": bool(balanced), "sampler": "balanced" if balanced else "shuffle",
            "select_metric": "accuracy", "val_split": splits.val.split,
            "n_train": len(splits.train), "n_val": len(splits.val), "n_test": len(splits.test),
            "image_size": int(splits.train.image_size[0]), "in_channels": splits.train.in_channels}


def _run_name(method: str, dataset: str, split: str, params: dict, seed: int) -> str:
    """``<method>_<dataset>_<split>_<profile>_seed<seed>_<hash of params>``: the record is this +
    ``.json`` and the backbone this + ``.pt`` (a rerun with the same settings replaces both)."""
    from ferlib.records import to_jsonable

    key = json.dumps({"params": to_jsonable(params), "seed": seed}, sort_keys=True)
    digest = hashlib.sha1(key.encode()).hexdigest()[:8]
    stem = f"{method}_{dataset}_{split}_{params['profile']}_seed{seed}_{digest}"
    return re.sub(r"[^A-Za-z0-9.=-]+", "_", stem)


def train_baseline(splits: Splits, profile: str | Profile = "smoke",
                   device: str | torch.device = "auto", seed: int = 0, balanced: bool = False,
                   results_path: str | os.PathLike = "../_build/records", *,
                   backbone: str | None = None,
                   epochs: int | None = None, checkpoint_dir=None, progress: bool = True,
                   source: str | None = None) -> tuple[FitResult, Path | None, Path | None]:
    """Train the baseline on ``splits`` (train / val / test FaceDatasets, ferlib.data.load_splits).

    Returns ``(FitResult, record_path, checkpoint_path)``. The record
    (:func:`ferlib.train.recording.write_run_record`) holds the test metrics of the epoch
    selected on validation, the backbone's trainable parameters (params ``n_params``), and in
    ``extra`` the validation metrics, the last-5-epoch test mean, the best epoch, the history
    and the backbone file name; the backbone is saved with ferlib.models.save_backbone in
    ``results_path``. Under torchrun only rank 0 writes (the other ranks get ``None`` paths).
    ``checkpoint_dir`` makes the run resumable.
    """
    from ferlib.models import save_backbone
    from ferlib.train.ddp import is_main_process
    from ferlib.train.recording import FIT_FIELDS, write_run_record

    prof = get_profile(profile)
    bb = backbone or prof.backbone
    n_epochs = given_or(epochs, prof.epochs, "epochs")
    set_seed(seed)  # the initial weights depend on the seed only
    model = build_baseline_model(splits, prof, bb)
    result = fit(model, splits.train, splits.val, test_set=splits.test,
                 **prof.fit_options(n_epochs), sampler="balanced" if balanced else None,
                 device=device, seed=seed, checkpoint_dir=checkpoint_dir, progress=progress)
    if not is_main_process():
        return result, None, None
    method = baseline_method(balanced)
    dataset, split = splits.train.name, splits.test.split
    folder = Path(results_path)
    folder.mkdir(parents=True, exist_ok=True)
    params = _params(splits, prof, bb, n_epochs, balanced)
    name = _run_name(method, dataset, split, params, seed)
    ckpt_path = folder / f"{name}.pt"
    save_backbone(result.model, ckpt_path, meta={"method": method, "dataset": dataset, "split": split,
                                                 "seed": seed, **params})
    record_path = write_run_record(
        folder, name=name, method=method, splits=splits, result=result, params=params,
        seed=seed, source=source, fit_fields=(*FIT_FIELDS, "history"),
        extra={"checkpoint": ckpt_path.name, "world_size": result.params.get("world_size", 1)})
    return result, record_path, ckpt_path


def _find_record(folder: Path, method: str, dataset: str, split: str, seed: int, params: dict):
    """The newest record in ``folder`` of this method/data/profile/seed whose backbone file exists."""
    keys = ("profile", "backbone", "epochs", "n_train", "n_val", "n_test", "val_split")
    found = []
    for path in sorted(folder.glob("*.json")):
        try:
            rec = json.loads(path.read_text())
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
            # visible, not silent: the baseline is trained again and its record rewritten
            warnings.warn(f"{path}: unreadable record ({err}); it is left out when looking for a "
                          "finished baseline", stacklevel=3)
            continue
        if not isinstance(rec, dict):
            continue
        extra = rec.get("extra") or {}
        p = rec.get("params") or {}
        if (rec.get("method"), rec.get("dataset"), rec.get("split"), rec.get("seed")) != \
                (method, dataset, split, seed):
            continue
        if any(p.get(k) != params[k] for k in keys):
            continue
        ckpt = folder / str(extra.get("checkpoint", ""))
        if extra.get("checkpoint") and ckpt.is_file():
            found.append((path.stat().st_mtime, path, rec, ckpt))
    if not found:
        return None
    _, path, rec, ckpt = max(found, key=lambda t: t[0])
    return path, rec, ckpt


def load_or_train_baseline(splits: Splits, profile: str | Profile = "smoke",
                           device: str | torch.device = "auto", seed: int = 0,
                           balanced: bool = False,
                           results_path: str | os.PathLike = "../_build/records", *,
                           backbone: str | None = None, epochs: int | None = None,
                           checkpoint_dir=None, progress: bool = True,
                           source: str | None = None) -> BaselineRun:
    """Reuse the baseline backbone recorded in ``results_path`` for the same method, dataset,
    evaluation split, seed, profile, backbone, epochs and split sizes; train it otherwise.

    The backbone is rebuilt with ferlib.models.load_backbone (strict: a file that does not fit
    exactly is an error, never a silent partial load) and returned in eval mode on ``device``.
    ``checkpoint_dir`` makes the training, when there is one, resumable (:func:`train_baseline`).
    """
    from ferlib.config import resolve_device
    from ferlib.models import load_backbone

    prof = get_profile(profile)
    bb = backbone or prof.backbone
    n_epochs = given_or(epochs, prof.epochs, "epochs")
    method = baseline_method(balanced)
    folder = Path(results_path)
    hit = _find_record(folder, method, splits.train.name, splits.test.split, seed,
                       _params(splits, prof, bb, n_epochs, balanced)) if folder.is_dir() else None
    if hit is not None:
        record_path, record, ckpt = hit
        model = load_backbone(ckpt)
        model.to(resolve_device(device)).eval()
        return BaselineRun(model, record, record_path, ckpt, None)
    result, record_path, ckpt = train_baseline(
        splits, prof, device, seed, balanced, results_path, backbone=bb, epochs=n_epochs,
        checkpoint_dir=checkpoint_dir, progress=progress, source=source)
    record = json.loads(Path(record_path).read_text()) if record_path is not None else {}
    return BaselineRun(result.model, record, record_path, ckpt, result)
