"""Real-data readers on tiny fixture files built on the fly, their error messages, the cache,
load_splits' protocol checks, and (marked realdata) the shared FER2013 copy."""
import gzip
import os
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from ferlib.data import BASIC7, CANONICAL, load_splits
from ferlib.data.errors import DataFormatError
from ferlib.data.fer2013 import load_fer2013
from ferlib.data.ferplus import ferplus_majority, load_ferplus
from ferlib.data.folders import load_affectnet, load_rafdb, load_sfew

REAL_FER = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "fer2013" / "fer2013.csv.gz"


@pytest.fixture(autouse=True)
def _cache(tmp_path, monkeypatch):
    monkeypatch.setenv("FERLIB_CACHE", str(tmp_path / "cache"))


def _pix(seed):
    return np.random.default_rng(seed).integers(0, 256, 48 * 48)


def _fer_rows(per_class=(3, 1, 1), seed=0):
    """(emotion, usage, pixel list) rows: per_class Training, PublicTest, PrivateTest per class."""
    rows, k = [], 0
    for usage, n in zip(("Training", "PublicTest", "PrivateTest"), per_class):
        for c in range(7):
            for _ in range(n):
                rows.append((c, usage, _pix(seed + k)))
                k += 1
    return rows


def _write_fer_csv(path, rows, icml=False, gz=False):
    if icml:
        text = "emotion, Usage, pixels\n" + "".join(f"{e},{u},{' '.join(map(str, p))}\n" for e, u, p in rows)
    else:
        text = "emotion,pixels,Usage\n" + "".join(f"{e},{' '.join(map(str, p))},{u}\n" for e, u, p in rows)
    if gz:
        with gzip.open(path, "wt") as f:
            f.write(text)
    else:
        Path(path).write_text(text)
    return Path(path)


def _img(path, size=(20, 20), mode="RGB", seed=0):
    path.parent.mkdir(parents=True, exist_ok=True)
    arr = np.random.default_rng(seed).integers(0, 256, (size[1], size[0], 3) if mode == "RGB" else size[::-1])
    Image.fromarray(arr.astype(np.uint8), mode).save(path)


# ------------------------------------------------------------------------------- FER2013 CSV
@pytest.mark.parametrize("variant", ["plain", "gz", "icml", "no_private"])
def test_fer2013_csv_variants(tmp_path, variant):
    rows = _fer_rows((3, 1, 0) if variant == "no_private" else (3, 1, 1))
    name = {"plain": "fer2013.csv", "gz": "fer2013.csv.gz", "icml": "icml_face_data.csv",
            "no_private": "fer2013.csv"}[variant]
    _write_fer_csv(tmp_path / name, rows, icml=variant == "icml", gz=variant == "gz")
    d = load_fer2013(tmp_path)
    expected = ["Training", "PublicTest"] + ([] if variant == "no_private" else ["PrivateTest"])
    assert list(d) == expected
    tr = d["Training"]
    assert tr.images.shape == (21, 48, 48) and tr.class_names == BASIC7
    assert tr.class_counts().tolist() == [3] * 7
    assert (tr.images[0].ravel() == rows[0][2]).all()           # first row, exact pixels
    assert d.summary.loc["Training", "total"] == 21 and d.summary.loc["PublicTest", "Angry"] == 1


def test_fer2013_cache_is_used_and_invalidated(tmp_path):
    src = _write_fer_csv(tmp_path / "fer2013.csv", _fer_rows())
    load_fer2013(src)
    cached = list((tmp_path / "cache").glob("fer2013-*.npz"))
    assert len(cached) == 1
    stamp = cached[0].stat().st_mtime_ns
    again = load_fer2013(src)                                     # from the cache: file untouched
    assert cached[0].stat().st_mtime_ns == stamp and len(again["Training"]) == 21
    rows = _fer_rows()
    rows[0] = (6, "Training", rows[0][2])                          # edit the source
    time.sleep(0.01)
    _write_fer_csv(src, rows)
    os.utime(src, ns=(time.time_ns(), time.time_ns() + 10 ** 9))
    assert load_fer2013(src)["Training"].labels[0] == 6
    assert len(list((tmp_path / "cache").glob("fer2013-*.npz"))) == 2


@pytest.mark.parametrize("edit, match", [
    (lambda r: r.__setitem__(2, (r[2][0], r[2][1], r[2][2][:-1])), r"line 4 \(data row 2\): 2303 pixel values"),
    (lambda r: r.__setitem__(1, (7, "Training", r[1][2])), r"line 3 \(data row 1\): emotion '7'"),
    (lambda r: r.__setitem__(5, (0, "Validation", r[5][2])), r"line 7 \(data row 5\): unknown Usage 'Validation'"),
    (lambda r: r.__setitem__(3, (0, "Training", np.r_[r[3][2][:-1], 300])), r"line 5 \(data row 3\): pixel value 300"),
])
def test_fer2013_bad_rows_are_named(tmp_path, edit, match):
    rows = _fer_rows()
    edit(rows)
    src = _write_fer_csv(tmp_path / "fer2013.csv", rows)
    with pytest.raises(DataFormatError, match=match) as e:
        load_fer2013(src)
    assert "fer2013.csv" in str(e.value)


def test_missing_root_says_what_to_get(tmp_path):
    with pytest.raises(FileNotFoundError, match="never downloads.*Kaggle"):
        load_fer2013(tmp_path / "nowhere")
    with pytest.raises(FileNotFoundError, match="no data_root given.*fer2013.csv"):
        load_splits("fer2013", data_root=None)
    with pytest.raises(FileNotFoundError, match="RAF-DB"):
        load_splits("rafdb", data_root=tmp_path / "nowhere")


# ------------------------------------------------------------------------------- image folders
def test_fer2013_image_folders(tmp_path):
    for split, n in (("train", 2), ("test", 1)):
        for c in ("angry", "disgust", "fear", "happy", "neutral", "sad", "surprise"):
            for i in range(n):
                _img(tmp_path / split / c / f"{i}.jpg", (48, 48), "L", seed=i)
    d = load_fer2013(tmp_path)
    assert list(d) == ["Training", "Test"]
    assert d["Training"].images.shape == (14, 48, 48)
    assert d["Training"].class_counts().tolist() == [2] * 7
    # class folders are mapped by name, not by alphabetical position ('neutral' sorts before 'sad')
    assert d["Test"].labels.tolist() == [0, 1, 2, 3, 6, 4, 5]


def test_empty_class_folder_and_unreadable_image(tmp_path):
    _img(tmp_path / "Train" / "Happy" / "a.png")
    (tmp_path / "Train" / "Sad").mkdir(parents=True)
    with pytest.raises(DataFormatError, match=r"Sad: empty class folder"):
        load_sfew(tmp_path)
    _img(tmp_path / "Train" / "Sad" / "b.png")
    (tmp_path / "Val" / "Fear").mkdir(parents=True)
    (tmp_path / "Val" / "Fear" / "broken.jpg").write_bytes(b"not a jpeg")
    with pytest.raises(DataFormatError, match=r"broken.jpg: unreadable image"):
        load_sfew(tmp_path)
    (tmp_path / "Val" / "Fear" / "broken.jpg").unlink()
    _img(tmp_path / "Val" / "Fear" / "c.png", (30, 25))
    d = load_sfew(tmp_path, image_size=16)
    assert list(d) == ["train", "val"] and d["val"].images.shape == (1, 16, 16, 3)
    assert d["train"].labels.tolist() == [BASIC7.index("Happy"), BASIC7.index("Sad")]
    with pytest.raises(DataFormatError, match="'Smirk' is not a class"):
        _img(tmp_path / "Val" / "Smirk" / "d.png")
        load_sfew(tmp_path, image_size=16)


# ------------------------------------------------------------------------------- RAF-DB
def _rafdb(root, lines):
    (root / "EmoLabel").mkdir(parents=True)
    (root / "EmoLabel" / "list_patition_label.txt").write_text("\n".join(lines) + "\n")
    for ln in lines:
        stem = Path(ln.split()[0]).stem
        _img(root / "Image" / "aligned" / f"{stem}_aligned.jpg", (24, 24))


def test_rafdb_labels_map_to_canonical(tmp_path):
    # RAF-DB 1..7 = Surprise, Fear, Disgust, Happy, Sad, Anger, Neutral
    _rafdb(tmp_path, [f"train_{i:05d}.jpg {i}" for i in range(1, 8)] + ["test_00001.jpg 6"])
    d = load_rafdb(tmp_path)
    names = [d["train"].class_names[y] for y in d["train"].labels]
    assert names == ["Surprise", "Fear", "Disgust", "Happy", "Sad", "Angry", "Neutral"]
    assert d["test"].labels.tolist() == [0] and d["train"].images.shape == (7, 24, 24, 3)
    with pytest.raises(ValueError, match="both 'test'"):
        load_splits("rafdb", tmp_path, val_split="test", eval_split="test")


def test_rafdb_errors_name_file_and_line(tmp_path):
    _rafdb(tmp_path, ["train_00001.jpg 4", "train_00002.jpg 9"])
    with pytest.raises(DataFormatError, match=r"list_patition_label.txt, line 2: label 9 is outside 1..7"):
        load_rafdb(tmp_path)
    (tmp_path / "EmoLabel" / "list_patition_label.txt").write_text("train_00001.jpg 4\ntrain_00077.jpg 4\n")
    with pytest.raises(FileNotFoundError, match=r"line 2: missing image .*train_00077_aligned.jpg"):
        load_rafdb(tmp_path)


# ------------------------------------------------------------------------------- FERPlus
def test_ferplus_majority_by_hand():
    v = np.array([
        [4, 0, 0, 1, 3, 2, 0, 0, 0, 0],   # 1 vote removed: 4 of 9 is not > 4.5 -> unknown
        [9, 0, 0, 1, 0, 0, 0, 0, 0, 0],   # neutral
        [0, 0, 6, 0, 0, 0, 4, 0, 0, 0],   # surprise: 6 > 5
        [0, 0, 5, 0, 0, 0, 5, 0, 0, 0],   # tie, 5 is not > 5 -> unknown
        [2, 0, 0, 0, 0, 0, 0, 0, 6, 0],   # unknown column wins -> dropped
        [0, 0, 0, 0, 0, 0, 0, 0, 0, 10],  # not a face -> dropped
        [1, 1, 1, 0, 0, 0, 0, 3, 0, 0],   # single votes removed: contempt 3 of 3
    ])
    assert ferplus_majority(v).tolist() == [-1, 0, 2, -1, -1, -1, 7]


def test_ferplus_reader_drops_and_maps(tmp_path):
    rows = [(0, "Training", _pix(i)) for i in range(4)] + [(3, "PublicTest", _pix(9))]
    _write_fer_csv(tmp_path / "fer2013.csv", rows)
    head = "Usage,Image name,neutral,happiness,surprise,sadness,anger,disgust,fear,contempt,unknown,NF\n"
    body = ["Training,fer0000000.png,0,10,0,0,0,0,0,0,0,0",   # happy
            "Training,fer0000001.png,4,0,0,1,3,2,0,0,0,0",    # unknown -> dropped
            "Training,,0,0,0,0,0,0,0,0,0,10",                 # no image name -> dropped
            "Training,fer0000003.png,0,0,0,0,0,0,0,8,2,0",    # contempt
            "PublicTest,fer0000004.png,0,0,0,0,7,0,3,0,0,0"]  # anger
    (tmp_path / "fer2013new.csv").write_text(head + "\n".join(body) + "\n")
    d = load_ferplus(tmp_path)
    assert d["Training"].class_names == CANONICAL
    assert [CANONICAL[y] for y in d["Training"].labels] == ["Happy", "Contempt"]
    assert [CANONICAL[y] for y in d["PublicTest"].labels] == ["Angry"]
    assert d.summary.loc["Training", "dropped"] == 2
    assert (d["Training"].images[1].ravel() == rows[3][2]).all()   # row alignment kept
    body[4] = "PrivateTest,fer0000004.png,0,0,0,0,7,0,3,0,0,0"
    (tmp_path / "fer2013new.csv").write_text(head + "\n".join(body) + "\n")
    with pytest.raises(DataFormatError, match=r"fer2013new.csv, line 6: Usage 'PrivateTest'.*not aligned"):
        load_ferplus(tmp_path)


# ------------------------------------------------------------------------------- AffectNet
def test_affectnet_folders_and_csv(tmp_path):
    # folder layout with AffectNet's numeric codes: 0 Neutral, 7 Contempt
    _img(tmp_path / "f" / "train" / "0" / "a.jpg", (32, 32))
    _img(tmp_path / "f" / "train" / "7" / "b.jpg", (32, 32))
    _img(tmp_path / "f" / "val" / "happy" / "c.jpg", (32, 32))
    d = load_affectnet(tmp_path / "f", image_size=16)
    assert [CANONICAL[y] for y in d["train"].labels] == ["Neutral", "Contempt"]
    assert d["val"].labels.tolist() == [CANONICAL.index("Happy")]
    # CSV layout: codes 8-10 dropped and counted, face box crops, 11 is an error
    root = tmp_path / "c"
    for i in range(3):
        _img(root / "Manually_Annotated_Images" / "1" / f"{i}.jpg", (40, 40), seed=i)
    (root / "training.csv").write_text(
        "subDirectory_filePath,face_x,face_y,face_width,face_height,expression\n"
        "1/0.jpg,0,0,20,20,1\n1/1.jpg,0,0,40,40,8\n1/2.jpg,5,5,20,20,6\n")
    d = load_affectnet(root, image_size=None)
    assert [CANONICAL[y] for y in d["train"].labels] == ["Happy", "Angry"]
    assert d.summary.loc["train", "dropped"] == 1
    assert d["train"].images.shape == (2, 20, 20, 3)               # cropped to the face boxes
    (root / "training.csv").write_text("subDirectory_filePath,expression\n1/0.jpg,11\n")
    with pytest.raises(DataFormatError, match=r"training.csv, line 2: expression '11'"):
        load_affectnet(root)


# ------------------------------------------------------------------------------- load_splits
def test_load_splits_protocol_on_fer2013_fixture(tmp_path):
    src = _write_fer_csv(tmp_path / "fer2013.csv", _fer_rows((10, 2, 2)))
    s = load_splits("fer2013", src, profile="smoke", seed=0)
    assert (len(s.train), len(s.val), len(s.test)) == (63, 7, 14)   # 10 % stratified holdout
    assert s.test.split == "PublicTest" and s.test.class_counts().tolist() == [2] * 7
    s2 = load_splits("fer2013", tmp_path, eval_split="PrivateTest", val_split="PublicTest", profile="smoke")
    assert s2.val.split == "PublicTest" and s2.test.split == "PrivateTest" and len(s2.train) == 70
    with pytest.raises(ValueError, match="both 'PublicTest'"):
        load_splits("fer2013", src, eval_split="PublicTest", val_split="PublicTest")
    with pytest.raises(ValueError, match="eval_split 'Validation' is not in"):
        load_splits("fer2013", src, eval_split="Validation")
    s3 = load_splits("fer2013", src, profile="smoke", image_size=24)
    assert s3.train.images.shape[1:] == (24, 24)


# ------------------------------------------------------------------------------- the real copy
@pytest.mark.realdata
def test_real_fer2013_counts(monkeypatch):
    if not REAL_FER.is_file():
        pytest.skip(f"real FER2013 not found at {REAL_FER} (it lives outside the project; bring your own copy)")
    monkeypatch.delenv("FERLIB_CACHE", raising=False)   # keep the parsed cache between runs
    d = load_fer2013(REAL_FER)
    assert list(d) == ["Training", "PublicTest"]
    assert d["Training"].class_counts().tolist() == [3995, 436, 4097, 7215, 4830, 3171, 4965]
    assert d["PublicTest"].class_counts().tolist() == [467, 56, 496, 895, 653, 415, 607]
    assert len(d["Training"]) == 28709 and len(d["PublicTest"]) == 3589
    t = time.perf_counter()
    load_fer2013(REAL_FER)
    assert time.perf_counter() - t < 5      # cached: well under a second on an idle machine
