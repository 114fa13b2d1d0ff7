"""The one training loop every chapter uses (see notebooks/02_baseline, "The training engine").

:func:`fit` trains a classifier with a pluggable loss (``loss_fn``), prediction rule
(``predict_fn``), optimiser, learning-rate schedule and sampler; evaluates the validation split
(and the test split, if given) after every epoch; keeps the weights of the epoch that is best on
the VALIDATION split (never the test split); and reports both the selected epoch's test metrics
and the mean of the last five epochs' test metrics, because published FER numbers mix the two
(RUL/SCN/DAN report the best test epoch; noisy-label tables report the last-5 mean; see
the shared reference facts, "How published numbers are made").

Design points
-------------
* ``fit`` is a short list of named steps, each a function below it: check the arguments,
  ``_build_training`` (optimiser, sampler and loader, schedules, loss), ``_resume_or_start``,
  then per epoch ``_train_epoch`` (one ``_train_step`` per batch), ``_record_epoch``
  (evaluate, select on validation, report) and ``_save_checkpoint``; ``_fit_result`` last.
* Epochs are numbered from 1; ``loss_fn`` receives that number (SCN "relabel from epoch 10"
  counts the same way as its reference code).
* Every epoch's sample order is a function of ``(seed, epoch)`` only (see
  :mod:`ferlib.train.samplers`), so a resumed run repeats an uninterrupted one exactly on the
  CPU, and a run on several processes sees the same global batches as a run on one.
* With ``checkpoint_dir`` the whole run state (model, optimiser, scheduler, AMP scaler, the RNG
  states of Python/NumPy/torch, the loader's generator, the loss's own ``state_dict`` if it has
  one, history and best weights) is written atomically after every epoch; calling ``fit`` again
  with the same arguments continues from the last finished epoch.
* Precision (:mod:`ferlib.train.precision`): ``"auto"`` is float16 autocast + ``GradScaler`` on
  CUDA, bfloat16 autocast on a CPU with bfloat16 matrix units, float32 elsewhere; the choice is
  in ``FitResult.params["precision"]`` and so in every record.
* The recipe of the ``cpu`` profile (``Profile.fit_options``): per-image random crop and flip
  (:mod:`ferlib.train.augment`), SGD with Nesterov momentum, a one-cycle schedule stepped per
  batch, label smoothing, and test-time flip averaging in evaluation.
* When ``torch.distributed`` is initialised (``torchrun``), ``fit`` trains data-parallel by
  itself: ``batch_size`` is the GLOBAL batch (each of W ranks loads ``batch_size / W``), the
  model is wrapped in DistributedDataParallel, rank 0 evaluates and every rank returns the same
  :class:`FitResult`. See :mod:`ferlib.train.ddp`.
* A :class:`~ferlib.data.FaceDataset` (optionally wrapped in :class:`IndexedDataset`) is read a
  whole batch at a time by fancy indexing of its uint8 array; the tensors are bit-identical to
  collating ``ds[i]`` item by item, without the per-item Python cost.
"""
from __future__ import annotations

import functools
import math
import os
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pandas as pd
import torch
import torch.distributed as dist
import torch.nn as nn
import torch.nn.functional as F
from torch.utils.data import (BatchSampler, DataLoader, Dataset, DistributedSampler, Sampler,
                              SequentialSampler)
from tqdm.auto import tqdm

from ferlib.config import resolve_device
from ferlib.train.augment import make_augment
from ferlib.train.precision import autocast_dtype, resolve_precision
from ferlib.train.samplers import DistributedClassBalancedSampler
from ferlib.train.seed import get_rng_state, set_rng_state, set_seed

__all__ = ["fit", "evaluate", "FitResult", "IndexedDataset", "CHECKPOINT_NAME", "SCALAR_METRICS",
           "default_loss", "unwrap_model", "make_loader", "data_fingerprint", "describe_callable"]

CHECKPOINT_NAME = "last.pt"
CHECKPOINT_FORMAT = 1
# scalar metrics of ferlib.metrics.classification_metrics that go into the history table
SCALAR_METRICS = ("accuracy", "mean_class_accuracy", "macro_f1", "mAP", "max_class_recall",
                  "min_class_recall")


# ----------------------------------------------------------------------------------------------
# datasets and loaders
# ----------------------------------------------------------------------------------------------
class IndexedDataset(Dataset):
    """Wraps a dataset so that items are ``(x, y, idx)``; :func:`fit` then calls
    ``loss_fn(model, x, y, epoch, idx=idx)`` with ``idx`` a CPU int64 tensor (B,) of row
    numbers in the wrapped dataset (SCN relabelling, per-sample weights).

    Attribute access (``labels``, ``class_names``, ``clean_labels``, ...) is forwarded to the
    wrapped dataset.
    """

    def __init__(self, dataset):
        self.dataset = dataset

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, i):
        item = self.dataset[i]
        return item[0], item[1], i

    def __getattr__(self, name):
        if name == "dataset":  # not set yet (unpickling): avoid infinite recursion
            raise AttributeError(name)
        return getattr(self.dataset, name)

    def __repr__(self) -> str:
        return f"IndexedDataset({self.dataset!r})"


def _batchable(dataset):
    """(FaceDataset, with_index) when the dataset can be read a batch at a time, else None."""
    from ferlib.data.dataset import FaceDataset

    with_index, ds = False, dataset
    if type(ds) is IndexedDataset:
        ds, with_index = ds.dataset, True
    if isinstance(ds, FaceDataset) and type(ds).__getitem__ is FaceDataset.__getitem__:
        return ds, with_index
    return None


class _BatchReader(Dataset):
    """Reads a list of rows of a FaceDataset at once; same tensors as collating ``ds[i]``."""

    def __init__(self, ds, with_index: bool):
        self.ds, self.with_index = ds, with_index

    def __len__(self) -> int:
        return len(self.ds)

    def __getitem__(self, rows):
        rows = np.asarray(rows, dtype=np.int64)  # (B,)
        x = torch.from_numpy(self.ds.images[rows]).float().div_(255.0)  # (B, H, W[, C])
        x = x.unsqueeze(1) if x.ndim == 3 else x.permute(0, 3, 1, 2).contiguous()  # (B, C, H, W)
        y = torch.from_numpy(self.ds.labels[rows])  # (B,)
        return (x, y, torch.from_numpy(rows)) if self.with_index else (x, y)


def make_loader(dataset, batch_size: int, sampler: Sampler, *, drop_last: bool = False,
                generator: torch.Generator | None = None, num_workers: int = 0,
                pin_memory: bool = False) -> DataLoader:
    """The DataLoader of ``fit``, ``evaluate`` and ``extract_features``: batches of
    ``batch_size`` in ``sampler``'s order; a :class:`ferlib.data.FaceDataset` (or an
    :class:`IndexedDataset` over one) is read a whole batch at a time instead of item by item."""
    fast = _batchable(dataset)
    common = dict(generator=generator, num_workers=num_workers, pin_memory=pin_memory)
    if fast is not None:
        return DataLoader(_BatchReader(*fast), batch_size=None,
                          sampler=BatchSampler(sampler, batch_size, drop_last), **common)
    return DataLoader(dataset, batch_size=batch_size, sampler=sampler, drop_last=drop_last, **common)


def _labels_of(dataset, what: str) -> np.ndarray:
    labels = getattr(dataset, "labels", None)
    if labels is None:
        raise TypeError(f"{what} needs a dataset with a .labels array; "
                        f"{type(dataset).__name__} has none")
    return np.asarray(labels)


# ----------------------------------------------------------------------------------------------
# evaluation
# ----------------------------------------------------------------------------------------------
def unwrap_model(model: nn.Module) -> nn.Module:
    """The bare model inside a DistributedDataParallel / DataParallel wrapper."""
    return model.module if isinstance(model, (nn.parallel.DistributedDataParallel,
                                              nn.DataParallel)) else model


def _model_device(model: nn.Module) -> torch.device | None:
    for t in model.parameters():
        return t.device
    return None


@torch.no_grad()
def evaluate(model: nn.Module, dataset, batch_size: int = 256,
             device: str | torch.device = "auto", predict_fn: Callable | None = None,
             amp: bool = True, progress: bool = False, tta_flip: bool = False, precision: str = "auto", channels_last: bool = False) -> dict:
    """Metrics of ``model`` on ``dataset`` (ferlib.metrics.classification_metrics) plus
    ``"scores"`` (N, K) softmax probabilities, ``"y_pred"`` (N,) and ``"y_true"`` (N,) as NumPy.

    ``predict_fn(model, x) -> logits`` replaces ``model(x)`` (e.g. RUL tests on the unmixed mean
    feature). Labels are ``dataset.labels``, except that a dataset with ``clean_labels`` (a
    training split whose labels were flipped, :func:`ferlib.data.flip_labels`) is scored against
    its clean labels. The model is moved to ``device`` (in place) and left in the mode it was in.
    ``precision`` as in :func:`fit` (``amp=False`` forces float32). ``tta_flip`` averages the
    softmax of each image and of its mirror image (test-time augmentation).
    """
    from ferlib.metrics import classification_metrics

    dev = resolve_device(device)
    model = unwrap_model(model)
    model.to(dev)
    if len(dataset) == 0:
        raise ValueError(f"cannot evaluate on an empty dataset ({dataset!r})")
    loader = make_loader(dataset, batch_size, SequentialSampler(range(len(dataset))),
                         pin_memory=dev.type == "cuda")
    was_training = model.training
    model.eval()
    dtype = autocast_dtype(resolve_precision(precision if amp else "fp32", dev))
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    probs_all, y_all = [], []

    def predict(x):
        with torch.autocast(dev.type, dtype=dtype or torch.float32, enabled=dtype is not None):
            logits = model(x) if predict_fn is None else predict_fn(model, x)  # (B, K)
        if not (torch.is_tensor(logits) and logits.ndim == 2 and logits.shape[0] == x.shape[0]):
            raise TypeError("predict_fn/model must return logits of shape (B, K); got "
                            f"{getattr(logits, 'shape', type(logits).__name__)} for B={x.shape[0]}")
        logits = logits.float()
        if not torch.isfinite(logits).all():
            raise FloatingPointError(f"the model produced non-finite logits on {dataset!r}")
        return torch.softmax(logits, dim=1).cpu()

    try:
        for batch in tqdm(loader, desc="evaluate", disable=not progress, leave=False):
            x = batch[0].to(dev, non_blocking=True).contiguous(memory_format=fmt)  # (B, C, H, W)
            probs = predict(x)
            if tta_flip:  # the mirror image is as likely a face: average the two predictions
                probs = 0.5 * (probs + predict(x.flip(-1)))
            probs_all.append(probs)
            y_all.append(torch.as_tensor(batch[1]))
    finally:
        model.train(was_training)
    scores = torch.cat(probs_all).numpy()  # (N, K)
    y_pred = scores.argmax(1)
    clean = getattr(dataset, "clean_labels", None)
    y_true = np.asarray(clean if clean is not None else torch.cat(y_all).numpy(), dtype=np.int64)
    k = scores.shape[1]
    class_names = getattr(dataset, "class_names", None) or tuple(str(i) for i in range(k))
    if len(class_names) != k:
        raise ValueError(f"the model outputs {k} classes but the dataset has {len(class_names)} "
                         f"({', '.join(class_names)})")
    metrics = classification_metrics(y_true, y_pred, scores=scores, class_names=class_names)
    return {**metrics, "scores": scores, "y_pred": y_pred, "y_true": y_true}


# ----------------------------------------------------------------------------------------------
# fit
# ----------------------------------------------------------------------------------------------
@dataclass
class FitResult:
    """What :func:`fit` returns.

    ``history``: one row per epoch (epoch, lr, train_loss, train_acc, val_<metric>, test_<metric>,
    val_recall_<class>, test_recall_<class>, epoch_time). ``val_metrics`` / ``test_metrics``: the
    full metric dicts at ``best_epoch`` (selected on validation). ``test_last5``: the mean of
    the last min(5, epochs) epochs' test metrics (scalars and per_class_recall). ``wall_time``:
    seconds over all epochs (also those run before a resume). ``model``: the bare model with the
    best weights loaded. ``params``: the run's settings.
    """

    history: pd.DataFrame
    best_epoch: int
    val_metrics: dict
    test_metrics: dict | None
    test_last5: dict | None
    wall_time: float
    model: nn.Module
    device: str
    params: dict = field(default_factory=dict)

    def __repr__(self) -> str:
        val = self.val_metrics.get("accuracy", float("nan")) if self.val_metrics else float("nan")
        test = self.test_metrics.get("accuracy", float("nan")) if self.test_metrics else float("nan")
        return (f"FitResult(best_epoch={self.best_epoch}/{len(self.history)}, val_accuracy={val:.4f}, "
                f"test_accuracy={test:.4f}, wall_time={self.wall_time:.1f}s, device={self.device})")


def default_loss(model, x, y, epoch, **kwargs):
    """Cross-entropy on ``model(x)``: returns ``(loss, logits)``."""
    logits = model(x)  # (B, K)
    return F.cross_entropy(logits, y), logits


def _dist_world() -> tuple[int, int]:
    if dist.is_available() and dist.is_initialized():
        return dist.get_world_size(), dist.get_rank()
    return 1, 0


def _fit_device(device: str | torch.device, world: int) -> torch.device:
    dev = resolve_device(device)
    if dev.type == "cuda" and world > 1 and dev.index is None:
        local = int(os.environ.get("LOCAL_RANK", dist.get_rank() % torch.cuda.device_count()))
        dev = torch.device("cuda", local)
    if dev.type == "cuda" and dev.index is not None:
        torch.cuda.set_device(dev)
    return dev


def _plain(obj):
    """Metrics made of Python types only (for weights_only checkpoints and JSON)."""
    if isinstance(obj, dict):
        return {str(k): _plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_plain(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return _plain(obj.tolist())
    if isinstance(obj, (np.floating, float)):
        return float(obj)
    if isinstance(obj, (np.integer, int)) and not isinstance(obj, bool):
        return int(obj)
    return obj


def _metrics_only(result: dict, keep_labels: bool = False) -> dict:
    """The metrics of an :func:`evaluate` result; ``keep_labels`` keeps ``y_true`` / ``y_pred``
    (the test split's, which its record keeps for paired intervals: ferlib.stats)."""
    drop = ("scores",) if keep_labels else ("scores", "y_pred", "y_true")
    return _plain({k: v for k, v in result.items() if k not in drop})


def _flat_row(prefix: str, metrics: dict) -> dict:
    row = {f"{prefix}_{k}": float(metrics[k]) for k in SCALAR_METRICS if k in metrics}
    for name, value in (metrics.get("per_class_recall") or {}).items():
        row[f"{prefix}_recall_{name}"] = float(value)
    return row


def _last5(history: list[dict], class_names) -> dict | None:
    rows = [r for r in history if "test_accuracy" in r][-5:]
    if not rows:
        return None
    out = {k: float(np.mean([r[f"test_{k}"] for r in rows])) for k in SCALAR_METRICS
           if all(f"test_{k}" in r for r in rows)}
    recall = {}
    for name in class_names or ():
        key = f"test_recall_{name}"
        if all(key in r for r in rows):
            recall[name] = float(np.mean([r[key] for r in rows]))
    if recall:
        out["per_class_recall"] = recall
    out["epochs"] = [int(r["epoch"]) for r in rows]
    return out


def _check_output(out, batch_size: int):
    if not (isinstance(out, (tuple, list)) and len(out) == 2):
        raise TypeError(f"loss_fn must return (loss, logits); got {type(out).__name__}")
    loss, logits = out
    if not (torch.is_tensor(loss) and loss.ndim == 0):
        raise TypeError(f"loss_fn's loss must be a scalar tensor; got "
                        f"{getattr(loss, 'shape', type(loss).__name__)}")
    if not (torch.is_tensor(logits) and logits.ndim == 2 and logits.shape[0] == batch_size):
        raise TypeError(f"loss_fn's logits must have shape (B={batch_size}, K); got "
                        f"{getattr(logits, 'shape', type(logits).__name__)}")
    return loss, logits


def _allreduce_grads(params: list[torch.nn.Parameter], world: int) -> None:
    """Average gradients over ranks in one flat all-reduce (used when a custom loss_fn may call
    the model's methods other than forward, which DistributedDataParallel cannot see)."""
    grads = [p.grad if p.grad is not None else torch.zeros_like(p) for p in params]
    flat = torch._utils._flatten_dense_tensors(grads)
    dist.all_reduce(flat)
    flat.div_(world)
    for p, g in zip(params, torch._utils._unflatten_dense_tensors(flat, grads)):
        if p.grad is not None:
            p.grad.copy_(g)


def _save_atomic(obj, path: Path) -> None:
    """Write the checkpoint through a flushed, fsync-ed temporary file renamed over ``path``
    (:func:`ferlib.checkpoint.save_atomic`): a crash leaves the previous complete file."""
    from ferlib.checkpoint import save_atomic

    save_atomic(obj, path)


def _hash_arrays(h, *arrays) -> None:
    for a in arrays:
        if a is None:
            h.update(b"none|")
            continue
        a = a.detach().cpu().numpy() if torch.is_tensor(a) else np.asarray(a)
        h.update(f"{a.dtype.str}{a.shape}|".encode())
        h.update(np.ascontiguousarray(a).data if a.dtype != object else repr(a.tolist()).encode())


def data_fingerprint(dataset) -> str | None:
    """A hex digest of what a dataset holds, for the checkpoint fingerprint of :func:`fit`:
    the images and labels of a :class:`~ferlib.data.FaceDataset` (clean labels too, when it has
    them) with its class names, so two splits of equal size (FER2013 PublicTest and
    PrivateTest, 3,589 rows each) never pass for each other. An :class:`IndexedDataset` is
    its wrapped dataset; a ``TensorDataset`` its tensors; any other dataset its type, length
    and ``labels`` (its items are not read). None for None. BLAKE2b, about 1 GB/s."""
    import hashlib

    if dataset is None:
        return None
    h = hashlib.blake2b(digest_size=16)
    ds = dataset
    while type(ds) is IndexedDataset:
        h.update(b"indexed|")
        ds = ds.dataset
    h.update(f"{type(ds).__module__}.{type(ds).__qualname__}|{len(ds)}|".encode())
    images, labels = getattr(ds, "images", None), getattr(ds, "labels", None)
    if isinstance(images, np.ndarray) and labels is not None:
        _hash_arrays(h, images, labels, getattr(ds, "clean_labels", None))
        h.update(repr(tuple(getattr(ds, "class_names", ()) or ())).encode())
    elif isinstance(ds, torch.utils.data.TensorDataset):
        _hash_arrays(h, *ds.tensors)
    else:
        _hash_arrays(h, labels)
    return h.hexdigest()


def describe_callable(obj) -> str | None:
    """A stable text for a loss / predict function in the checkpoint fingerprint: module and
    qualified name of a function, the class and repr of a callable object, the function and
    arguments of a ``functools.partial``; memory addresses are dropped (they differ per run)."""
    import functools
    import re

    if obj is None:
        return None
    if isinstance(obj, functools.partial):
        text = (f"partial({describe_callable(obj.func)}, {obj.args!r}, "
                f"{dict(sorted(obj.keywords.items()))!r})")
    elif hasattr(obj, "__qualname__") and hasattr(obj, "__module__") and not hasattr(obj, "__self__"):
        text = f"{obj.__module__}.{obj.__qualname__}"
    else:
        kind = type(obj)
        text = f"{kind.__module__}.{kind.__qualname__}: {obj!r}"
    return re.sub(r" at 0x[0-9a-fA-F]+", "", text)


def _settings_of(obj) -> dict | None:
    """The hyperparameters of an optimiser or scheduler (its freshly built state_dict without
    tensors and per-step state) as plain data, for the checkpoint fingerprint."""
    if obj is None:
        return None
    state = obj.state_dict()
    if isinstance(obj, torch.optim.Optimizer):
        state = {"param_groups": [{k: v for k, v in g.items() if k != "params"}
                                  for g in state["param_groups"]]}

    def plain(v):
        if isinstance(v, dict):
            return {str(k): plain(x) for k, x in v.items()}
        if isinstance(v, (list, tuple)):
            return [plain(x) for x in v]
        if v is None or isinstance(v, (bool, int, float, str)):
            return v
        if torch.is_tensor(v) and v.numel() == 1:
            return v.item()
        return describe_callable(v) if callable(v) else type(v).__name__

    return plain(state)


#: the modules renamed when the methods moved to ``ferlib.methods`` (one package per paper), old
#: name first. A checkpoint written before the move names its loss, predict or schedule function
#: by the old module (``describe_callable``); ``_compare_fingerprints`` reads those names as the
#: new ones, so such a run still resumes. Longer names first (``ean_experiment`` before
#: ``ean``).
RENAMED_MODULES = (
    ("ferlib.models.ean_experiment", "ferlib.methods.ean.experiment"),
    ("ferlib.models.cucn_experiment", "ferlib.methods.cucn.experiment"),
    ("ferlib.models.ean", "ferlib.methods.ean.model"),
    ("ferlib.models.scn", "ferlib.methods.ean.scn"),
    ("ferlib.models.invariant", "ferlib.methods.ean.invariant"),
    ("ferlib.models.cucn", "ferlib.methods.cucn.model"),
    ("ferlib.models.dan", "ferlib.methods.dan.model"),
    ("ferlib.models.vaegan", "ferlib.methods.latent_aug.vaegan"),
    ("ferlib.augment", "ferlib.methods.latent_aug"),
    ("ferlib.ahm", "ferlib.methods.ahm"),
    ("ferlib.sae", "ferlib.methods.ahm.sae"),
    ("ferlib.train.baseline", "ferlib.methods.baseline.experiment"),
)
_RENAMED = [(re.compile(r"(?<![\w.])" + re.escape(old) + r"(?![\w])"), new)
            for old, new in RENAMED_MODULES]


def renamed_modules(value):
    """``value`` (a fingerprint entry: text, or lists and dicts of it) with every module name of
    ``RENAMED_MODULES`` replaced by its new name."""
    if isinstance(value, str):
        for old, new in _RENAMED:
            value = old.sub(new, value)
        return value
    if isinstance(value, dict):
        return {k: renamed_modules(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(renamed_modules(v) for v in value)
    return value


def _compare_fingerprints(saved: dict, current: dict, path: Path) -> None:
    for key in sorted(set(saved) | set(current)):
        a, b = renamed_modules(saved.get(key)), current.get(key)
        if a == b:
            continue
        if key not in saved:
            detail = (f"the checkpoint records no {key!r}: it was written by an older ferlib, "
                      "whose fingerprint did not cover it")
        elif key.endswith("_data"):
            which = key[:-len("_data")]
            detail = (f"the {which} data differ (same size or not: images, labels or class "
                      f"names changed; checkpoint {str(a)[:12]}..., this run {str(b)[:12]}...)")
        elif key == "model":
            a_d, b_d = dict((k, tuple(s)) for k, s in a or []), dict((k, tuple(s)) for k, s in b or [])
            names = list(b_d) + [k for k in a_d if k not in b_d]  # this model's order first
            diff = [k for k in names if a_d.get(k) != b_d.get(k)]
            first = diff[0]
            detail = (f"model weights differ in {len(diff)} tensors, first {first!r}: "
                      f"checkpoint {a_d.get(first)}, this run {b_d.get(first)}")
        else:
            detail = f"{key}: checkpoint has {a!r}, this run has {b!r}"
        raise ValueError(f"checkpoint {path} was written by a different run ({detail}). Pass the "
                         f"same arguments to resume, or use a new checkpoint_dir / delete {path}.")


# ----------------------------------------------------------------------------------------------
# the steps of fit: check, build, resume, train an epoch, evaluate and select, checkpoint, return
# ----------------------------------------------------------------------------------------------
def _check_run_arguments(epochs, batch_size, train_set, select_metric: str, world: int) -> None:
    """The run's sizes and selection metric; the global batch must split evenly over ranks."""
    if not isinstance(epochs, int) or epochs < 1:
        raise ValueError(f"epochs must be a positive int, got {epochs!r}")
    if not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive int, got {batch_size!r}")
    if len(train_set) == 0:
        raise ValueError("train_set is empty")
    if select_metric not in SCALAR_METRICS:
        raise ValueError(f"select_metric {select_metric!r} is not one of {', '.join(SCALAR_METRICS)}")
    if batch_size % world:
        raise ValueError(f"batch_size {batch_size} (the global batch) must be divisible by the "
                         f"number of processes {world}")


def _check_recipe_arguments(label_smoothing, schedule, scheduler) -> None:
    """Label smoothing in [0, 1); one learning-rate schedule, per batch or per epoch."""
    if not 0.0 <= float(label_smoothing) < 1.0:
        raise ValueError(f"label_smoothing must be in [0, 1), got {label_smoothing!r}")
    if schedule not in (None, "none", "onecycle", "cosine"):
        raise ValueError(f"schedule {schedule!r}: choose None, 'none', 'onecycle' or 'cosine'")
    if schedule not in (None, "none") and scheduler is not None:
        raise ValueError(f"pass either schedule={schedule!r} (per batch) or scheduler (per epoch), "
                         "not both")


def _build_optimizer(optimizer, params: list, lr: float,
                     weight_decay: float) -> torch.optim.Optimizer:
    """Adam (the default), SGD with Nesterov momentum (the cpu recipe), a built optimiser or a
    factory of one (e.g. CUCN's two learning rates)."""
    if optimizer is None or optimizer == "adam":
        return torch.optim.Adam(params, lr=lr, weight_decay=weight_decay)
    if optimizer == "sgd":
        return torch.optim.SGD(params, lr=lr, momentum=0.9, nesterov=True, weight_decay=weight_decay)
    if isinstance(optimizer, torch.optim.Optimizer):
        return optimizer
    if callable(optimizer):
        opt = optimizer(params)
        if not isinstance(opt, torch.optim.Optimizer):
            raise TypeError(f"the optimizer factory returned {type(opt).__name__}, not an Optimizer")
        return opt
    raise TypeError(f"optimizer must be None, an Optimizer or a factory, got {optimizer!r}")


def _build_sampler(sampler, train_set, seed: int, world: int, rank: int) -> tuple[Any, str]:
    """The training sampler and its name in the records: the order of epoch e depends on
    (seed, e) only, so a resumed run and a run on several ranks see the same global batches."""
    if sampler is None:
        return DistributedSampler(range(len(train_set)), num_replicas=world, rank=rank,
                                  shuffle=True, seed=seed), "shuffle"
    if isinstance(sampler, str):
        if sampler != "balanced":
            raise ValueError(f"sampler {sampler!r}: use None, 'balanced' or a torch Sampler")
        return DistributedClassBalancedSampler(
            _labels_of(train_set, "sampler='balanced'"), seed=seed, num_replicas=world,
            rank=rank), "balanced"
    if isinstance(sampler, Sampler) or hasattr(sampler, "__iter__"):
        if world > 1 and getattr(sampler, "num_replicas", None) != world:
            raise ValueError(f"under torchrun (world size {world}) a custom sampler must shard "
                             f"itself: {type(sampler).__name__} has num_replicas="
                             f"{getattr(sampler, 'num_replicas', None)}")
        return sampler, type(sampler).__name__
    raise TypeError(f"sampler must be None, 'balanced' or a Sampler, got {type(sampler).__name__}")


def _training_loss(loss_fn: Callable | None, label_smoothing: float) -> Callable:
    """``loss_fn``, or the cross-entropy (label-smoothed when asked) when there is none."""
    if loss_fn is not None:
        return loss_fn
    if not label_smoothing:
        return default_loss

    def smoothed_loss(model, x, y, epoch, **kwargs):
        logits = model(x)  # (B, K)
        return F.cross_entropy(logits, y, label_smoothing=float(label_smoothing)), logits
    return smoothed_loss


def _build_schedules(opt, scheduler: Callable | None, schedule: str | None, lr: float,
                     total_steps: int) -> tuple[Any, Any]:
    """(per-epoch scheduler from the ``scheduler`` factory, per-batch ``schedule`` over the
    whole run of ``total_steps`` batches); at most one of them is not None."""
    sched = scheduler(opt) if scheduler is not None else None
    batch_sched = None
    if schedule == "onecycle":
        batch_sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=total_steps)
    elif schedule == "cosine":
        batch_sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=total_steps)
    return sched, batch_sched


@dataclass
class _Training:
    """What :func:`fit` builds before the first epoch and its steps share."""

    model: nn.Module               # the bare model: evaluated, checkpointed, returned
    opt: torch.optim.Optimizer
    sched: Any                     # per-epoch scheduler, or None
    batch_sched: Any               # per-batch schedule, or None
    scaler: torch.amp.GradScaler   # loss scaling of float16 (a no-op otherwise)
    sampler: Any
    loader: DataLoader
    loader_gen: torch.Generator    # worker seeds; saved with the checkpoint
    loss_fn: Callable | None       # the caller's loss (checkpointed if it has state), or None
    loss: Callable                 # what trains: loss_fn or the (smoothed) cross-entropy
    dev: torch.device
    amp_dtype: torch.dtype | None
    fmt: torch.memory_format
    world: int
    net: nn.Module | None = None   # what trains: the model, or DDP around it
    manual_sync: bool = False      # average gradients by hand (custom losses under torchrun)
    sync_params: list = field(default_factory=list)

    @property
    def any_sched(self):
        return self.sched or self.batch_sched


def _build_training(model: nn.Module, train_set, *, epochs: int, batch_size: int, lr: float,
                    optimizer, weight_decay: float, scheduler, schedule, sampler, loss_fn,
                    label_smoothing: float, seed: int, num_workers: int, dev: torch.device,
                    prec: str, fmt: torch.memory_format, world: int,
                    rank: int) -> tuple[_Training, str]:
    """Optimiser, sampler and loader (this rank's share of the global batch), schedules, AMP
    scaler and loss, around the model already on its device; and the sampler's name."""
    params = [p for p in model.parameters() if p.requires_grad]
    if not params:
        raise ValueError("the model has no trainable parameters")
    opt = _build_optimizer(optimizer, params, lr, weight_decay)
    train_sampler, sampler_kind = _build_sampler(sampler, train_set, seed, world, rank)
    rank_batch = batch_size // world
    loader_gen = torch.Generator().manual_seed(seed)
    loader = make_loader(train_set, rank_batch, train_sampler, generator=loader_gen,
                         drop_last=len(train_sampler) % rank_batch == 1,  # a batch of 1 breaks BN
                         num_workers=num_workers, pin_memory=dev.type == "cuda")
    sched, batch_sched = _build_schedules(opt, scheduler, schedule, lr, epochs * len(loader))
    t = _Training(model=model, opt=opt, sched=sched, batch_sched=batch_sched,
                  scaler=torch.amp.GradScaler(dev.type, enabled=prec == "fp16"),
                  sampler=train_sampler, loader=loader, loader_gen=loader_gen, loss_fn=loss_fn,
                  loss=_training_loss(loss_fn, label_smoothing), dev=dev,
                  amp_dtype=autocast_dtype(prec), fmt=fmt, world=world)
    return t, sampler_kind


def _run_params(t: _Training, *, epochs, batch_size, lr, seed, optimizer, weight_decay,
                sampler_kind: str, select_metric: str, prec: str, channels_last, label_smoothing,
                augment_fn, tta_flip) -> dict:
    """The run's settings, as ``FitResult.params`` and so in every record."""
    return {"epochs": epochs, "batch_size": batch_size, "lr": lr, "seed": seed,
            "weight_decay": weight_decay if optimizer in (None, "adam", "sgd") else None,
            "optimizer": type(t.opt).__name__,
            "scheduler": type(t.any_sched).__name__ if t.any_sched else None,
            "sampler": sampler_kind, "select_metric": select_metric, "amp": prec != "fp32",
            "precision": prec, "channels_last": bool(channels_last),
            "label_smoothing": float(label_smoothing) if t.loss_fn is None else None,
            "augment": repr(augment_fn) if augment_fn is not None else None,
            "tta_flip": bool(tta_flip),
            "world_size": t.world, "loss_fn": getattr(t.loss_fn, "__name__", type(t.loss_fn).__name__)
            if t.loss_fn is not None else "cross_entropy"}


def _run_fingerprint(t: _Training, run_params: dict, train_set, val_set, test_set,
                     predict_fn, sampler, sampler_kind: str) -> dict:
    """What a checkpoint must match to be resumed: the settings, the model's shapes, the data
    and the optimiser's and scheduler's hyperparameters (read after the per-batch schedule has
    set the optimiser's initial learning rate)."""
    return {**{k: v for k, v in run_params.items() if k != "loss_fn"},
            "model": [(k, list(v.shape)) for k, v in t.model.state_dict().items()],
            "train_size": len(train_set), "val_size": len(val_set) if val_set is not None else None,
            "test_size": len(test_set) if test_set is not None else None,
            "train_data": data_fingerprint(train_set), "val_data": data_fingerprint(val_set),
            "test_data": data_fingerprint(test_set),
            "loss": describe_callable(t.loss_fn), "predict": describe_callable(predict_fn),
            "optimizer_settings": _settings_of(t.opt), "scheduler_settings": _settings_of(t.sched),
            "sampler_settings": describe_callable(sampler) if sampler_kind not in
            ("shuffle", "balanced") else None}


def _resume(t: _Training, ckpt_path: Path, fingerprint: dict, epochs: int):
    """Load the run state of ``ckpt_path`` into ``t`` (and the global RNGs); returns
    ``(history, best, first epoch to run, finished)``. A checkpoint of another run is an error."""
    try:
        ckpt = torch.load(ckpt_path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - report which file is unreadable
        raise ValueError(f"cannot read checkpoint {ckpt_path}: {exc}") from exc
    if ckpt.get("format") != CHECKPOINT_FORMAT:
        raise ValueError(f"checkpoint {ckpt_path} has format {ckpt.get('format')}, "
                         f"expected {CHECKPOINT_FORMAT}")
    _compare_fingerprints(ckpt["fingerprint"], fingerprint, ckpt_path)
    t.model.load_state_dict(ckpt["model"])
    t.opt.load_state_dict(ckpt["optimizer"])
    if t.sched is not None or t.batch_sched is not None:
        t.any_sched.load_state_dict(ckpt["scheduler"])
    t.scaler.load_state_dict(ckpt["scaler"])
    if ckpt.get("loss_fn") is not None and hasattr(t.loss_fn, "load_state_dict"):
        t.loss_fn.load_state_dict(ckpt["loss_fn"])
    if ckpt.get("sampler_generator") is not None:
        t.sampler.generator.set_state(ckpt["sampler_generator"])
    t.loader_gen.set_state(ckpt["loader_generator"])
    set_rng_state(ckpt["rng"])
    return (ckpt["history"], ckpt["best"], ckpt["epoch"] + 1,
            ckpt["stopped"] or ckpt["epoch"] >= epochs)


def _resume_or_start(t: _Training, checkpoint_dir, fingerprint: dict, epochs: int,
                     is_main: bool):
    """``(checkpoint path or None, history, best, first epoch to run, finished)``: from the
    checkpoint in ``checkpoint_dir`` if there is one, else a fresh start (the folder made)."""
    history, best = [], {"epoch": 0, "score": None, "state": None, "val": {}, "test": None}
    if checkpoint_dir is None:
        return None, history, best, 1, False
    ckpt_path = Path(checkpoint_dir) / CHECKPOINT_NAME
    if ckpt_path.exists():
        return (ckpt_path, *_resume(t, ckpt_path, fingerprint, epochs))
    if is_main:
        ckpt_path.parent.mkdir(parents=True, exist_ok=True)
    return ckpt_path, history, best, 1, False


def _save_checkpoint(t: _Training, ckpt_path: Path, fingerprint: dict, epoch: int, stop: bool,
                     history: list[dict], best: dict) -> None:
    """The whole run state after ``epoch``, written atomically (what :func:`_resume` reads)."""
    _save_atomic({
        "format": CHECKPOINT_FORMAT, "fingerprint": fingerprint, "epoch": epoch,
        "stopped": stop, "model": t.model.state_dict(), "optimizer": t.opt.state_dict(),
        "scheduler": t.any_sched.state_dict() if t.any_sched is not None else None,
        "scaler": t.scaler.state_dict(), "rng": get_rng_state(),
        "loader_generator": t.loader_gen.get_state(),
        "sampler_generator": t.sampler.generator.get_state()
        if isinstance(getattr(t.sampler, "generator", None), torch.Generator) else None,
        "loss_fn": t.loss_fn.state_dict() if hasattr(t.loss_fn, "state_dict") else None,
        "history": history, "best": best}, ckpt_path)


def _parallelize(t: _Training) -> None:
    """Data parallel under torchrun: DDP for the default loss; a flat gradient all-reduce for
    custom losses, which may call model methods other than forward (DDP only sees forward)."""
    t.net = t.model
    t.sync_params = [p for group in t.opt.param_groups for p in group["params"]]  # also a loss's own
    if t.world > 1:
        if t.loss_fn is None:
            t.net = nn.parallel.DistributedDataParallel(
                t.model, device_ids=[t.dev.index] if t.dev.type == "cuda" else None)
        else:
            t.manual_sync = True
            for v in t.model.state_dict().values():
                dist.broadcast(v, 0)


def _train_step(t: _Training, batch, epoch: int,
                augment_fn) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """One optimiser step on one batch (augment, loss, backward, step, per-batch schedule);
    returns ``(loss, logits (B, K), y (B,))``."""
    x = batch[0]  # (B, C, H, W)
    if augment_fn is not None:
        x = augment_fn(x)
    x = x.to(t.dev, non_blocking=True).contiguous(memory_format=t.fmt)
    y = batch[1].to(t.dev, non_blocking=True)  # (B,)
    kw = {"idx": torch.as_tensor(batch[2])} if len(batch) > 2 else {}
    with torch.autocast(t.dev.type, dtype=t.amp_dtype or torch.float32,
                        enabled=t.amp_dtype is not None):
        loss, logits = _check_output(t.loss(t.net, x, y, epoch, **kw), y.shape[0])
    t.opt.zero_grad(set_to_none=True)
    t.scaler.scale(loss).backward()
    if t.manual_sync:
        _allreduce_grads(t.sync_params, t.world)
    t.scaler.step(t.opt)
    t.scaler.update()
    if t.batch_sched is not None:
        t.batch_sched.step()
    return loss, logits, y


def _train_epoch(t: _Training, epoch: int, augment_fn, bar) -> dict:
    """Train one epoch; returns the history row's ``epoch, lr, train_loss, train_acc`` (loss and
    accuracy over all ranks' samples; ``lr`` at the epoch's start). Steps the per-epoch
    scheduler."""
    if hasattr(t.sampler, "set_epoch"):
        t.sampler.set_epoch(epoch)
    t.net.train()
    loss_sum = torch.zeros((), device=t.dev, dtype=torch.float64)
    correct = torch.zeros((), device=t.dev, dtype=torch.int64)
    seen, last_post = 0, time.perf_counter()
    lr_now = t.opt.param_groups[0]["lr"]
    for batch in t.loader:
        loss, logits, y = _train_step(t, batch, epoch, augment_fn)
        n = y.shape[0]
        loss_sum += loss.detach().double() * n
        correct += (logits.detach().argmax(1) == y).sum()
        seen += n
        bar.update(1)
        if not bar.disable and time.perf_counter() - last_post > 0.5:
            last_post = time.perf_counter()
            bar.set_postfix(loss=f"{loss_sum.item() / seen:.4f}",
                            acc=f"{correct.item() / seen:.3f}", refresh=False)
    stats = torch.stack([loss_sum, correct.double(),
                         torch.tensor(float(seen), device=t.dev, dtype=torch.float64)])
    if t.world > 1:
        dist.all_reduce(stats)
    train_loss, train_acc = (stats[0] / stats[2]).item(), (stats[1] / stats[2]).item()
    if not math.isfinite(train_loss):
        raise FloatingPointError(f"the training loss became {train_loss} in epoch {epoch}; "
                                 f"lower the learning rate (lr={lr_now}) or check the inputs")
    if t.sched is not None:
        t.sched.step()
    return {"epoch": epoch, "lr": lr_now, "train_loss": train_loss, "train_acc": train_acc}


def _evaluate_and_select(model: nn.Module, row: dict, best: dict, score_split: Callable,
                         val_set, test_set, select_metric: str) -> tuple[dict, dict | None]:
    """Evaluate val (and test) after an epoch, add their metrics to ``row``, and keep the
    weights if the epoch is the best so far on VALIDATION (the test split never selects;
    without a validation split the last epoch wins). Returns ``(best, val metrics)``."""
    epoch = row["epoch"]
    val_m = test_m = None
    if val_set is not None:
        val_m = _metrics_only(score_split(model, val_set))
        row.update(_flat_row("val", val_m))
    if test_set is not None:
        test_m = _metrics_only(score_split(model, test_set), keep_labels=True)
        row.update(_flat_row("test", test_m))
    score = val_m[select_metric] if val_m is not None else float(epoch)  # no val: last
    if best["score"] is None or score > best["score"]:
        best = {"epoch": epoch, "score": float(score),
                "state": {k: v.detach().cpu().clone() for k, v in model.state_dict().items()},
                "val": val_m or {}, "test": test_m}
    return best, val_m


def _record_epoch(model: nn.Module, row: dict, best: dict, history: list[dict], t0: float, bar,
                  score_split: Callable, val_set, test_set, select_metric: str,
                  on_epoch_end: Callable | None) -> tuple[dict, bool]:
    """Rank 0 after an epoch: evaluate and select, append the row (with the epoch's time since
    ``t0``) to ``history``, show it, ask ``on_epoch_end``. Returns ``(best, stop)``."""
    best, val_m = _evaluate_and_select(model, row, best, score_split, val_set, test_set,
                                       select_metric)
    row["epoch_time"] = time.perf_counter() - t0
    history.append(row)
    bar.set_postfix(loss=f"{row['train_loss']:.4f}", acc=f"{row['train_acc']:.3f}",
                    **({"val": f"{val_m['accuracy']:.3f}"} if val_m else {}))
    stop = False
    if on_epoch_end is not None:
        stop = bool(on_epoch_end(row["epoch"], dict(row), model))
    return best, stop


def _broadcast_stop(stop: bool, dev: torch.device, world: int) -> bool:
    """Rank 0's on_epoch_end decision, on every rank."""
    if world > 1:
        flag = torch.tensor([int(stop)], device=dev)
        dist.broadcast(flag, 0)
        stop = bool(flag.item())
    return stop


def _fit_result(model: nn.Module, payload: dict | None, world: int, dev: torch.device,
                run_params: dict) -> FitResult:
    """The result, the best weights loaded into ``model``. ``payload`` (history, best, last5)
    is rank 0's, which evaluated; under torchrun it is sent so every rank returns the same."""
    if world > 1:
        box = [payload]
        dist.broadcast_object_list(box, src=0)
        payload = box[0]
    best = payload["best"]
    if best["state"] is not None:
        model.load_state_dict(best["state"])
    hist = pd.DataFrame(payload["history"])
    return FitResult(history=hist, best_epoch=int(best["epoch"]), val_metrics=best["val"],
                     test_metrics=best["test"], test_last5=payload["last5"],
                     wall_time=float(hist["epoch_time"].sum()) if "epoch_time" in hist else 0.0,
                     model=model, device=str(dev), params=run_params)


def fit(model: nn.Module, train_set, val_set, *, epochs: int, batch_size: int, lr: float = 1e-3,
        optimizer=None, scheduler=None, loss_fn: Callable | None = None,
        predict_fn: Callable | None = None, sampler=None, device: str | torch.device = "auto",
        seed: int = 0, test_set=None, checkpoint_dir=None, select_metric: str = "accuracy",
        progress: bool = True, on_epoch_end: Callable | None = None,
        weight_decay: float = 1e-4, eval_batch_size: int = 256, num_workers: int = 0,
        amp: bool = True, schedule: str | None = None, label_smoothing: float = 0.0,
        augment=None, tta_flip: bool = False, precision: str = "auto",
        channels_last: bool = False) -> FitResult:
    """Train ``model`` on ``train_set``, select the epoch on ``val_set``, report ``test_set``.

    Parameters
    ----------
    epochs, batch_size, lr : run length, GLOBAL batch size (split over ranks under torchrun)
        and learning rate of the default optimiser.
    optimizer : None or "adam" -> ``Adam(lr, weight_decay=weight_decay)``; "sgd" -> SGD with
        Nesterov momentum 0.9 and ``weight_decay``; or a factory
        ``lambda params: torch.optim.SGD(params, ...)``; or a built optimiser.
    scheduler : None or a factory ``lambda opt: ExponentialLR(opt, 0.9)``; stepped once per epoch.
    schedule : None/"none", "onecycle" (``OneCycleLR`` peaking at ``lr``) or "cosine" (to 0),
        stepped once per batch over the whole run; not together with ``scheduler``.
    label_smoothing : of the default cross-entropy (a custom ``loss_fn`` keeps its own loss).
    augment : None, "flip", "crop_flip" (:mod:`ferlib.train.augment`) or a callable
        ``x (B, C, H, W) -> x``; applied to each training batch before ``loss_fn``.
    tta_flip : evaluation averages each image's and its mirror image's prediction.
    precision : "auto" | "fp32" | "bf16" | "fp16" (:func:`ferlib.train.precision.resolve_precision`);
        ``amp=False`` means "fp32". ``channels_last``: NHWC model and batches.
    loss_fn : ``loss_fn(model, x, y, epoch[, idx=idx]) -> (loss, logits)``; default cross-entropy.
        ``idx`` is passed when the dataset yields ``(x, y, idx)`` (:class:`IndexedDataset`).
        A loss object with ``state_dict``/``load_state_dict`` is checkpointed too.
    predict_fn : ``predict_fn(model, x) -> logits`` for evaluation; default ``model(x)``.
    sampler : None (shuffle), ``"balanced"`` (class-balanced with replacement,
        :class:`~ferlib.train.samplers.DistributedClassBalancedSampler`), or a torch Sampler
        (under torchrun it must shard itself: have ``num_replicas`` equal to the world size).
    device : "auto" | "cpu" | "cuda" (:func:`ferlib.config.resolve_device`); AMP on CUDA if ``amp``.
    seed : seeds Python/NumPy/torch at the start and the per-epoch sample order.
    test_set : optional; evaluated every epoch but NEVER used for selection.
    checkpoint_dir : if given, ``<dir>/last.pt`` is written after each epoch; if it exists, the
        run resumes from it (a checkpoint from different arguments is a ValueError).
    select_metric : a scalar metric of ferlib.metrics (higher is better), checked on val only.
    progress : tqdm bar (tqdm.auto) with loss and running accuracy.
    on_epoch_end : ``on_epoch_end(epoch, row, model)`` after each epoch's evaluation (before the
        checkpoint); returning True stops training (the run then counts as finished).
    """
    world, rank = _dist_world()
    is_main = rank == 0  # rank 0 evaluates, selects, reports and writes the checkpoint
    _check_run_arguments(epochs, batch_size, train_set, select_metric, world)
    dev = _fit_device(device, world)
    prec = resolve_precision(precision if amp else "fp32", dev)
    _check_recipe_arguments(label_smoothing, schedule, scheduler)
    augment_fn = augment if callable(augment) else make_augment(augment)
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    set_seed(seed)
    model = unwrap_model(model).to(dev, memory_format=fmt)
    t, sampler_kind = _build_training(
        model, train_set, epochs=epochs, batch_size=batch_size, lr=lr, optimizer=optimizer,
        weight_decay=weight_decay, scheduler=scheduler, schedule=schedule, sampler=sampler,
        loss_fn=loss_fn, label_smoothing=label_smoothing, seed=seed, num_workers=num_workers,
        dev=dev, prec=prec, fmt=fmt, world=world, rank=rank)
    run_params = _run_params(t, epochs=epochs, batch_size=batch_size, lr=lr, seed=seed,
                             optimizer=optimizer, weight_decay=weight_decay,
                             sampler_kind=sampler_kind, select_metric=select_metric, prec=prec,
                             channels_last=channels_last, label_smoothing=label_smoothing,
                             augment_fn=augment_fn, tta_flip=tta_flip)
    fingerprint = _run_fingerprint(t, run_params, train_set, val_set, test_set, predict_fn,
                                   sampler, sampler_kind)
    ckpt_path, history, best, start_epoch, finished = _resume_or_start(
        t, checkpoint_dir, fingerprint, epochs, is_main)
    _parallelize(t)
    score_split = functools.partial(evaluate, batch_size=eval_batch_size, device=dev,
                                    predict_fn=predict_fn, amp=amp, precision=prec,
                                    tta_flip=tta_flip, channels_last=channels_last)
    bar = tqdm(total=(epochs - start_epoch + 1) * len(t.loader) if not finished else 0,
               disable=not (progress and is_main), desc="fit", dynamic_ncols=True)
    try:
        for epoch in range(start_epoch, epochs + 1) if not finished else ():
            t0 = time.perf_counter()
            bar.set_description(f"epoch {epoch}/{epochs}")
            row = _train_epoch(t, epoch, augment_fn, bar)
            stop = False
            if is_main:
                best, stop = _record_epoch(model, row, best, history, t0, bar, score_split,
                                           val_set, test_set, select_metric, on_epoch_end)
            stop = _broadcast_stop(stop, dev, world)
            if ckpt_path is not None and is_main:
                _save_checkpoint(t, ckpt_path, fingerprint, epoch, stop, history, best)
            if stop:
                break
    finally:
        bar.close()

    class_names = tuple(getattr(val_set, "class_names", None)
                        or getattr(train_set, "class_names", ()) or ())
    payload = {"history": history, "best": best, "last5": _last5(history, class_names)
               if test_set is not None else None} if is_main else None
    return _fit_result(model, payload, world, dev, run_params)
