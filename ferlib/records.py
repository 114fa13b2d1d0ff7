"""Results records: one JSON file per experiment, a loader that turns a folder of them into
a pandas table, and the one query every reader uses (:func:`select`): see
notebooks/02_baseline, "Live run at this profile" (where records are written) and "Full
results" (where committed ones are read), and the scoreboard page.

A record holds what a published FER number needs to be checked: method, dataset, evaluation
split, the metrics of :func:`ferlib.metrics.classification_metrics` (with per-class recall by
class name), the parameters, the seed, the device, the wall time, and provenance filled in
automatically (git commit and whether the tree was dirty, torch / torchvision / python
versions, platform, CPU model and whether it has bfloat16 units, GPU, the command line or
the notebook, UTC time)::

    {"format": 1, "method": ..., "dataset": ..., "split": ..., "seed": ..., "device": ...,
     "wall_time": ..., "metrics": {...}, "params": {...}, "extra": {...},
     "provenance": {"git_commit": ..., "git_dirty": ..., "torch": ..., "python": ..., ...}}
"""
from __future__ import annotations

import dataclasses
import datetime as _dt
import hashlib
import json
import math
import os
import platform
import re
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pandas as pd

__all__ = ["write_record", "record_name", "UNNAMED_PARAMS", "read_record", "load_records",
           "scan_records", "provenance", "to_jsonable", "RECORD_FORMAT", "normalize_method",
           "cell_of", "is_natural_clean", "with_cells", "select", "encode_labels",
           "decode_labels", "predictions_of"]

RECORD_FORMAT = 1
# arrays that ferlib.train.evaluate returns beside the metrics: not metrics; y_true / y_pred are
# kept in the record's "predictions" (what paired intervals need), scores are not recorded
_NOT_METRICS = ("scores", "y_pred", "y_true")
# one character per image: class k is _LABEL_DIGITS[k] (compact, and readable in a diff)
_LABEL_DIGITS = "0123456789abcdefghijklmnopqrstuvwxyz"
_BASE_COLUMNS = ["file", "method", "dataset", "split", "seed", "device", "wall_time", "time_utc",
                 "git_commit", "source"]


def to_jsonable(obj, *, where: str = "value", nan: str = "null"):
    """``obj`` with NumPy / torch scalars and arrays, tuples, Paths and dataclasses turned into
    plain JSON types. Non-finite floats become None (``nan="null"``) or raise ValueError naming
    ``where`` (``nan="error"``)."""
    if isinstance(obj, Mapping):
        return {str(k): to_jsonable(v, where=f"{where}.{k}", nan=nan) for k, v in obj.items()}
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return to_jsonable(dataclasses.asdict(obj), where=where, nan=nan)
    if isinstance(obj, (list, tuple, set, frozenset)):
        return [to_jsonable(v, where=f"{where}[{i}]", nan=nan) for i, v in enumerate(obj)]
    if isinstance(obj, (bool, np.bool_)):
        return bool(obj)
    if isinstance(obj, (int, np.integer)):
        return int(obj)
    if isinstance(obj, (float, np.floating)):
        value = float(obj)
        if not math.isfinite(value):
            if nan == "error":
                raise ValueError(f"{where} is {value}: a record may not hold non-finite metrics")
            return None
        return value
    if obj is None or isinstance(obj, str):
        return obj
    if isinstance(obj, np.ndarray):
        return to_jsonable(obj.tolist(), where=where, nan=nan)
    if isinstance(obj, os.PathLike):
        return os.fspath(obj)
    try:
        import torch
        if torch.is_tensor(obj):
            return to_jsonable(obj.detach().cpu().tolist(), where=where, nan=nan)
        if isinstance(obj, torch.device):
            return str(obj)
    except ImportError:  # pragma: no cover
        pass
    raise TypeError(f"{where}: cannot store a {type(obj).__name__} in a JSON record")


def _git(*args: str) -> str | None:
    try:
        out = subprocess.run(["git", *args], cwd=Path(__file__).resolve().parent,
                             capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() if out.returncode == 0 else None


def provenance(source: str | None = None) -> dict:
    """Where and how a result was made: git commit (+ dirty flag, tracked files only), library
    versions, Python, platform, command line, ``source`` (e.g. the notebook name), UTC time."""
    import torch

    try:
        import torchvision
        tv = torchvision.__version__
    except ImportError:  # pragma: no cover
        tv = None
    from ferlib import __version__ as ferlib_version
    from ferlib.train.precision import cpu_has_bf16_units, cpu_model

    commit = _git("rev-parse", "HEAD")
    status = _git("status", "--porcelain", "--untracked-files=no") if commit else None
    return {
        "git_commit": commit,
        "git_dirty": None if status is None else bool(status),
        "ferlib": ferlib_version,
        "torch": torch.__version__,
        "torchvision": tv,
        "cuda": torch.version.cuda if torch.cuda.is_available() else None,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpu_count": os.cpu_count(),
        "cpu_model": cpu_model(),
        "cpu_bf16_units": cpu_has_bf16_units(),
        "gpu": torch.cuda.get_device_name() if torch.cuda.is_available() else None,
        "command": list(sys.argv),
        "source": source,
        "time_utc": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
    }


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9.=-]+", "_", str(text)).strip("_") or "x"


#: params that describe a run's result, not its settings: left out of the name's hash, so a
#: record keeps its file name when they are added (ferlib.train.recording writes n_params, the
#: trainable parameters of the built model, into records named before it was recorded)
UNNAMED_PARAMS = ("n_params",)


def record_name(method: str, dataset: str, split: str, params: Mapping, seed) -> str:
    """The file name :func:`write_record` gives a record without ``name``:
    ``<method>_<dataset>_<split>_<hash>.json``, the hash of ``params`` (less
    :data:`UNNAMED_PARAMS`) and ``seed``, so a rerun of the same experiment replaces its record."""
    if not isinstance(params, Mapping):
        raise TypeError(f"record_name: params must be a dict, got {type(params).__name__}")
    named = to_jsonable({k: v for k, v in params.items() if k not in UNNAMED_PARAMS},
                        where="params")
    key = json.dumps({"params": named, "seed": to_jsonable(seed, where="seed")}, sort_keys=True)
    digest = hashlib.sha1(key.encode()).hexdigest()[:10]
    return f"{_slug(method)}_{_slug(dataset)}_{_slug(split)}_{digest}.json"


def write_record(folder, *, method: str, dataset: str, split: str, metrics: Mapping,
                 params: Mapping, seed: int, device, wall_time: float, source: str | None = None,
                 extra: Mapping | None = None, name: str | None = None) -> Path:
    """Write one experiment's JSON record into ``folder`` and return its path.

    The file name is :func:`record_name` (a hash of the params and seed: a rerun of the same
    experiment replaces its record), or ``name`` (+ ``.json``). Training runs write through
    :func:`ferlib.train.recording.write_run_record`, which adds the parameter count.
    Non-finite metrics are an error; non-finite values in params/extra become null. When
    ``metrics`` holds the ``y_true`` and ``y_pred`` arrays of ``ferlib.train.evaluate`` (or
    ``ferlib.metrics.classification_metrics``' inputs), they are kept as the record's
    ``predictions`` (:func:`encode_labels`; one character per test image, in the split's
    order), so that gains can be tested image by image (:mod:`ferlib.stats`); ``scores`` is
    left out. Written atomically.
    """
    for label, value in (("method", method), ("dataset", dataset), ("split", split)):
        if not isinstance(value, str) or not value:
            raise ValueError(f"write_record: {label} must be a non-empty string, got {value!r}")
    if not isinstance(metrics, Mapping):
        raise TypeError(f"write_record: metrics must be a dict, got {type(metrics).__name__}")
    if not isinstance(params, Mapping):
        raise TypeError(f"write_record: params must be a dict, got {type(params).__name__}")
    wall = float(wall_time)
    if not math.isfinite(wall) or wall < 0:
        raise ValueError(f"write_record: wall_time must be a finite number >= 0, got {wall_time!r}")
    clean_metrics = to_jsonable({k: v for k, v in metrics.items() if k not in _NOT_METRICS},
                                where="metrics", nan="error")
    clean_params = to_jsonable(dict(params), where="params")
    predictions = _predictions_field(metrics, clean_metrics.get("n"))
    record = {
        "format": RECORD_FORMAT,
        "method": method,
        "dataset": dataset,
        "split": split,
        "seed": to_jsonable(seed, where="seed"),
        "device": str(device),
        "wall_time": wall,
        "metrics": clean_metrics,
        "params": clean_params,
        "extra": to_jsonable(dict(extra or {}), where="extra"),
        "provenance": provenance(source),
    }
    if predictions is not None:
        record["predictions"] = predictions
    if name is None:
        name = record_name(method, dataset, split, clean_params, record["seed"])
    elif not name.endswith(".json"):
        name = name + ".json"
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    write_text_atomic(path, json.dumps(record, indent=1, sort_keys=False) + "\n")
    return path


def encode_labels(labels) -> str:
    """Integer class labels (0..35) as a string of one character each (``[0, 3, 11]`` ->
    ``"03b"``): how a record keeps its per-image ``y_true`` / ``y_pred``."""
    arr = np.asarray(labels)
    if arr.ndim != 1 or (arr.size and not np.issubdtype(arr.dtype, np.integer)):
        raise ValueError(f"encode_labels: want a 1-D array of integer labels, got dtype "
                         f"{arr.dtype} and shape {arr.shape}")
    if arr.size and (arr.min() < 0 or arr.max() >= len(_LABEL_DIGITS)):
        raise ValueError(f"encode_labels: labels must lie in 0..{len(_LABEL_DIGITS) - 1}, got "
                         f"{arr.min()}..{arr.max()}")
    return "".join(_LABEL_DIGITS[k] for k in arr.tolist())


def decode_labels(text: str, where: str = "labels") -> np.ndarray:
    """The inverse of :func:`encode_labels`; a character that is not a label is a ValueError
    naming ``where`` and its position."""
    lookup = {c: k for k, c in enumerate(_LABEL_DIGITS)}
    try:
        return np.fromiter((lookup[c] for c in text), dtype=np.int64, count=len(text))
    except KeyError:
        bad = next(i for i, c in enumerate(text) if c not in lookup)
        raise ValueError(f"{where}: character {text[bad]!r} at position {bad} is not a class "
                         "label") from None


def _predictions_field(metrics: Mapping, n) -> dict | None:
    if "y_true" not in metrics or "y_pred" not in metrics:
        return None
    y_true, y_pred = (np.asarray(metrics[k]).ravel() for k in ("y_true", "y_pred"))
    if len(y_true) != len(y_pred) or (n is not None and len(y_true) != n):
        raise ValueError(f"write_record: y_true ({len(y_true)}), y_pred ({len(y_pred)}) and "
                         f"metrics n ({n}) must count the same test images")
    return {"y_true": encode_labels(y_true), "y_pred": encode_labels(y_pred)}


def predictions_of(record, where: str = "record") -> tuple[np.ndarray, np.ndarray] | None:
    """``(y_true, y_pred)`` of a record (a dict from :func:`read_record`, or a path), or None
    when it holds no per-image predictions (records written before they were kept). Arrays of
    unequal length are a ValueError naming ``where``."""
    if not isinstance(record, Mapping):
        where = str(record)
        record = read_record(record)
    pred = record.get("predictions")
    if not pred:
        return None
    y_true = decode_labels(pred.get("y_true", ""), f"{where}: predictions.y_true")
    y_pred = decode_labels(pred.get("y_pred", ""), f"{where}: predictions.y_pred")
    if len(y_true) != len(y_pred) or not len(y_true):
        raise ValueError(f"{where}: predictions hold {len(y_true)} labels and "
                         f"{len(y_pred)} predictions")
    return y_true, y_pred


def write_text_atomic(path, text: str) -> Path:
    """Write ``text`` to ``path`` through a flushed, fsync-ed temporary file renamed over it: a
    crash leaves the old file or the new one, never half a record."""
    from ferlib.checkpoint import write_atomic

    return write_atomic(path, lambda f: f.write(text), text=True)


# a JSON dict with any of these keys is meant as a record: if it is incomplete it is an error,
# never skipped; other JSON files (a VAE-GAN's vaegan_config.json in a checkpoint folder) are
# not records and are skipped, counted in the table's attrs["skipped_files"]
_RECORD_KEYS = ("method", "metrics", "provenance")


def _problem(rec) -> str | None:
    """Why ``rec`` (parsed JSON) is not a complete record, or None if it is one."""
    if not isinstance(rec, dict):
        return f"holds a JSON {type(rec).__name__}, not an object"
    missing = [k for k in ("method", "dataset", "metrics") if k not in rec]
    if missing:
        return f"incomplete record: no {', '.join(map(repr, missing))}"
    if not isinstance(rec["method"], str) or not rec["method"]:
        return f"'method' must be a non-empty string, got {rec['method']!r}"
    if not isinstance(rec["metrics"], dict):
        return f"'metrics' must be an object, got {type(rec['metrics']).__name__}"
    return None


def _read_json(path: Path):
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise ValueError(f"{path}: not valid JSON ({err})") from None
    except (OSError, UnicodeDecodeError) as err:
        raise ValueError(f"{path}: cannot be read ({err})") from None


def read_record(path) -> dict:
    """One record as a dict; a file that is not valid JSON or not a complete record (method,
    dataset and a metrics object) is a ValueError naming it."""
    path = Path(path)
    rec = _read_json(path)
    why = _problem(rec)
    if why is not None:
        raise ValueError(f"{path}: not a results record ({why})")
    return rec


def scan_records(folder, pattern: str = "*.json", *, missing_ok: bool = False
                 ) -> tuple[list[tuple[Path, dict]], list[Path]]:
    """``([(path, record), ...], skipped)`` for the JSON files in ``folder`` matching ``pattern``.

    A file that is not valid JSON, or a JSON object with a record's keys (method, metrics or
    provenance) that is not a complete record, is a ValueError naming it: a record never
    vanishes. JSON files that are not meant as records (no such key) are returned in
    ``skipped``. A folder that does not exist, or holds no record, is an error
    (FileNotFoundError / ValueError naming it) unless ``missing_ok``."""
    folder = Path(folder)
    if not folder.is_dir():
        if missing_ok:
            return [], []
        what = "is not a folder" if folder.exists() else "does not exist"
        raise FileNotFoundError(f"records folder {folder} {what}")
    found, skipped = [], []
    for path in sorted(folder.glob(pattern)):
        if not path.is_file():
            continue
        rec = _read_json(path)
        if not (isinstance(rec, dict) and any(k in rec for k in _RECORD_KEYS)):
            skipped.append(path)
            continue
        why = _problem(rec)
        if why is not None:
            raise ValueError(f"{path}: not a results record ({why}); fix or remove it")
        found.append((path, rec))
    if not found and not missing_ok:
        extra = f" ({len(skipped)} other JSON file(s), e.g. {skipped[0].name})" if skipped else ""
        raise ValueError(f"records folder {folder} holds no results record matching "
                         f"{pattern!r}{extra}")
    return found, skipped


def _flatten(rec: dict, file: str) -> dict:
    prov = rec.get("provenance") or {}
    row = {"file": file, "method": rec.get("method"), "dataset": rec.get("dataset"),
           "split": rec.get("split"), "seed": rec.get("seed"), "device": rec.get("device"),
           "wall_time": rec.get("wall_time"), "time_utc": prov.get("time_utc"),
           "git_commit": prov.get("git_commit"), "source": prov.get("source")}
    for key, value in (rec.get("metrics") or {}).items():
        if key == "per_class_recall" and isinstance(value, Mapping):
            row.update({f"recall/{c}": v for c, v in value.items()})
        elif key == "per_class_ap" and isinstance(value, Mapping):
            row.update({f"ap/{c}": v for c, v in value.items()})
        elif value is None or isinstance(value, (int, float, str, bool)):
            row[key] = value
    for key, value in (rec.get("params") or {}).items():
        if value is None or isinstance(value, (int, float, str, bool)):
            row[f"param/{key}"] = value
        else:
            row[f"param/{key}"] = json.dumps(value)
    return row


def load_records(folder, pattern: str = "*.json", *, missing_ok: bool = False) -> pd.DataFrame:
    """A table with one row per record in ``folder`` matching ``pattern`` (``"**/*.json"`` to
    search subfolders). Columns: file, method, dataset, split, seed, device, wall_time,
    time_utc, git_commit, source; scalar metrics by name (accuracy, macro_f1, ...);
    ``recall/<class>`` and ``ap/<class>``; ``param/<name>`` (non-scalar params as JSON text).

    An unreadable or incomplete record is a ValueError naming the file (see
    :func:`scan_records`); JSON files that are not records are skipped and listed in
    ``df.attrs["skipped_files"]``. A folder that does not exist or holds no record is an error,
    unless ``missing_ok`` (then an empty table: a results folder before its first run)."""
    folder = Path(folder)
    found, skipped = scan_records(folder, pattern, missing_ok=missing_ok)
    rows = [_flatten(rec, str(path.relative_to(folder))) for path, rec in found]
    if not rows:
        df = pd.DataFrame(columns=_BASE_COLUMNS)
    else:
        df = pd.DataFrame(rows)
        df = df.sort_values(["time_utc", "file"], na_position="first").reset_index(drop=True)
    df.attrs["skipped_files"] = [str(p) for p in skipped]
    return df


# ----------------------------------------------------------------------------------------------
# the record vocabulary: method names, the grid cell of a record, and the one query
# ----------------------------------------------------------------------------------------------
def normalize_method(name: str) -> str:
    """A method name with ``-`` read as ``_`` (``"dan+latent-aug"`` -> ``"dan+latent_aug"``):
    record ``method`` strings are compared this way everywhere."""
    if not isinstance(name, str) or not name:
        raise ValueError(f"a method name must be a non-empty string, got {name!r}")
    return name.replace("-", "_")


def _number(value, key: str, where: str) -> float | None:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    if isinstance(value, bool):
        raise ValueError(f"{where}: params.{key} = {value!r} is not a number")
    try:
        return float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{where}: params.{key} = {value!r} is not a number") from None


def cell_of(params: Mapping | None, where: str = "record") -> tuple[float | None, float]:
    """The condition a record was trained under, ``(imbalance_ratio, noise_rate)``, from its
    params. This is the book's single definition of the *natural, clean-label* cell.

    * ``imbalance_ratio`` None (missing, null or NaN): the dataset's own class balance, the
      **natural** cell. Any number, **1 included**, means the training split was subsampled
      (:func:`ferlib.data.make_long_tailed`; ratio 1 is a balanced subsample, a cell of chapter
      07's degradation grid), so it is not natural.
    * ``noise_rate`` missing or null reads 0 (**clean** labels); above 0, a share of training
      labels was flipped (:func:`ferlib.data.add_label_noise`).

    A value that is not a number is a ValueError naming ``where`` and the key."""
    params = params or {}
    ratio = _number(params.get("imbalance_ratio"), "imbalance_ratio", where)
    rate = _number(params.get("noise_rate"), "noise_rate", where)
    return ratio, 0.0 if rate is None else rate


def is_natural_clean(params: Mapping | None, where: str = "record") -> bool:
    """True for a record of the natural cell with clean labels (see :func:`cell_of`)."""
    ratio, rate = cell_of(params, where)
    return ratio is None and rate == 0


def _column(df: pd.DataFrame, name: str) -> list:
    return df[name].tolist() if name in df.columns else [None] * len(df)


def with_cells(df: pd.DataFrame) -> pd.DataFrame:
    """A copy of a :func:`load_records` table with float columns ``imbalance_ratio`` (NaN =
    natural) and ``noise_rate`` (0 = clean), each row read by :func:`cell_of`."""
    out = df.copy()
    files = _column(df, "file")
    cells = [cell_of({"imbalance_ratio": r, "noise_rate": n}, str(f or "record"))
             for r, n, f in zip(_column(df, "param/imbalance_ratio"),
                                _column(df, "param/noise_rate"), files)]
    out["imbalance_ratio"] = pd.Series([np.nan if r is None else r for r, _ in cells],
                                       index=df.index, dtype=float)
    out["noise_rate"] = pd.Series([n for _, n in cells], index=df.index, dtype=float)
    return out


def select(records, *, method=None, dataset: str | None = None, split: str | None = None,
           profile=None, seed: int | None = None, natural: bool | None = None,
           clean: bool | None = None, imbalance_ratio: float | None = None,
           noise_rate: float | None = None, pattern: str = "**/*.json",
           missing_ok: bool = False) -> pd.DataFrame:
    """The records that match, as a :func:`load_records` table with the ``imbalance_ratio`` /
    ``noise_rate`` columns of :func:`with_cells`: the one query behind compare, the chapters'
    loaders and the scoreboard.

    ``records``: a folder (read with :func:`load_records`, recursively by default) or a table
    already loaded. Filters (None = any): ``method`` (a name or several, ``-`` and ``_`` alike,
    :func:`normalize_method`), ``dataset``, ``split``, ``profile`` (a name or a
    :class:`ferlib.config.Profile`; the record's ``params.profile``), ``seed``;
    ``natural=True`` keeps the natural class balance only and ``natural=False`` the subsampled
    cells, ``clean=True`` noise 0 only and ``clean=False`` flipped labels only (both read by
    :func:`cell_of`); ``imbalance_ratio`` / ``noise_rate`` keep one cell value. The row order
    of the table (oldest first) is kept. A folder that does not exist or holds no record is an
    error (:func:`load_records`) unless ``missing_ok``.

    >>> select("book/records", method="cucn", natural=True, clean=True)   # doctest: +SKIP
    """
    df = records if isinstance(records, pd.DataFrame) else \
        load_records(records, pattern, missing_ok=missing_ok)
    df = with_cells(df)
    keep = np.ones(len(df), dtype=bool)
    if method is not None:
        names = [method] if isinstance(method, str) else list(method)
        wanted = {normalize_method(m) for m in names}
        keep &= np.array([isinstance(m, str) and normalize_method(m) in wanted
                          for m in _column(df, "method")], dtype=bool)
    for column, value in (("dataset", dataset), ("split", split)):
        if value is not None:
            keep &= np.array([v == value for v in _column(df, column)], dtype=bool)
    if profile is not None:
        name = getattr(profile, "name", profile)
        keep &= np.array([v == name for v in _column(df, "param/profile")], dtype=bool)
    if seed is not None:
        keep &= (pd.to_numeric(pd.Series(_column(df, "seed"), dtype=object),
                               errors="coerce") == seed).to_numpy()
    ratio, rate = df["imbalance_ratio"].to_numpy(), df["noise_rate"].to_numpy()
    if natural is not None:
        keep &= np.isnan(ratio) == bool(natural)
    if clean is not None:
        keep &= np.isclose(rate, 0) == bool(clean)
    if imbalance_ratio is not None:
        keep &= np.isclose(ratio, float(imbalance_ratio))   # NaN (natural) never matches
    if noise_rate is not None:
        keep &= np.isclose(rate, float(noise_rate))
    return df[keep]
