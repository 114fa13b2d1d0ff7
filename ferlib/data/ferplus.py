"""FERPlus reader (chapter 01_data, "The splits the chapters use"); never downloads.

FERPlus is FER2013's images with the ten-annotator votes of ``fer2013new.csv``; the label is the
majority vote of Barsoum et al. (2016) as in Microsoft's reference reader (``_process_data``,
mode "majority"): single votes are removed as outliers, the top emotion must hold more than half
of the remaining votes, otherwise the row is "unknown"; rows whose result is unknown or
not-a-face, and rows with no image name, are dropped and counted. Eight classes (with Contempt);
splits ``Training``, ``PublicTest``, ``PrivateTest``. The images come from
:func:`ferlib.data.fer2013.load_fer2013`, so this module sits above it (and above nothing else).
"""
from __future__ import annotations

import numpy as np

from .cache import LoadedData, log
from .dataset import FaceDataset
from .errors import DataFormatError, existing_root, missing_root_message
from .fer2013 import CSV_NAMES, load_fer2013
from .labels import CANONICAL, NATIVE_TO_CANONICAL

__all__ = ["load_ferplus", "ferplus_majority"]

_FERPLUS_COLS = ("neutral", "happiness", "surprise", "sadness", "anger", "disgust", "fear", "contempt",
                 "unknown", "nf")


def ferplus_majority(votes: np.ndarray) -> np.ndarray:
    """FERPlus majority label per row of ``votes`` (N, 10) in ``fer2013new.csv`` column order;
    -1 where the result is unknown or not-a-face (the row is then dropped).

    Barsoum et al. 2016 / Microsoft ``ferplus.py``: counts of 1 are set to 0 (outliers); the
    largest remaining count wins if it is more than half of the remaining votes, else unknown.
    """
    v = np.asarray(votes, dtype=np.float64).copy()
    v[v <= 1.0] = 0.0
    total = v.sum(1)
    top = v.argmax(1)
    win = v.max(1) > 0.5 * total
    return np.where(win & (top < 8), top, -1).astype(np.int64)


def load_ferplus(root, image_size: int | None = None, grayscale: bool = True, cache=None,
                 use_cache: bool = True, progress: bool = False) -> LoadedData:
    """FERPlus: FER2013 images with majority-vote labels from ``fer2013new.csv`` (8 classes,
    canonical order with Contempt). ``root``: folder with both CSVs (FER2013 in any accepted
    CSV form). Rows of ``fer2013new.csv`` align with FER2013 rows; a Usage mismatch is an error."""
    import pandas as pd

    root = existing_root("ferplus", root)
    new = root / "fer2013new.csv"
    if not new.is_file():
        raise FileNotFoundError(f"ferplus: {new} is missing. " + missing_root_message("ferplus", root).split(". ", 1)[1])
    if not any((root / n).is_file() for n in CSV_NAMES):
        raise FileNotFoundError(f"ferplus: none of {', '.join(CSV_NAMES)} in {root}. "
                                + missing_root_message("ferplus", root).split(". ", 1)[1])
    fer = load_fer2013(root, cache=cache, use_cache=use_cache, progress=progress)
    df = pd.read_csv(new, dtype=str, keep_default_na=False, skipinitialspace=True)
    df.columns = [str(c).strip().lower() for c in df.columns]
    need = ("usage", "image name") + _FERPLUS_COLS
    missing = [c for c in need if c not in df.columns]
    if missing:
        raise DataFormatError(f"{new}: missing columns {', '.join(missing)}; found {', '.join(df.columns)}")
    raw = df[list(_FERPLUS_COLS)].apply(lambda s: s.str.strip())
    ok = raw.apply(lambda s: s.str.fullmatch(r"\d+")).to_numpy()
    if not ok.all():
        i, j = map(int, np.argwhere(~ok)[0])
        raise DataFormatError(f"{new}, line {i + 2}: vote {_FERPLUS_COLS[j]}={raw.iloc[i, j]!r} is not a count")
    votes = raw.astype(np.int64).to_numpy()
    native = ferplus_majority(votes)
    has_name = (df["image name"].str.strip() != "").to_numpy()
    usage = df["usage"].str.strip().to_numpy()
    table = NATIVE_TO_CANONICAL["ferplus"]
    splits, dropped = {}, {}
    for split, ds in fer.items():
        rows = ds.extras["row"]
        if rows.max(initial=-1) >= len(df):
            raise DataFormatError(f"{new}: {len(df)} rows, but {fer.source} has data row {int(rows.max())}")
        bad = np.flatnonzero(usage[rows] != split)
        if len(bad):
            r = int(rows[bad[0]])
            raise DataFormatError(f"{new}, line {r + 2}: Usage {usage[r]!r} but {fer.source} data row {r} is "
                                  f"{split!r}; the two files are not aligned")
        keep = has_name[rows] & (native[rows] >= 0)
        dropped[split] = int((~keep).sum())
        labels = np.array([table[int(c)] for c in native[rows][keep]], np.int64)
        sub = ds.subset(np.flatnonzero(keep))
        splits[split] = FaceDataset(sub.images, labels, CANONICAL, name="ferplus", split=split,
                                    extras={"row": sub.extras["row"], "votes": votes[rows][keep]})
    out = LoadedData(splits, dropped, f"{fer.source} + {new}")
    log.info("ferplus rows read per split and class (dropped: unknown / not-a-face / no image):\n%s",
             out.summary_text())
    return out
