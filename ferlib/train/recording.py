"""The one writer of training records (issue 13: "one function trains any entry and writes its
record ... counting parameters reads the built model").

Every runner of the book (the baseline, AHM and its controls, latent augmentation and its
control, DAN, SCN, EAN, CUCN) ends in :func:`write_run_record`: it writes the
:func:`ferlib.records.write_record` record of a run on ``splits`` (dataset = the training
split's name, split = the test split's) and adds to its params ``n_params``, the trainable
parameters of the model that made the predictions (:func:`count_trainable`). ``n_params`` is
left out of the file name's hash (:data:`ferlib.records.UNNAMED_PARAMS`), so records written
before it are still replaced by a rerun of the same experiment.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ferlib.data.splits import Splits
    from ferlib.train.engine import FitResult

__all__ = ["write_run_record", "count_trainable", "FIT_FIELDS"]

#: what a record's ``extra`` takes from a :class:`~ferlib.train.FitResult` by default
FIT_FIELDS = ("best_epoch", "val_metrics", "test_last5")
_KNOWN_FIT_FIELDS = (*FIT_FIELDS, "history")


def count_trainable(model) -> int:
    """Trainable parameters of ``model``: a torch module (parameters with ``requires_grad``),
    a fitted parameter array (NumPy array or tensor: all its entries, e.g. the SAE projection
    W of :class:`ferlib.methods.ahm.sae.SemanticClassifier`), or a list / tuple of these (a
    classifier built from parts: AHM is its backbone plus W). Anything else is a TypeError naming
    ``model``."""
    import numpy as np
    import torch

    if isinstance(model, torch.nn.Module):
        return int(sum(p.numel() for p in model.parameters() if p.requires_grad))
    if isinstance(model, torch.Tensor):
        return int(model.numel())
    if isinstance(model, np.ndarray):
        return int(model.size)
    if isinstance(model, (list, tuple)) and model:
        return sum(count_trainable(part) for part in model)
    raise TypeError(f"model must be a torch module, a parameter array or a non-empty list of "
                    f"them, got {type(model).__name__}")


def _history(result) -> dict:
    """The per-epoch history without the per-class recall columns (a record's size would grow
    with the classes x epochs; the selected epoch's recalls are in the metrics)."""
    cols = [c for c in result.history.columns if "_recall_" not in c]
    return result.history[cols].to_dict(orient="list")


def write_run_record(folder, *, method: str, splits: Splits | None, params: Mapping, seed: int,
                     result: FitResult | None = None, model=None, metrics: Mapping | None = None,
                     device=None, wall_time: float | None = None,
                     fit_fields: Sequence[str] = FIT_FIELDS, extra: Mapping | None = None,
                     source: str | None = None, name: str | None = None,
                     dataset: str | None = None, split: str | None = None) -> Path:
    """Write the record of one training run into ``folder`` and return its path.

    ``result``: the :class:`~ferlib.train.FitResult` of :func:`ferlib.train.fit`; it supplies
    ``model`` (the network with the selected weights), ``metrics`` (its test metrics),
    ``device`` and ``wall_time`` unless they are given, and the fields of ``fit_fields``
    (``best_epoch``, ``val_metrics``, ``test_last5``, and ``history`` without the per-class
    recall columns) to the record's ``extra``, before and (history) after ``extra``. A run not
    trained by ``fit`` (AHM's heads on frozen features) gives ``model``, ``metrics``,
    ``device`` and ``wall_time`` itself, no ``result`` and ``fit_fields=()``.

    ``model``: what produced the predictions, counted by :func:`count_trainable` into
    ``params["n_params"]``. Dataset and split are ``splits.train.name`` and
    ``splits.test.split`` (a run on datasets that are not a :class:`~ferlib.data.Splits`, the
    SynthFACS calibration, passes ``splits=None`` and ``dataset`` / ``split``); ``params``,
    ``seed``, ``source`` and ``name`` go to :func:`ferlib.records.write_record` (the name,
    when not given, ignores ``n_params``).
    """
    from ferlib.records import write_record

    if splits is not None:
        if dataset is not None or split is not None:
            raise ValueError("write_run_record: give splits or dataset / split, not both")
        dataset, split = splits.train.name, splits.test.split
    elif dataset is None or split is None:
        raise ValueError("write_run_record: splits is None, so dataset and split are needed")
    if result is not None:
        model = result.model if model is None else model
        metrics = result.test_metrics if metrics is None else metrics
        device = result.device if device is None else device
        wall_time = result.wall_time if wall_time is None else wall_time
    for label, value in (("model", model), ("metrics", metrics), ("device", device),
                         ("wall_time", wall_time)):
        if value is None:
            raise ValueError(f"write_run_record: {label} is needed when no FitResult (result=) "
                             "gives it")
    unknown = [f for f in fit_fields if f not in _KNOWN_FIT_FIELDS]
    if unknown:
        raise ValueError(f"write_run_record: fit_fields {unknown} are not FitResult fields a "
                         f"record keeps (choose from {_KNOWN_FIT_FIELDS})")
    if result is None and fit_fields:
        raise ValueError("write_run_record: fit_fields needs the FitResult (result=); a run "
                         "without one passes fit_fields=()")
    if not isinstance(params, Mapping):
        raise TypeError(f"write_run_record: params must be a dict, got {type(params).__name__}")
    if "n_params" in params:
        raise ValueError("write_run_record: params must not hold n_params; it is counted from "
                         "model")
    record_extra = {f: getattr(result, f) for f in fit_fields if f != "history"}
    record_extra.update(extra or {})
    if "history" in fit_fields:
        record_extra["history"] = _history(result)
    return Path(write_record(
        folder, method=method, dataset=dataset, split=split,
        metrics=metrics, params={**params, "n_params": count_trainable(model)}, seed=seed,
        device=device, wall_time=wall_time, source=source, extra=record_extra, name=name))
