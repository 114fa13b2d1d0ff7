"""Parse once, load fast: the NumPy cache of the real-data readers (chapter 01_data,
"FER2013").

A parsed dataset is stored as an uncompressed ``.npz`` in the cache folder (``$FERLIB_CACHE``
or ``~/.cache/ferlib``; never next to the data, which may be read-only). Its file name holds a
key made from the source files' resolved paths, sizes and modification times plus the parser
version, so an edited or replaced source is parsed again; the source's SHA-256 is not needed
for that and would cost a full read, so it is recorded only on request.
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
import tempfile
from pathlib import Path
from typing import Callable

import numpy as np

__all__ = ["cache_dir", "source_key", "cached_arrays", "LoadedData", "make_summary", "log"]

log = logging.getLogger("ferlib.data")


def cache_dir(path=None) -> Path:
    """The cache folder: ``path``, else ``$FERLIB_CACHE``, else ``~/.cache/ferlib`` (created)."""
    p = Path(path or os.environ.get("FERLIB_CACHE") or Path.home() / ".cache" / "ferlib").expanduser()
    p.mkdir(parents=True, exist_ok=True)
    return p


def source_key(paths, version: str) -> str:
    """Hex key of (resolved path, size, mtime_ns) of every source file, plus ``version``."""
    h = hashlib.sha1(version.encode())
    for p in sorted(Path(x).resolve() for x in paths):
        st = p.stat()
        h.update(f"{p}|{st.st_size}|{st.st_mtime_ns}\n".encode())
    return h.hexdigest()[:20]


def cached_arrays(name: str, key: str, build: Callable[[], dict], cache=None, use_cache: bool = True) -> dict:
    """``build()`` -> dict of arrays (plus a JSON-able ``"meta"`` dict), cached as
    ``<cache>/<name>-<key>.npz``. A cache file that cannot be read is rebuilt."""
    if not use_cache:
        return build()
    folder = cache_dir(cache)
    path = folder / f"{name}-{key}.npz"
    if path.is_file():
        try:
            with np.load(path, allow_pickle=False) as z:
                out = {k: z[k] for k in z.files if k != "meta_json"}
                out["meta"] = json.loads(str(z["meta_json"])) if "meta_json" in z.files else {}
            log.info("loaded %s from cache %s", name, path)
            return out
        except (OSError, ValueError, KeyError) as e:  # corrupt or partial: rebuild
            log.warning("cache file %s unreadable (%s); parsing the source again", path, e)
    out = build()
    arrays = {k: v for k, v in out.items() if k != "meta"}
    fd, tmp = tempfile.mkstemp(dir=folder, suffix=".npz.tmp")
    os.close(fd)
    try:
        with open(tmp, "wb") as f:
            np.savez(f, meta_json=np.array(json.dumps(out.get("meta", {}))), **arrays)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
    log.info("cached %s in %s", name, path)
    return out


class LoadedData(dict):
    """``{split name: FaceDataset}`` with ``summary`` (pandas, built on first access: rows read
    per split and class, a ``total`` and a ``dropped`` column for rows the dataset's own
    protocol drops) and ``source`` (the files read)."""

    def __init__(self, splits: dict, dropped: dict | None = None, source: str = ""):
        super().__init__(splits)
        self.dropped = {k: int(v) for k, v in (dropped or {}).items()}
        self.source = source
        self._summary = None

    @property
    def summary(self):
        if self._summary is None:
            self._summary = make_summary(self, self.dropped)
        return self._summary

    def summary_text(self) -> str:
        """The summary as plain text (no pandas needed), one line per split."""
        lines = []
        for name, ds in self.items():
            counts = ", ".join(f"{c} {n}" for c, n in zip(ds.class_names, ds.class_counts().tolist()))
            extra = f"; dropped {self.dropped[name]}" if self.dropped.get(name) else ""
            lines.append(f"{name}: {len(ds)} rows ({counts}){extra}")
        return "\n".join(lines)

    def __repr__(self) -> str:
        return f"LoadedData({self.source}: " + ", ".join(f"{k}={len(v)}" for k, v in self.items()) + ")"


def make_summary(splits: dict, dropped: dict | None = None):
    """Per-split class counts (pandas), a ``total`` column and a ``dropped`` column."""
    import pandas as pd
    rows = {}
    for name, ds in splits.items():
        counts = ds.class_counts()
        rows[name] = {**dict(zip(ds.class_names, counts.tolist())), "total": int(counts.sum()),
                      "dropped": int((dropped or {}).get(name, 0))}
    return pd.DataFrame.from_dict(rows, orient="index")
