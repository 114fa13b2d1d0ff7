"""Readers for image-file datasets (chapter 01_data, "The splits the chapters use"); never download.

* RAF-DB basic: ``EmoLabel/list_patition_label.txt`` (``train_00001.jpg 5``, 1-based labels in
  RAF-DB's own order) and ``Image/aligned/train_00001_aligned.jpg``; splits ``train``, ``test``.
* FERPlus (FER2013's images relabelled) is read by :mod:`ferlib.data.ferplus`.
* AffectNet: ``train/<class>/`` + ``val/<class>/`` folders (class names or AffectNet's codes
  0..7), or ``training.csv`` / ``validation.csv`` with ``subDirectory_filePath`` and
  ``expression`` (codes 8 None, 9 Uncertain, 10 Non-Face are dropped and counted; the face box
  columns crop the image when present); splits ``train``, ``val``.
* SFEW 2.0: ``Train/<class>/`` and ``Val/<class>/``; splits ``train``, ``val``.
* Any ``<split>/<class>/*.jpg`` tree: :func:`load_image_folders`.

Labels go to the canonical order of :mod:`ferlib.data.labels`. Images are read with PIL,
optionally converted to grey and resized (``image_size``), and cached as ``.npz``
(:mod:`ferlib.data.cache`). Every problem is an error naming the file (and line): a missing
image, an empty class folder, an unreadable image, a label out of range.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from .cache import LoadedData, cached_arrays, log, source_key
from .dataset import FaceDataset
from .errors import DataFormatError, existing_root, missing_root_message
from .labels import BASIC7, CANONICAL, NATIVE_TO_CANONICAL, class_index

__all__ = ["IMAGE_EXTENSIONS", "load_image_folders", "load_rafdb", "load_affectnet", "load_sfew"]

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp")
_VERSION = "folders-1"


# ---------------------------------------------------------------------------------------------
# shared helpers
def _read_image(path: Path, image_size: int | None, grayscale: bool, box=None) -> np.ndarray:
    from PIL import Image
    try:
        with Image.open(path) as im:
            im.load()
            im = im.convert("L" if grayscale else "RGB")
    except FileNotFoundError:
        raise FileNotFoundError(f"missing image {path}") from None
    except (OSError, SyntaxError, ValueError) as e:   # PIL.UnidentifiedImageError is an OSError
        raise DataFormatError(f"{path}: unreadable image ({e})") from None
    if box is not None:
        im = im.crop(box)
    if image_size and im.size != (image_size, image_size):
        im = im.resize((image_size, image_size), Image.BILINEAR)
    return np.asarray(im, dtype=np.uint8)


def _read_all(items: list, image_size: int | None, grayscale: bool, progress: bool) -> np.ndarray:
    """Stack the images of ``items`` (each ``(split, path, label, box)``)."""
    from tqdm.auto import tqdm
    imgs = []
    first = None
    for _, path, _, box in tqdm(items, disable=not progress, desc="reading images", leave=False):
        a = _read_image(path, image_size, grayscale, box)
        if first is None:
            first = (path, a.shape)
        elif a.shape != first[1]:
            raise DataFormatError(f"{path}: image of shape {a.shape} differs from {first[0]} "
                                  f"{first[1]}; pass image_size=... to resize them all")
        imgs.append(a)
    if not imgs:
        return np.zeros((0, image_size or 1, image_size or 1), np.uint8)
    return np.stack(imgs)


def _build(name: str, items: list, key_files: list, image_size, grayscale, cache, use_cache,
           progress, class_names, dropped: dict, source: str) -> LoadedData:
    """Read (or load from cache) the images of ``items`` and split them into FaceDatasets."""
    split_order = list(dict.fromkeys(s for s, _, _, _ in items))
    key = source_key(key_files + [p for _, p, _, _ in items],
                     f"{_VERSION}|{name}|{image_size}|{grayscale}|{len(items)}")

    def build():
        return {"images": _read_all(items, image_size, grayscale, progress),
                "labels": np.array([y for _, _, y, _ in items], np.int64),
                "split": np.array([split_order.index(s) for s, _, _, _ in items], np.int16),
                "meta": {"splits": split_order}}

    arr = cached_arrays(name, key, build, cache, use_cache)
    splits = {}
    for k, s in enumerate(arr["meta"]["splits"]):
        m = arr["split"] == k
        splits[s] = FaceDataset(arr["images"][m], arr["labels"][m], class_names, name=name, split=s)
    out = LoadedData(splits, dropped, source)
    log.info("%s rows read per split and class:\n%s", name, out.summary_text())
    return out


def _class_of_folder(folder: Path, class_names, numeric: dict | None) -> int:
    raw = folder.name
    if raw.strip().isdigit() and numeric is not None:
        code = int(raw)
        if code not in numeric:
            raise DataFormatError(f"{folder}: class folder code {code} is outside {sorted(numeric)}")
        return numeric[code]
    try:
        return class_index(raw, class_names)
    except ValueError:
        raise DataFormatError(f"{folder}: folder name {raw!r} is not a class; expected one of "
                              f"{', '.join(class_names)}") from None


def _list_class_folders(split_dir: Path, split: str, class_names, numeric) -> list:
    items = []
    classes = sorted(p for p in split_dir.iterdir() if p.is_dir())
    if not classes:
        raise DataFormatError(f"{split_dir}: no class folders inside")
    for cdir in classes:
        y = _class_of_folder(cdir, class_names, numeric)
        files = sorted(p for p in cdir.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS)
        if not files:
            raise DataFormatError(f"{cdir}: empty class folder (no {'/'.join(IMAGE_EXTENSIONS)} files)")
        items += [(split, f, y, None) for f in files]
    return items


def load_image_folders(root, name: str = "folders", split_names: dict | None = None,
                       class_names=BASIC7, numeric: dict | None = None, image_size: int | None = None,
                       grayscale: bool = False, cache=None, use_cache: bool = True,
                       progress: bool = False) -> LoadedData:
    """``root/<split>/<class>/*.jpg`` as :class:`FaceDataset` per split.

    ``split_names`` maps lower-case folder names to split names (default: every sub-folder,
    its own name); class folders are class names (aliases such as ``anger`` accepted) or, with
    ``numeric``, integer codes mapped to canonical indices.
    """
    root = Path(root)
    subdirs = {p.name.lower(): p for p in sorted(root.iterdir()) if p.is_dir()}
    mapping = split_names or {k: p.name for k, p in subdirs.items()}
    items = []
    for folder_key, split in mapping.items():
        if folder_key in subdirs:
            items += _list_class_folders(subdirs[folder_key], split, class_names, numeric)
    if not items:
        raise DataFormatError(f"{root}: no split folders ({', '.join(mapping)}) with class sub-folders")
    return _build(name, items, [], image_size, grayscale, cache, use_cache, progress, tuple(class_names),
                  {}, str(root))


# ---------------------------------------------------------------------------------------------
# RAF-DB
def load_rafdb(root, image_size: int | None = None, grayscale: bool = False, cache=None,
               use_cache: bool = True, progress: bool = False) -> LoadedData:
    """RAF-DB basic (aligned 100x100 RGB), splits ``train`` and ``test``, canonical labels."""
    root = existing_root("rafdb", root)
    if not (root / "EmoLabel").is_dir() and (root / "basic" / "EmoLabel").is_dir():
        root = root / "basic"
    label_file = root / "EmoLabel" / "list_patition_label.txt"
    img_dir = root / "Image" / "aligned"
    if not label_file.is_file():
        raise FileNotFoundError(f"rafdb: {label_file} is missing. " + missing_root_message("rafdb", root).split(". ", 1)[1])
    table = NATIVE_TO_CANONICAL["rafdb"]
    items = []
    for ln, line in enumerate(label_file.read_text().splitlines(), start=1):
        if not line.strip():
            continue
        parts = line.split()
        where = f"{label_file}, line {ln}"
        if len(parts) != 2 or not parts[1].lstrip("-").isdigit():
            raise DataFormatError(f"{where}: expected '<image name> <label 1..7>', got {line!r}")
        fname, lab = parts[0], int(parts[1])
        if not 1 <= lab <= 7:
            raise DataFormatError(f"{where}: label {lab} is outside 1..7 (RAF-DB: 1 Surprise, 2 Fear, "
                                  f"3 Disgust, 4 Happy, 5 Sad, 6 Anger, 7 Neutral)")
        split = fname.split("_")[0].lower()
        if split not in ("train", "test"):
            raise DataFormatError(f"{where}: image name {fname!r} does not start with train_ or test_")
        stem = Path(fname).stem
        path = img_dir / f"{stem}_aligned.jpg"
        if not path.is_file():
            raise FileNotFoundError(f"{where}: missing image {path}")
        items.append((split, path, table[lab - 1], None))
    return _build("rafdb", items, [label_file], image_size, grayscale, cache, use_cache, progress,
                  BASIC7, {}, str(root))


# ---------------------------------------------------------------------------------------------
# AffectNet
_AFFECTNET_SPLITS = {"train": "train", "train_set": "train", "training": "train", "val": "val",
                     "val_set": "val", "valid": "val", "validation": "val"}


def load_affectnet(root, image_size: int | None = 112, grayscale: bool = False, cache=None,
                   use_cache: bool = True, progress: bool = False, include_contempt: bool = True) -> LoadedData:
    """AffectNet (8 classes in canonical order; ``include_contempt=False`` drops Contempt and
    counts it as dropped), from class folders or from ``training.csv`` / ``validation.csv``."""
    root = existing_root("affectnet", root)
    csvs = [(root / f, s) for f, s in (("training.csv", "train"), ("validation.csv", "val")) if (root / f).is_file()]
    if csvs:
        return _affectnet_csv(root, csvs, image_size, grayscale, cache, use_cache, progress, include_contempt)
    subdirs = {p.name.lower() for p in root.iterdir() if p.is_dir()}
    if not subdirs & set(_AFFECTNET_SPLITS):
        raise FileNotFoundError(f"affectnet: {root} has neither training.csv/validation.csv nor "
                                f"train/ and val/ class folders. "
                                + missing_root_message("affectnet", root).split(". ", 1)[1])
    out = load_image_folders(root, "affectnet", _AFFECTNET_SPLITS, CANONICAL, NATIVE_TO_CANONICAL["affectnet"],
                             image_size, grayscale, cache, use_cache, progress)
    if not include_contempt:
        out = _drop_contempt(out)
    return out


def _drop_contempt(data: LoadedData) -> LoadedData:
    splits, dropped = {}, {}
    for s, ds in data.items():
        keep = np.flatnonzero(ds.labels != CANONICAL.index("Contempt"))
        sub = ds.subset(keep)
        splits[s] = FaceDataset(sub.images, sub.labels, BASIC7, ds.name, s, extras=sub.extras)
        dropped[s] = len(ds) - len(keep)
    return LoadedData(splits, dropped, data.source)


def _affectnet_csv(root, csvs, image_size, grayscale, cache, use_cache, progress, include_contempt):
    import pandas as pd
    base = root / "Manually_Annotated_Images"
    base = base if base.is_dir() else root
    table = NATIVE_TO_CANONICAL["affectnet"]
    items, dropped = [], {}
    for csv_path, split in csvs:
        df = pd.read_csv(csv_path, dtype=str, keep_default_na=False, skipinitialspace=True)
        df.columns = [str(c).strip() for c in df.columns]
        if "expression" not in df.columns or "subDirectory_filePath" not in df.columns:
            raise DataFormatError(f"{csv_path}: expected columns subDirectory_filePath and expression; "
                                  f"found {', '.join(df.columns)}")
        has_box = all(c in df.columns for c in ("face_x", "face_y", "face_width", "face_height"))
        n_drop = 0
        for i, row in enumerate(df.itertuples(index=False)):
            r = row._asdict()
            where = f"{csv_path}, line {i + 2}"
            e = str(r["expression"]).strip()
            if not e.lstrip("-").isdigit() or not 0 <= int(e) <= 10:
                raise DataFormatError(f"{where}: expression {e!r} is outside 0..10 (0-7 emotions, "
                                      f"8 None, 9 Uncertain, 10 Non-Face)")
            code = int(e)
            if code >= 8 or (code == 7 and not include_contempt):
                n_drop += 1
                continue
            path = base / str(r["subDirectory_filePath"]).strip()
            if not path.is_file():
                raise FileNotFoundError(f"{where}: missing image {path}")
            box = None
            if has_box:
                try:
                    x, y, w, h = (int(float(r[c])) for c in ("face_x", "face_y", "face_width", "face_height"))
                except ValueError:
                    raise DataFormatError(f"{where}: face box is not numeric") from None
                if w > 0 and h > 0:
                    box = (x, y, x + w, y + h)
            items.append((split, path, table[code], box))
        dropped[split] = n_drop
    names = CANONICAL if include_contempt else BASIC7
    return _build("affectnet", items, [p for p, _ in csvs], image_size, grayscale, cache, use_cache,
                  progress, names, dropped, str(root))


# ---------------------------------------------------------------------------------------------
# SFEW 2.0
def load_sfew(root, image_size: int | None = 112, grayscale: bool = False, cache=None,
              use_cache: bool = True, progress: bool = False) -> LoadedData:
    """SFEW 2.0 aligned faces, ``Train/<class>/`` and ``Val/<class>/`` -> splits ``train``, ``val``."""
    root = existing_root("sfew", root)
    subdirs = {p.name.lower() for p in root.iterdir() if p.is_dir()}
    if not {"train", "val"} & subdirs:
        raise FileNotFoundError(f"sfew: {root} has no Train/ or Val/ folders. "
                                + missing_root_message("sfew", root).split(". ", 1)[1])
    return load_image_folders(root, "sfew", {"train": "train", "val": "val", "validation": "val"}, BASIC7,
                              None, image_size, grayscale, cache, use_cache, progress)
