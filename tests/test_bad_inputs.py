"""The catalogue of bad inputs of issue 14 ("Nothing silent"): one case per bad input, each
checking the exception type and that the message names the file, row or parameter at fault.

Classes: checkpoints that would run code or are damaged; FER2013 rows whose pixel counts
cancel out within a chunk; a checkpoint folder reused by a run on other data or settings;
records that are incomplete, unreadable or missing; training command-line arguments that
were silently replaced or failed only after training; class weights and covariances that are
not valid; ``ferlib-book`` run from a folder that is not the book's. Every case is a few
milliseconds to a second on the CPU; nothing here needs the real datasets or a network.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from ferlib.data.dataset import FaceDataset
from ferlib.data.errors import DataFormatError

ROOT = Path(__file__).resolve().parents[1]
CLASSES = ("a", "b", "c")


# --------------------------------------------------------------------------------- helpers
def faces(n=24, seed=0, size=8):
    r = np.random.default_rng(seed)
    return FaceDataset(r.integers(0, 256, (n, size, size), dtype=np.uint8),
                       np.arange(n) % 3, CLASSES, "toy", f"s{seed}")


class Net(nn.Module):
    def __init__(self, seed=0):
        super().__init__()
        torch.manual_seed(seed)
        self.conv = nn.Conv2d(1, 2, 3, padding=1)
        self.fc = nn.Linear(2, 3)

    def forward(self, x):
        return self.fc(F.adaptive_avg_pool2d(F.relu(self.conv(x)), 1).flatten(1))


def fit_tiny(ckdir, test_set=None, **kw):
    from ferlib.train import fit

    args = dict(epochs=1, batch_size=8, device="cpu", progress=False, checkpoint_dir=ckdir)
    args.update(kw)
    return fit(Net(), faces(24, 0), faces(12, 1), test_set=test_set, **args)


class Payload:
    """Unpickling this calls os.mkdir(marker): proof that code ran."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (os.mkdir, (self.marker,))


def evil_file(path, marker, **extra):
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"format": 1, "config": {}, "payload": Payload(marker), **extra}, path)
    return path


def fer_csv(path, counts):
    """A FER2013 CSV with one Training row per entry of ``counts`` (its number of pixel values)."""
    r = np.random.default_rng(0)
    lines = ["emotion,pixels,Usage"]
    for i, n in enumerate(counts):
        lines.append(f"{i % 7},{' '.join(map(str, r.integers(0, 256, n)))},Training")
    Path(path).write_text("\n".join(lines) + "\n")
    return Path(path)


def record(folder, name, **rec):
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_text(json.dumps(rec))


GOOD = dict(method="ean", dataset="rafdb", split="test", metrics={"accuracy": 0.8},
            params={"profile": "full", "noise_rate": 0.1})


# ------------------------------------------------- 1. checkpoints that would run code
def _load_fit(folder):
    fit_tiny(folder)


def _load_vaegan_resume(folder):
    from ferlib.methods.latent_aug.vaegan import VAEGAN, VAEGANConfig, train_vaegan

    train_vaegan(VAEGAN(VAEGANConfig(latent_dim=2, image_size=8, width=1)),
                 faces(4, 0, size=8), 1, batch_size=4, checkpoint_dir=folder, device="cpu",
                 progress=False)


def _load_vaegan(folder):
    from ferlib.methods.latent_aug.vaegan import load_vaegan

    load_vaegan(folder / "vaegan_last.pt")


def _load_checkpoint(folder):
    from ferlib.models import load_checkpoint

    load_checkpoint(Net(), folder / "weights.pt")


def _load_backbone(folder):
    from ferlib.models import load_backbone

    load_backbone(folder / "backbone.pt")


# every loader of a checkpoint file in ferlib, and the file name it reads
LOADERS = {"fit resume": (_load_fit, "last.pt"),
           "train_vaegan resume": (_load_vaegan_resume, "vaegan_last.pt"),
           "load_vaegan": (_load_vaegan, "vaegan_last.pt"),
           "load_checkpoint": (_load_checkpoint, "weights.pt"),
           "load_backbone": (_load_backbone, "backbone.pt")}


@pytest.mark.parametrize("loader", list(LOADERS))
def test_a_pickle_with_a_payload_is_refused_naming_the_file(tmp_path, loader):
    load, name = LOADERS[loader]
    marker = tmp_path / "payload-ran"
    path = evil_file(tmp_path / "ck" / name, marker)
    with pytest.raises(ValueError, match=r"(refused|Weights only load failed)") as e:
        load(tmp_path / "ck")
    assert str(path) in str(e.value)
    assert not marker.exists(), "the payload ran"


@pytest.mark.parametrize("damage", ["truncated", "empty"])
@pytest.mark.parametrize("loader", list(LOADERS))
def test_a_damaged_checkpoint_is_an_error_naming_the_file(tmp_path, loader, damage):
    load, name = LOADERS[loader]
    path = tmp_path / "ck" / name
    path.parent.mkdir()
    torch.save({"format": 1, "model": {"w": torch.zeros(100)}}, path)
    path.write_bytes(path.read_bytes()[:200] if damage == "truncated" else b"")
    with pytest.raises(ValueError, match="cannot read") as e:
        load(tmp_path / "ck")
    assert str(path) in str(e.value)


def test_no_torch_load_with_weights_only_false():
    offenders = [f"{p.relative_to(ROOT)}:{i}" for p in (ROOT / "ferlib").rglob("*.py")
                 for i, line in enumerate(p.read_text().splitlines(), 1)
                 if "weights_only=False" in line.replace(" ", "")]
    assert not offenders, offenders


# ----------------------------------------------------------------- the parametrised catalogue
def _fer_shifted(tmp):
    """2,303 values in row 3 and 2,305 in row 5 of the same chunk: the totals cancel."""
    from ferlib.data.fer2013 import read_fer2013_csv

    read_fer2013_csv(fer_csv(tmp / "fer2013.csv", [2304] * 3 + [2303, 2304, 2305] + [2304] * 4))


def _fer_short_last(tmp):
    from ferlib.data.fer2013 import read_fer2013_csv

    read_fer2013_csv(fer_csv(tmp / "fer2013.csv", [2304] * 5 + [2303]))


def _fer_no_training(tmp):
    from ferlib.data import load_splits

    path = fer_csv(tmp / "fer2013.csv", [2304] * 14)
    path.write_text(path.read_text().replace(",Training", ",PublicTest", 7)
                    .replace(",Training", ",PrivateTest"))
    load_splits("fer2013", path, profile="smoke")


def _ckpt_other_test_split(tmp):
    fit_tiny(tmp, test_set=faces(12, 2))
    fit_tiny(tmp, test_set=faces(12, 3))           # same size, other images: not a resume


def _ckpt_other_val_labels(tmp):
    from ferlib.train import fit

    val = faces(12, 1)
    fit(Net(), faces(24, 0), val, epochs=1, batch_size=8, device="cpu", progress=False,
        checkpoint_dir=tmp)
    val.labels = np.roll(val.labels, 1)
    fit(Net(), faces(24, 0), val, epochs=1, batch_size=8, device="cpu", progress=False,
        checkpoint_dir=tmp)


def _ckpt_other_loss(tmp):
    from ferlib.methods.cucn.model import CUCNLoss

    fit_tiny(tmp, loss_fn=CUCNLoss([1.0, 1.0, 1.0], mix=False))
    fit_tiny(tmp, loss_fn=CUCNLoss([1.0, 2.0, 1.0], mix=False))


def _ckpt_other_scheduler(tmp):
    from torch.optim.lr_scheduler import ExponentialLR

    fit_tiny(tmp, scheduler=lambda o: ExponentialLR(o, 0.9))
    fit_tiny(tmp, scheduler=lambda o: ExponentialLR(o, 0.5))


def _ckpt_other_momentum(tmp):
    fit_tiny(tmp, optimizer=lambda p: torch.optim.SGD(p, lr=0.1, momentum=0.9))
    fit_tiny(tmp, optimizer=lambda p: torch.optim.SGD(p, lr=0.1, momentum=0.0))


def _vaegan_other_data(tmp):
    from ferlib.methods.latent_aug.vaegan import VAEGAN, VAEGANConfig, train_vaegan

    cfg = VAEGANConfig(latent_dim=2, image_size=8, width=1)
    kw = dict(batch_size=4, checkpoint_dir=tmp, device="cpu", progress=False)
    train_vaegan(VAEGAN(cfg), faces(4, 0, size=8), 1, **kw)
    train_vaegan(VAEGAN(cfg), faces(4, 1, size=8), 2, **kw)


def _scoreboard_missing_folder(tmp):
    from ferlib.book.scoreboard import scoreboard

    scoreboard(tmp / "recrods")


def _scoreboard_empty_folder(tmp):
    from ferlib.book.scoreboard import scoreboard

    (tmp / "records").mkdir()
    scoreboard(tmp / "records")


def _scoreboard_record_without_metrics(tmp):
    from ferlib.book.scoreboard import scoreboard

    record(tmp / "records", "good.json", **GOOD)
    record(tmp / "records" / "cpu", "half.json", **{k: v for k, v in GOOD.items() if k != "metrics"})
    scoreboard(tmp / "records")


def _records_metrics_not_an_object(tmp):
    from ferlib.records import load_records

    record(tmp / "records", "good.json", **GOOD)
    record(tmp / "records", "odd.json", **{**GOOD, "metrics": [0.8]})
    load_records(tmp / "records")


def _chapter05_unreadable_record(tmp):
    from ferlib.methods.ean.experiment import load_noisy_records

    record(tmp / "records", "good.json", **GOOD)
    (tmp / "records" / "cut.json").write_text(json.dumps(GOOD)[:40])
    load_noisy_records(tmp / "records")


def _chapter05_missing_folder(tmp):
    from ferlib.methods.ean.experiment import load_noisy_records

    load_noisy_records(tmp / "no-records")


def _compare_read_also_mistyped(tmp):
    from ferlib.compare import load_all_records

    record(tmp / "results", "good.json", **GOOD)
    load_all_records(tmp / "results", tmp / "book" / "recrods")


def _train_baseline_epochs_zero(tmp):
    from ferlib.data import load_splits
    from ferlib.methods.baseline.experiment import train_baseline

    splits = load_splits("synthfacs", profile="smoke")
    train_baseline(splits, "smoke", "cpu", 0, results_path=tmp, epochs=0, progress=False)


def _cli(argv):
    from ferlib.methods.baseline.__main__ import main

    try:
        main(argv)
    except SystemExit as exc:   # argparse: exit status 2 and the message on stderr
        raise ValueError(f"exit {exc.code}") from None


def _weights(fn, bad):
    def run(tmp):
        from ferlib.methods.cucn.model import (CUCNLoss, cucn_loss_fn, mixing_loss,
                                               weighted_cross_entropy)

        logits, y = torch.randn(6, 3), torch.tensor([0, 1, 2, 0, 1, 2])
        w = torch.tensor(bad)
        if fn == "CUCNLoss":
            CUCNLoss(w, mix=False)(Net(), torch.rand(6, 1, 8, 8), y)
        elif fn == "cucn_loss_fn":
            cucn_loss_fn(Net(), torch.rand(6, 1, 8, 8), y, class_weight=w, mix=False)
        elif fn == "mixing_loss":
            mixing_loss(logits, y, torch.tensor([1, 2, 3, 4, 5, 0]), w)
        else:
            weighted_cross_entropy(logits, y, w)
    return run


WEIGHTS = {"negative": ([1.0, -0.5, 1.0], r"class_weight\[1\] = -0.5.*cannot be negative"),
           "all-zero": ([0.0, 0.0, 0.0], r"class_weight is all zeros"),
           "nan": ([1.0, float("nan"), 1.0], r"class_weight\[1\] = nan.*finite"),
           "inf": ([float("inf"), 1.0, 1.0], r"class_weight\[0\] = inf.*finite")}


def _cov(method, cov):
    def run(tmp):
        from ferlib.methods.latent_aug import sample_latent

        sample_latent(torch.zeros(2, 3), torch.tensor(cov), s=1.0, n=2, method=method)
    return run


COVS = {"negative": (-np.eye(3), r"cov_c is not positive semi-definite: its smallest eigenvalue is -1"),
        "indefinite": (np.diag([1.0, -0.5, 2.0]), r"cov_c is not positive semi-definite.*-0.5"),
        "non-symmetric": ([[1.0, 0.5, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]],
                          r"cov_c is not symmetric: entry \(0, 1\) is 0.5 but \(1, 0\) is 0"),
        "nan": ([[1.0, 0.0, 0.0], [0.0, float("nan"), 0.0], [0.0, 0.0, 1.0]],
                r"cov_c contains NaN or inf")}


CATALOGUE = [
    # 2. FER2013 rows that would shift
    ("fer2013 2303+2305 in one chunk", _fer_shifted, DataFormatError,
     r"fer2013.csv, line 5 \(data row 3\): 2303 pixel values, expected 2304"),
    ("fer2013 short last row", _fer_short_last, DataFormatError,
     r"fer2013.csv, line 7 \(data row 5\): 2303 pixel values"),
    ("fer2013 no Training rows", _fer_no_training, ValueError,
     r"fer2013: .*fer2013.csv has no 'Training' rows \(splits found: PublicTest, PrivateTest\)"),
    # 3. a checkpoint folder reused by another run
    ("resume with another test split of the same size", _ckpt_other_test_split, ValueError,
     r"last.pt was written by a different run \(the test data differ"),
    ("resume with relabelled validation data", _ckpt_other_val_labels, ValueError,
     r"last.pt was written by a different run \(the val data differ"),
    ("resume with other class weights in the loss", _ckpt_other_loss, ValueError,
     r"last.pt was written by a different run \(loss: .*class_weight=\[1.0, 1.0, 1.0\]"),
    ("resume with another scheduler gamma", _ckpt_other_scheduler, ValueError,
     r"last.pt was written by a different run \(scheduler_settings: .*'gamma': 0.9"),
    ("resume with another momentum", _ckpt_other_momentum, ValueError,
     r"last.pt was written by a different run \(optimizer_settings: .*'momentum': 0.9"),
    ("VAE-GAN resume on other images", _vaegan_other_data, ValueError,
     r"vaegan_last.pt was written by a different run \(data: "),
    # 4. records that vanish
    ("scoreboard: records folder mistyped", _scoreboard_missing_folder, FileNotFoundError,
     r"records folder .*recrods does not exist"),
    ("scoreboard: records folder empty", _scoreboard_empty_folder, ValueError,
     r"records folder .*records holds no results record"),
    ("scoreboard: record without metrics", _scoreboard_record_without_metrics, ValueError,
     r"cpu/half.json: not a results record \(incomplete record: no 'metrics'\)"),
    ("load_records: metrics not an object", _records_metrics_not_an_object, ValueError,
     r"odd.json: not a results record \('metrics' must be an object, got list\)"),
    ("chapter 05: unreadable record", _chapter05_unreadable_record, ValueError,
     r"cut.json: not valid JSON"),
    ("chapter 05: records folder missing", _chapter05_missing_folder, FileNotFoundError,
     r"records folder .*no-records does not exist"),
    ("compare: a --read-also folder mistyped", _compare_read_also_mistyped, FileNotFoundError,
     r"records folder .*recrods does not exist"),
    # 6. training arguments
    ("train_baseline epochs=0", _train_baseline_epochs_zero, ValueError, r"epochs must be >= 1, got 0"),
    ("python -m ferlib.methods.baseline --epochs 0", lambda t: _cli(["--epochs", "0", "--out", str(t)]),
     ValueError, r"exit 2"),
    ("python -m ferlib.methods.baseline --out <a file>", lambda t: (t / "f").write_text("x") and _cli(
        ["--out", str(t / "f")]), ValueError, r"exit 2"),
    ("python -m ferlib.methods.baseline --data-root missing", lambda t: _cli(
        ["--dataset", "fer2013", "--data-root", str(t / "nope"), "--out", str(t)]), ValueError, r"exit 2"),
    ("python -m ferlib.methods.baseline --data-root with synthfacs", lambda t: _cli(
        ["--data-root", str(t), "--out", str(t)]), ValueError, r"exit 2"),
    # 7. class weights
    *[(f"{fn} class_weight {kind}", _weights(fn, bad), ValueError, match)
      for fn in ("CUCNLoss", "cucn_loss_fn", "mixing_loss", "weighted_cross_entropy")
      for kind, (bad, match) in WEIGHTS.items()],
    # 8. covariances
    *[(f"sample_latent {method} cov {kind}", _cov(method, cov), ValueError, match)
      for method in ("correct", "literal", "literal-diag")
      for kind, (cov, match) in COVS.items()],
]


@pytest.mark.parametrize("run, exc, match", [pytest.param(*c[1:], id=c[0]) for c in CATALOGUE])
def test_catalogue(tmp_path, monkeypatch, run, exc, match):
    monkeypatch.setenv("FERLIB_CACHE", str(tmp_path / "cache"))
    with pytest.raises(exc, match=match):
        run(tmp_path)


# ------------------------------------------------- the training CLI checks before any work
CLI_ERRORS = {
    "epochs 0": (["--epochs", "0"], "argument --epochs: must be >= 1, got 0"),
    "epochs -3": (["--epochs", "-3"], "argument --epochs: must be >= 1, got -3"),
    "seed negative": (["--seed", "-1"], "argument --seed: must be in [0, 2**32), got -1"),
    "out is a file": (["--out", "{tmp}/file"], "--out {tmp}/file: exists and is not a folder"),
    "checkpoint dir is a file": (["--checkpoint-dir", "{tmp}/file"],
                                 "--checkpoint-dir {tmp}/file: exists and is not a folder"),
    "unknown dataset": (["--dataset", "imagenet"], "argument --dataset: invalid choice: 'imagenet'"),
    "unknown backbone": (["--backbone", "vgg"], "argument --backbone: invalid choice: 'vgg'"),
    "real data without root": (["--dataset", "fer2013"], "--dataset fer2013 needs --data-root"),
}


@pytest.mark.parametrize("case", list(CLI_ERRORS))
def test_training_cli_refuses_before_any_work(tmp_path, monkeypatch, capsys, case):
    import ferlib.data
    import ferlib.methods.baseline.experiment

    def no_work(*a, **k):
        raise AssertionError("work started before the arguments were checked")

    monkeypatch.setattr(ferlib.data, "load_splits", no_work)
    monkeypatch.setattr(ferlib.methods.baseline.experiment, "train_baseline", no_work)
    (tmp_path / "file").write_text("x")
    argv, message = CLI_ERRORS[case]
    argv = [a.replace("{tmp}", str(tmp_path)) for a in argv]
    if "--out" not in argv:
        argv += ["--out", str(tmp_path / "out")]
    from ferlib.methods.baseline.__main__ import main

    with pytest.raises(SystemExit) as e:
        main(argv)
    assert e.value.code == 2
    assert message.replace("{tmp}", str(tmp_path)) in capsys.readouterr().err


def test_scoreboard_cli_with_a_mistyped_folder_keeps_the_page(tmp_path):
    page = tmp_path / "scoreboard.md"
    page.write_text("the committed page\n")
    proc = subprocess.run([sys.executable, "-m", "ferlib.book.scoreboard", "--records",
                           str(tmp_path / "book" / "recrods"), "--out", str(page)],
                          capture_output=True, text=True, cwd=ROOT)
    assert proc.returncode == 2
    assert "records folder" in proc.stderr and "recrods does not exist" in proc.stderr
    assert page.read_text() == "the committed page\n"


def test_records_counts_json_files_that_are_not_records(tmp_path, capsys):
    from ferlib.records import load_records
    from ferlib.book.scoreboard import write_page

    record(tmp_path / "records", "good.json", **GOOD)
    record(tmp_path / "records" / "checkpoints", "vaegan_config.json", latent_dim=4)
    df = load_records(tmp_path / "records", "**/*.json")
    assert len(df) == 1 and df.attrs["skipped_files"][0].endswith("vaegan_config.json")
    write_page(tmp_path / "records", tmp_path / "page.md")
    out = capsys.readouterr().out
    assert "read 1 records" in out and "1 JSON file(s) there are not records" in out
    assert "vaegan_config.json" in out


# ------------------------------------------------- FER2013: odd but legal rows still parse
def test_fer2013_rows_with_odd_whitespace_parse_to_the_same_pixels(tmp_path):
    from ferlib.data.fer2013 import read_fer2013_csv

    plain = read_fer2013_csv(fer_csv(tmp_path / "a.csv", [2304] * 4))
    text = (tmp_path / "a.csv").read_text().splitlines()
    text[2] = text[2].replace(" ", "  ", 5)                      # double spaces in row 1
    text[3] = text[3].replace(",", ", ", 1).replace(" ", "\t", 3)  # leading space, tabs in row 2
    (tmp_path / "b.csv").write_text("\n".join(text) + "\n")
    odd = read_fer2013_csv(tmp_path / "b.csv")
    assert np.array_equal(odd["images"], plain["images"])
    assert np.array_equal(odd["labels"], plain["labels"])


# ------------------------------------------------- ferlib-book from the wrong folder
def test_book_outside_its_folder_names_the_root_and_refuses_committed_writes(tmp_path, monkeypatch,
                                                                              capsys):
    from ferlib.book import runner as book

    def no_execution(*a, **k):          # nothing may run (with the old code it would)
        raise AssertionError("a notebook was executed")

    monkeypatch.setattr(book, "_execute", no_execution)
    monkeypatch.chdir(tmp_path)         # no _toc.yml here
    before = {p: p.stat().st_mtime_ns for p in (ROOT / "notebooks").glob("*.ipynb")}
    rc = book.main(["--no-build", "--update-committed", "--device", "cpu", "--only", "00_introduction"])
    captured = capsys.readouterr()
    assert rc == 2
    assert f"book root {ROOT} (the repository ferlib is installed from" in captured.out
    assert f"--update-committed would rewrite committed files of {ROOT}" in captured.err
    assert f"pass --root {ROOT} to confirm" in captured.err
    assert before == {p: p.stat().st_mtime_ns for p in (ROOT / "notebooks").glob("*.ipynb")}
