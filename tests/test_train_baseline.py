"""train_baseline / load_or_train_baseline and the ``python -m ferlib.methods.baseline`` command
line, on tiny random splits (16x16 faces, small CNN of width 4, one epoch)."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch

import ferlib.data
from ferlib.config import PROFILES
from ferlib.data.dataset import FaceDataset
from ferlib.data.labels import BASIC7
from ferlib.data.splits import Splits
from ferlib.records import load_records, predictions_of
from ferlib.methods.baseline.__main__ import main
from ferlib.methods.baseline.experiment import load_or_train_baseline, train_baseline

TINY = PROFILES["smoke"].replace(name="smoke", width=4, epochs=1, batch_size=32)


def tiny_splits(seed=0):
    r = np.random.default_rng(seed)

    def ds(n, split):
        return FaceDataset(r.integers(0, 256, (n, 16, 16), dtype=np.uint8), np.arange(n) % 7,
                           BASIC7, "tinyfaces", split)
    return Splits(ds(64, "train"), ds(21, "val"), ds(21, "test"))


def test_train_baseline_writes_record_and_backbone_and_is_reused(tmp_path):
    splits = tiny_splits()
    result, record_path, ckpt = train_baseline(splits, TINY, "cpu", seed=0, balanced=True,
                                               results_path=tmp_path, progress=False)
    rec = json.loads(record_path.read_text())
    assert rec["method"] == "baseline+balanced" and rec["dataset"] == "tinyfaces"
    assert rec["split"] == "test" and rec["seed"] == 0
    assert rec["params"]["sampler"] == "balanced" and rec["params"]["n_train"] == 64
    assert rec["metrics"]["accuracy"] == pytest.approx(result.test_metrics["accuracy"])
    assert rec["extra"]["checkpoint"] == ckpt.name and ckpt.exists()
    assert ckpt.stem == record_path.stem  # record and backbone share a name
    assert rec["extra"]["history"]["epoch"] == [1]
    assert rec["provenance"]["torch"] == torch.__version__
    # the test predictions of the selected epoch are kept, image by image, and agree with the
    # recorded accuracy (what ferlib.stats pairs across methods)
    y_true, y_pred = predictions_of(rec)
    assert len(y_true) == rec["metrics"]["n"] == len(splits.test)
    assert y_true.tolist() == splits.test.labels.tolist()
    assert np.mean(y_true == y_pred) == pytest.approx(rec["metrics"]["accuracy"])

    run = load_or_train_baseline(splits, TINY, "cpu", seed=0, balanced=True,
                                 results_path=tmp_path, progress=False)
    assert run.result is None and run.checkpoint_path == ckpt  # reused, not retrained
    for (k, a), b in zip(result.model.state_dict().items(), run.model.state_dict().values()):
        assert torch.equal(a.cpu(), b.cpu()), k
    other = load_or_train_baseline(splits, TINY, "cpu", seed=1, balanced=True,
                                   results_path=tmp_path, progress=False)
    assert other.result is not None and other.checkpoint_path != ckpt  # another seed: trained


def test_cli_writes_one_record(tmp_path, monkeypatch, capsys):
    calls = {}

    def fake_load_splits(dataset, **kw):
        calls.update(kw, dataset=dataset)
        return tiny_splits()

    monkeypatch.setattr(ferlib.data, "load_splits", fake_load_splits)
    monkeypatch.setitem(PROFILES, "smoke", TINY)
    assert main(["--dataset", "synthfacs", "--profile", "smoke", "--device", "cpu", "--seed", "2",
                 "--out", str(tmp_path), "--no-progress"]) == 0
    assert calls["dataset"] == "synthfacs" and calls["seed"] == 2 and calls["val_split"] == "holdout"
    out = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert out["world_size"] == 1 and out["best_epoch"] == 1
    recs = load_records(tmp_path)
    assert list(recs["method"]) == ["baseline"] and list(recs["seed"]) == [2]
    assert "ferlib.methods.baseline" in " ".join(recs["source"].astype(str))


def test_cli_rejects_unknown_profile(capsys):
    with pytest.raises(SystemExit):
        main(["--profile", "huge", "--out", "x"])
    assert "invalid choice: 'huge'" in capsys.readouterr().err
