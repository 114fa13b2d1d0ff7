"""Resumable comparison runs (``ensure_records(checkpoint_root=...)``, ``python -m ferlib.compare
--checkpoint-dir``): every run trains in its own checkpoint folder, every training of a run in
its own subfolder, a run interrupted after an epoch and rerun writes the record an uninterrupted
run writes, and the folder is gone once the record is there."""
import itertools
import json
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from ferlib import compare
from ferlib.data import FaceDataset
from ferlib.data.splits import Splits

CLASSES = ("Angry", "Happy", "Sad")


@pytest.fixture(autouse=True)
def quick_provenance(monkeypatch):
    """Provenance asks git twice per record; not what these tests are about."""
    from ferlib import records as rec_mod
    monkeypatch.setattr(rec_mod, "provenance", lambda source=None: {"time_utc": None,
                                                                     "source": source})


def test_checkpoint_folders_of_different_runs_differ():
    methods = list(compare.METHODS) + list(compare.TABLE_ROWS)
    cells = [None, {"noise_rate": 0.1}, {"noise_rate": 0.2}, {"imbalance_ratio": 10},
             {"imbalance_ratio": 1.0}, {"noise_rate": 0.1 + 1e-12}]   # the last rounds to 0.1
    runs = list(itertools.product(methods, ("synthfacs", "fer2013"), ("smoke", "cpu"), cells,
                                  (0, 1)))
    folders = {compare.checkpoint_folder("root", *run) for run in runs}
    assert len(folders) == len(runs)
    # one run, two spellings of its method: one folder; the name stays readable
    assert compare.checkpoint_folder("r", "latent-aug", "fer2013", "cpu", {"noise_rate": 0.2}, 1) \
        == compare.checkpoint_folder("r", "latent_aug", "fer2013", "cpu", {"noise_rate": 0.2}, 1)
    name = compare.checkpoint_folder("r", "cucn:w+mix", "fer2013", "cpu", None, 2).name
    assert name.startswith("cucn_w+mix_fer2013_cpu_irnat_noise0_seed2_")


def test_every_training_of_a_run_gets_its_own_subfolder(monkeypatch, tmp_path):
    """Each runner, its chapter functions stubbed: the checkpoint folders it hands down are
    inside the run's folder and differ from one another."""
    import ferlib.methods.latent_aug.experiment as aug
    import ferlib.methods.latent_aug.latent as latent
    import ferlib.methods.cucn.experiment as cucn
    import ferlib.methods.ean.experiment as ean
    import ferlib.methods.baseline.experiment as baseline

    seen = []

    def spy(name, result):
        def fn(*a, checkpoint_dir=None, **k):
            seen.append((name, checkpoint_dir))
            return result
        return fn

    monkeypatch.setattr(baseline, "load_or_train_baseline",
                        spy("baseline", SimpleNamespace(model=None, record_path=None)))
    monkeypatch.setattr(aug, "train_or_load_vaegan", lambda *a, **k: SimpleNamespace(model=None))
    monkeypatch.setattr(aug, "encode_dataset", lambda *a, **k: (None, None))
    monkeypatch.setattr(latent, "class_latent_stats", lambda *a, **k: None)
    for fn in ("run_latent_augmentation", "run_matched_resampling", "run_dan"):
        monkeypatch.setattr(aug, fn, spy(fn, (None, None)))
    monkeypatch.setattr(ean, "noisy_label_experiment",
                        spy("noisy_label_experiment", pd.DataFrame({"record": []})))
    monkeypatch.setattr(cucn, "run_variant", spy("run_variant", SimpleNamespace(record_path=None)))
    monkeypatch.setattr("ferlib.methods.ahm.experiment.run_ahm_experiment",
                        lambda *a, **k: SimpleNamespace(record_path=None))
    splits = SimpleNamespace(train=SimpleNamespace(name="synthfacs", class_names=CLASSES))
    trainings = {}
    for method, runner in {**compare.METHODS, **compare.TABLE_ROWS}.items():
        run = compare.checkpoint_folder(tmp_path, method, "synthfacs", "smoke", None, 0)
        seen.clear()
        runner(splits, "smoke", "cpu", 0, tmp_path / "rec", checkpoint_dir=run)
        assert seen, method
        folders = [f for _, f in seen]
        assert all(f is not None and (f == run or run in f.parents) for f in folders), seen
        assert len(set(folders)) == len(folders), (method, seen)
        trainings[method] = sorted(str(f.relative_to(run)) for f in folders)
    # named by what they train (run_variant and noisy_label_experiment name their own
    # subfolder of the run's folder, by rung and by method and noise rate)
    assert trainings["latent_aug"] == ["baseline", "latent-aug"]
    assert trainings["dan+latent_aug"] == ["baseline", "dan+latent-aug"]
    assert trainings["balanced:matched"] == ["balanced-matched", "baseline"]
    assert trainings["ahm"] == ["baseline"] and trainings["dan"] == ["dan"]
    assert trainings["baseline+balanced"] == ["baseline+balanced"]
    assert trainings["ean"] == trainings["cucn"] == ["."]


def _splits():
    rng = np.random.default_rng(0)

    def ds(split, y):
        x = rng.integers(0, 255, (len(y), 16, 16), dtype=np.uint8)
        x[:, :8, :8] = (y * 120)[:, None, None]      # a corner that tells the classes apart
        return FaceDataset(x, y, CLASSES, name="synthfacs", split=split)
    return Splits(ds("train", np.repeat(np.arange(3), [60, 40, 20])),
                  ds("val", np.arange(3).repeat(10)), ds("test", np.arange(3).repeat(10)))


def _record(folder):
    """The baseline's record without what differs between two runs of it (times)."""
    (path,) = folder.glob("baseline_*.json")
    rec = json.loads(path.read_text())
    rec.pop("wall_time")
    rec["extra"]["history"] = {k: v for k, v in rec["extra"]["history"].items()
                               if "time" not in k}
    return rec


def test_an_interrupted_baseline_resumes_to_the_uninterrupted_record(tmp_path, monkeypatch):
    import dataclasses

    import ferlib.checkpoint
    from ferlib.config import get_profile

    # a toy split of 120 faces: batch 8 at lr 3e-3 learns more than one class in 2 epochs
    prof = dataclasses.replace(get_profile("smoke"), epochs=2, batch_size=8, lr=3e-3)
    kw = dict(profile=prof, seeds=[0], splits=_splits(), device="cpu", progress=False)
    compare.ensure_records(["baseline"], results_path=tmp_path / "plain", **kw)
    plain = _record(tmp_path / "plain")
    # a model that gets more than one class right: the records compared are not trivial
    assert sum(r > 0 for r in plain["metrics"]["per_class_recall"].values()) > 1

    # with a checkpoint folder: the same record, and nothing left behind
    ck = tmp_path / "ck"
    compare.ensure_records(["baseline"], results_path=tmp_path / "with", checkpoint_root=ck, **kw)
    assert _record(tmp_path / "with") == plain
    assert ck.is_dir() and list(ck.iterdir()) == []

    # interrupted once epoch 1 is saved: no record, its last.pt waits; the rerun resumes
    save, saved = ferlib.checkpoint.save_atomic, []

    def save_then_stop(obj, path):
        save(obj, path)
        saved.append(obj.get("epoch"))
        raise KeyboardInterrupt("stopped after the first checkpoint")

    monkeypatch.setattr(ferlib.checkpoint, "save_atomic", save_then_stop)
    with pytest.raises(KeyboardInterrupt):
        compare.ensure_records(["baseline"], results_path=tmp_path / "cut", checkpoint_root=ck,
                               **kw)
    (left,) = ck.glob("*/baseline/last.pt")
    assert saved == [1] and not list((tmp_path / "cut").glob("baseline_*.json"))
    epochs_run = []

    def save_and_count(obj, path):   # fit's checkpoints hold the epoch; the backbone file not
        epochs_run.append(obj.get("epoch") if isinstance(obj, dict) else None)
        return save(obj, path)

    monkeypatch.setattr(ferlib.checkpoint, "save_atomic", save_and_count)
    compare.ensure_records(["baseline"], results_path=tmp_path / "cut", checkpoint_root=ck, **kw)
    assert [e for e in epochs_run if e is not None] == [2]   # epoch 1 came from the checkpoint
    assert _record(tmp_path / "cut") == plain
    assert not left.parent.parent.exists()

    # a folder left by a stop between the record and its removal goes on the next call
    left.parent.mkdir(parents=True)
    left.write_bytes(b"")
    plan = compare.ensure_records(["baseline"], results_path=tmp_path / "cut",
                                  checkpoint_root=ck, **kw)
    assert plan["status"].tolist() == ["found"] and not left.parent.parent.exists()


def test_compare_cli_checks_the_checkpoint_dir_before_any_work(tmp_path, monkeypatch, capsys):
    def no_work(*a, **k):
        raise AssertionError("work started before the arguments were checked")

    ensure_records = compare.ensure_records
    monkeypatch.setattr(compare, "ensure_records", no_work)
    (tmp_path / "file").write_text("x")
    for value, message in ((tmp_path / "file", "exists and is not a folder"),
                           (tmp_path / "file" / "sub", "cannot create the folder")):
        with pytest.raises(SystemExit) as e:
            compare.main(["--out", str(tmp_path / "out"), "--checkpoint-dir", str(value)])
        assert e.value.code == 2
        assert f"--checkpoint-dir {value}: {message}" in capsys.readouterr().err
    with pytest.raises(ValueError, match="checkpoint_root .*file: exists and is not a folder"):
        ensure_records(["baseline"], results_path=tmp_path / "out", splits=_splits(),
                       checkpoint_root=tmp_path / "file", progress=False)
