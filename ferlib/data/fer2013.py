"""FER2013 from a local copy (chapter 01_data, "FER2013"); never downloads.

Accepted layouts (``root`` is the file itself or the folder holding it):

* the Kaggle ``fer2013.csv`` (plain or ``.csv.gz``), columns ``emotion, pixels, Usage``, with or
  without the ``PrivateTest`` rows;
* ``icml_face_data.csv`` (columns ``emotion, Usage, pixels``, with a space before the last
  two names in its header);
* image folders ``train/<class>/*.jpg`` and ``test/<class>/*.jpg`` (class folder names such as
  ``angry``, ``disgust``...); the splits are then called ``Training`` and ``Test``.

Labels are already in the canonical order (0 Angry ... 6 Neutral). A CSV is parsed once and
cached as ``.npz`` (:mod:`ferlib.data.cache`); later loads take well under a second.
Goodfellow et al., "Challenges in Representation Learning" (2013): Training 28,709,
PublicTest 3,589, PrivateTest 3,589.
"""
from __future__ import annotations

import time
import warnings
from pathlib import Path

import numpy as np

from .cache import LoadedData, cached_arrays, log, source_key
from .dataset import FaceDataset
from .errors import DataFormatError, missing_root_message
from .labels import BASIC7

__all__ = ["USAGES", "CSV_NAMES", "find_fer2013", "read_fer2013_csv", "load_fer2013", "fer2013_arrays"]

#: the ``Usage`` values of the FER2013 CSV, in file order
USAGES = ("Training", "PublicTest", "PrivateTest")
CSV_NAMES = ("fer2013.csv", "fer2013.csv.gz", "icml_face_data.csv", "icml_face_data.csv.gz")
_PARSER_VERSION = "fer2013-csv-2"  # 2: every row's value count checked
_N_PIX = 48 * 48
_CHUNK = 2048


def find_fer2013(root) -> Path:
    """The FER2013 CSV file or image-folder root under ``root`` (a file or a folder)."""
    if root is None:
        raise FileNotFoundError(missing_root_message("fer2013", None))
    root = Path(root).expanduser()
    if root.is_file():
        return root
    if not root.exists():
        raise FileNotFoundError(missing_root_message("fer2013", root))
    for name in CSV_NAMES:
        if (root / name).is_file():
            return root / name
    if (root / "train").is_dir():
        return root
    raise FileNotFoundError(
        f"fer2013: {root} holds none of {', '.join(CSV_NAMES)} and no train/<class>/ folders. "
        + missing_root_message("fer2013", root).split(". ", 1)[1])


def _parse_pixels(pixels: list[str], path: Path, first_row: int) -> np.ndarray:
    """(len(pixels), 48, 48) uint8 from space-separated strings; a bad row is an error naming
    its line of ``path`` (``first_row`` is the 0-based data row of ``pixels[0]``).

    Every row is checked on its own, not only each chunk's total (which a row of 2,303 values
    and one of 2,305 pass together while the rows between them shift against their labels).
    The check costs one ``str.count`` per row: a row with no whitespace but single spaces holds
    at most ``spaces + 1`` values, so when every row has 2,303 spaces and the chunk parses to
    exactly ``rows x 2,304`` values, every row holds exactly 2,304."""
    out = np.empty((len(pixels), 48, 48), np.uint8)
    for start in range(0, len(pixels), _CHUNK):
        chunk = pixels[start:start + _CHUNK]
        joined = " ".join(chunk)
        vals = None
        if (all(s.count(" ") == _N_PIX - 1 for s in chunk)
                and not any(ch in joined for ch in "\t\n\r\v\f")):
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("error")
                    vals = np.fromstring(joined, dtype=np.int64, sep=" ")
            except (ValueError, DeprecationWarning):
                vals = None
        if vals is None or vals.size != len(chunk) * _N_PIX or vals.min(initial=0) < 0 or vals.max(initial=0) > 255:
            # slow path, row by row: names the first bad row, or parses rows that are odd but
            # legal (tabs, double or leading spaces)
            vals = np.empty((len(chunk), _N_PIX), np.int64)
            for j, s in enumerate(chunk):
                vals[j] = _check_pixel_row(s, path, first_row + start + j)
        out[start:start + len(chunk)] = vals.reshape(-1, 48, 48)
    return out


def _check_pixel_row(s: str, path: Path, row: int) -> list[int]:
    """The 2,304 values of one row, or a DataFormatError naming its line."""
    toks = str(s).split()
    where = f"{path}, line {row + 2} (data row {row})"
    if len(toks) != _N_PIX:
        raise DataFormatError(f"{where}: {len(toks)} pixel values, expected {_N_PIX} (48 x 48)")
    for t in toks:
        if not (t.isascii() and t.isdigit()):
            raise DataFormatError(f"{where}: pixel value {t!r} is not an integer 0..255")
        if int(t) > 255:
            raise DataFormatError(f"{where}: pixel value {t} is outside 0..255")
    return [int(t) for t in toks]


def read_fer2013_csv(path, progress: bool = False) -> dict:
    """Parse a FER2013 CSV (either header variant) to ``images`` (N,48,48) uint8, ``labels``
    (N,) int64, ``usage`` (N,) int8 index into :data:`USAGES`. Every row is kept or the call
    fails with the file and line."""
    import pandas as pd
    path = Path(path)
    t0 = time.perf_counter()
    try:
        df = pd.read_csv(path, dtype=str, keep_default_na=False, skipinitialspace=True)
    except Exception as e:  # unreadable / not CSV
        raise DataFormatError(f"{path}: cannot be read as CSV ({e})") from e
    df.columns = [str(c).strip().lower() for c in df.columns]
    need = {"emotion", "pixels", "usage"}
    if not need <= set(df.columns):
        raise DataFormatError(f"{path}: expected columns emotion, pixels, Usage; found "
                              f"{', '.join(map(str, df.columns))}")
    emo = df["emotion"].str.strip()
    ok = emo.str.fullmatch(r"\d+")
    labels = np.full(len(df), -1, np.int64)
    labels[ok.to_numpy()] = emo[ok].astype(np.int64).to_numpy()
    bad = np.flatnonzero(~ok.to_numpy() | (labels > 6))
    if len(bad):
        i = int(bad[0])
        raise DataFormatError(f"{path}, line {i + 2} (data row {i}): emotion {df['emotion'].iloc[i]!r} is "
                              f"not a label 0..6 ({', '.join(f'{k} {n}' for k, n in enumerate(BASIC7))})")
    usage_s = df["usage"].str.strip()
    codes = np.full(len(df), -1, np.int8)
    for k, u in enumerate(USAGES):
        codes[(usage_s == u).to_numpy()] = k
    bad = np.flatnonzero(codes < 0)
    if len(bad):
        i = int(bad[0])
        raise DataFormatError(f"{path}, line {i + 2} (data row {i}): unknown Usage {df['usage'].iloc[i]!r}; "
                              f"expected one of {', '.join(USAGES)}")
    images = _parse_pixels(df["pixels"].tolist(), path, 0)
    log.info("parsed %s: %d rows in %.1f s", path, len(df), time.perf_counter() - t0)
    return {"images": images, "labels": labels, "usage": codes,
            "meta": {"source": str(path), "rows": int(len(df)), "parse_s": time.perf_counter() - t0}}


def fer2013_arrays(path, cache=None, use_cache: bool = True, progress: bool = False) -> dict:
    """:func:`read_fer2013_csv` through the cache (key: path, size, mtime, parser version)."""
    path = Path(path)
    key = source_key([path], _PARSER_VERSION)
    return cached_arrays("fer2013", key, lambda: read_fer2013_csv(path, progress), cache, use_cache,
                         source=str(path.resolve()))


def load_fer2013(root, cache=None, use_cache: bool = True, progress: bool = False) -> LoadedData:
    """FER2013 splits as :class:`FaceDataset` (grey 48x48, canonical labels), keyed by the
    file's own split names: ``Training``, ``PublicTest`` and, when present, ``PrivateTest``
    (image folders: ``Training`` and ``Test``). ``summary`` lists rows read per split and class;
    ``extras['row']`` is each image's 0-based data row in the CSV (FERPlus aligns on it)."""
    src = find_fer2013(root)
    if src.is_dir():
        from .folders import load_image_folders
        return load_image_folders(src, name="fer2013", split_names={"train": "Training", "test": "Test",
                                                                    "val": "PublicTest",
                                                                    "validation": "PublicTest"},
                                  image_size=48, grayscale=True, cache=cache, use_cache=use_cache,
                                  progress=progress)
    arr = fer2013_arrays(src, cache, use_cache, progress)
    rows = np.arange(len(arr["labels"]))
    splits = {}
    for k, u in enumerate(USAGES):
        m = arr["usage"] == k
        if m.any():
            splits[u] = FaceDataset(arr["images"][m], arr["labels"][m], BASIC7, name="fer2013", split=u,
                                    extras={"row": rows[m]})
    out = LoadedData(splits, {}, str(src))
    log.info("fer2013 rows read per split and class:\n%s", out.summary_text())
    return out
