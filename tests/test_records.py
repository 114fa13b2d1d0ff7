"""ferlib.records: JSON round trip, provenance, flattening into a table."""
import json
import sys

import numpy as np
import pytest
import torch

from ferlib.records import load_records, read_record, to_jsonable, write_record

METRICS = {"accuracy": np.float64(0.75), "mean_class_accuracy": 0.5, "n": np.int64(8),
           "per_class_recall": {"Angry": 0.25, "Happy": np.float32(0.75)},
           "confusion": np.array([[1, 3], [1, 3]]),
           "scores": np.zeros((8, 2)), "y_pred": np.zeros(8)}  # evaluate() arrays: left out


def _write(folder, **kw):
    args = dict(method="ce", dataset="synthfacs", split="test", metrics=METRICS,
                params={"lr": 1e-3, "epochs": np.int64(2), "sizes": (1, 2)}, seed=0,
                device=torch.device("cpu"), wall_time=1.5, source="02_baseline")
    args.update(kw)
    return write_record(folder, **args)


def test_round_trip_and_provenance(tmp_path):
    path = _write(tmp_path)
    assert path.parent == tmp_path and path.name.startswith("ce_synthfacs_test_")
    rec = read_record(path)
    assert rec["method"] == "ce" and rec["dataset"] == "synthfacs" and rec["split"] == "test"
    assert rec["seed"] == 0 and rec["device"] == "cpu" and rec["wall_time"] == 1.5
    assert rec["metrics"] == {"accuracy": 0.75, "mean_class_accuracy": 0.5, "n": 8,
                              "per_class_recall": {"Angry": 0.25, "Happy": 0.75},
                              "confusion": [[1, 3], [1, 3]]}
    assert rec["params"] == {"lr": 1e-3, "epochs": 2, "sizes": [1, 2]}
    prov = rec["provenance"]
    assert prov["torch"] == torch.__version__
    assert prov["python"] == "%d.%d.%d" % sys.version_info[:3]
    assert prov["command"] == sys.argv and prov["source"] == "02_baseline"
    assert prov["time_utc"].endswith("+00:00")
    assert prov["git_commit"] is None or len(prov["git_commit"]) == 40
    assert isinstance(prov["git_dirty"], bool) or prov["git_commit"] is None


def test_file_names(tmp_path):
    a = _write(tmp_path)
    assert _write(tmp_path) == a                       # same experiment -> same record
    assert _write(tmp_path, seed=1) != a               # another seed -> another file
    assert _write(tmp_path, method="ce+balanced").name.startswith("ce_balanced_synthfacs_")
    assert _write(tmp_path, name="mine").name == "mine.json"
    assert len(list(tmp_path.glob("*.json"))) == 4


def test_bad_values_are_clear_errors(tmp_path):
    with pytest.raises(ValueError, match="metrics.accuracy is nan"):
        _write(tmp_path, metrics={"accuracy": float("nan")})
    with pytest.raises(TypeError, match="params.model: cannot store a object"):
        _write(tmp_path, params={"model": object()})
    with pytest.raises(ValueError, match="method must be a non-empty string"):
        _write(tmp_path, method="")
    assert to_jsonable({"x": float("inf")}) == {"x": None}  # params/extra: non-finite -> null


def test_load_records_flattens(tmp_path):
    _write(tmp_path)
    _write(tmp_path, method="ce+balanced", seed=1,
           metrics={"accuracy": 0.5, "per_class_recall": {"Angry": 0.5, "Happy": 0.5},
                    "per_class_ap": {"Angry": 0.4}})
    (tmp_path / "notes.json").write_text(json.dumps({"comment": "not a record"}))
    df = load_records(tmp_path)
    assert len(df) == 2
    assert set(df["method"]) == {"ce", "ce+balanced"}
    row = df.set_index("method").loc["ce"]
    assert row["accuracy"] == 0.75 and row["recall/Angry"] == 0.25 and row["recall/Happy"] == 0.75
    assert row["param/lr"] == 1e-3 and row["param/epochs"] == 2 and row["param/sizes"] == "[1, 2]"
    assert "confusion" not in df.columns
    assert df.set_index("method").loc["ce+balanced", "ap/Angry"] == 0.4
    for col in ("file", "seed", "device", "wall_time", "time_utc", "git_commit", "source"):
        assert col in df.columns
    (tmp_path / "broken.json").write_text("{not json")
    with pytest.raises(ValueError, match="broken.json: not valid JSON"):
        load_records(tmp_path)
    with pytest.raises(ValueError, match="not a results record"):
        read_record(tmp_path / "notes.json")


def test_load_records_missing_or_empty_folder_is_an_error_unless_missing_ok(tmp_path):
    with pytest.raises(FileNotFoundError, match="records folder .*absent does not exist"):
        load_records(tmp_path / "absent")
    with pytest.raises(ValueError, match="holds no results record"):
        load_records(tmp_path)
    df = load_records(tmp_path / "absent", missing_ok=True)
    assert df.empty and "method" in df.columns


# ----------------------------------------------------------------------------------------------
# the record vocabulary: one definition of the natural, clean-label cell
# ----------------------------------------------------------------------------------------------
def test_cell_of_reads_the_condition_of_a_record():
    from ferlib.records import cell_of, is_natural_clean

    assert cell_of({}) == (None, 0.0)                                  # nothing stamped
    assert cell_of({"imbalance_ratio": None, "noise_rate": None}) == (None, 0.0)
    assert cell_of({"imbalance_ratio": float("nan")}) == (None, 0.0)   # a table's missing value
    assert cell_of({"imbalance_ratio": 10, "noise_rate": 0.2}) == (10.0, 0.2)
    assert is_natural_clean({"noise_rate": 0.0}) and is_natural_clean(None)
    assert not is_natural_clean({"imbalance_ratio": 1})     # a balanced subsample: a grid cell
    assert not is_natural_clean({"noise_rate": 0.1})
    with pytest.raises(ValueError, match="r.json: params.imbalance_ratio = 'ten'"):
        cell_of({"imbalance_ratio": "ten"}, "r.json")


def _cell_record(folder, method, seed, acc, **params):
    return write_record(folder, method=method, dataset="fer2013", split="PublicTest",
                        metrics={"accuracy": acc, "mAP": acc, "min_class_recall": acc,
                                 "max_class_recall": acc},
                        params={"profile": "cpu", "backbone": "smallcnn", **params}, seed=seed,
                        device="cpu", wall_time=1.0, extra={"baseline_metrics": {"accuracy": 0.1}})


def test_select_filters_by_method_dataset_profile_seed_and_cell(tmp_path):
    from ferlib.records import select

    _cell_record(tmp_path, "latent-aug", 0, 0.5)                                     # natural
    _cell_record(tmp_path, "latent_aug", 1, 0.6, imbalance_ratio=None, noise_rate=0.0)
    _cell_record(tmp_path / "cells" / "a", "latent-aug", 2, 0.4, noise_rate=0.2)
    _cell_record(tmp_path / "cells" / "b", "latent-aug", 3, 0.3, imbalance_ratio=10.0)
    _cell_record(tmp_path / "cells" / "c", "latent-aug", 4, 0.3, imbalance_ratio=1.0)
    _cell_record(tmp_path, "dan", 5, 0.7)
    seeds = lambda df: sorted(df["seed"])
    assert seeds(select(tmp_path, natural=True, clean=True)) == [0, 1, 5]
    assert seeds(select(tmp_path, method="latent_aug", natural=True, clean=True)) == [0, 1]
    assert seeds(select(tmp_path, natural=False)) == [3, 4]
    assert seeds(select(tmp_path, clean=False)) == [2]
    assert seeds(select(tmp_path, imbalance_ratio=1)) == [4]
    assert seeds(select(tmp_path, noise_rate=0.2, natural=True)) == [2]
    assert seeds(select(tmp_path, method=["dan", "latent-aug"], seed=5)) == [5]
    assert len(select(tmp_path, profile="smoke")) == 0 and len(select(tmp_path, dataset="rafdb")) == 0
    assert len(select(tmp_path / "none", natural=True, missing_ok=True)) == 0   # asked for: empty
    with pytest.raises(FileNotFoundError, match="records folder .*none does not exist"):
        select(tmp_path / "none", natural=True)                      # else: nothing vanishes
    assert len(select(tmp_path, pattern="*.json")) == 3               # top level only
    # a loaded table works the same and keeps the row order
    table = load_records(tmp_path, "**/*.json")
    assert list(select(table, natural=True)["file"]) == [f for f in table["file"]
                                                         if not f.startswith("cells/b")
                                                         and not f.startswith("cells/c")]


def test_a_ratio_1_record_is_natural_for_no_reader(tmp_path):
    """A record of ``--imbalance 1`` (a balanced subsample of the training split) copied beside
    the natural runs is counted by none of compare, the chapters' loaders or the scoreboard."""
    from ferlib import compare
    from ferlib.methods.ahm.experiment import load_ahm_records
    from ferlib.methods.latent_aug.experiment import committed_table1
    from ferlib.methods.cucn.experiment import load_table2_records
    from ferlib.methods.ean.experiment import load_noisy_records
    from ferlib.book.scoreboard import scoreboard

    for method in ("ahm", "baseline", "latent-aug", "cucn", "ean"):
        _cell_record(tmp_path, method, 0, 0.40, noise_rate=0.0)               # natural, clean
        _cell_record(tmp_path / "cells" / "ir1_noise0", method, 0, 0.90,      # ratio 1
                     imbalance_ratio=1.0, noise_rate=0.0)
    recs = compare.load_all_records(tmp_path)
    assert len(recs) == 10
    table = compare.comparison_table(recs, "fer2013", profile="cpu")
    assert set(table["method"]) == {"ahm", "baseline", "latent_aug", "cucn", "ean"}
    assert (table["n_runs"] == 1).all() and np.allclose(table["accuracy"], 0.40)
    # the ratio-1 cell is a cell of its own
    at_1 = compare.comparison_table(recs, "fer2013", profile="cpu", cell={"imbalance_ratio": 1})
    assert np.allclose(at_1["accuracy"], 0.90)
    assert list(load_ahm_records(tmp_path)["accuracy"]) == [0.40]
    t1 = committed_table1(tmp_path)[("fer2013", "cpu")]
    assert list(t1["accuracy"]) == [0.40, 0.40]                              # baseline, latent-aug
    assert list(load_table2_records(tmp_path)["accuracy"]) == [0.40]
    assert list(load_noisy_records(tmp_path)["accuracy"]) == [0.40, 0.40]    # baseline, ean
    board = scoreboard(tmp_path).set_index("id")
    assert board.loc["ahm-fer2013", "ours"] == pytest.approx(40.0)
    assert board.loc["ahm-fer2013-gain", "ours"] == pytest.approx(0.0)       # 40 - 40, not 90 - ...


def test_labels_encode_one_character_each_and_round_trip():
    from ferlib.records import decode_labels, encode_labels

    assert encode_labels(np.array([0, 3, 11, 35])) == "03bz"
    assert decode_labels("03bz").tolist() == [0, 3, 11, 35]
    with pytest.raises(ValueError, match="0..35"):
        encode_labels(np.array([36]))
    with pytest.raises(ValueError, match="integer"):
        encode_labels(np.array([0.5]))
    with pytest.raises(ValueError, match=r"'#' at position 2"):
        decode_labels("01#", "rec.json")


def test_a_record_keeps_the_test_predictions_it_was_scored_on(tmp_path):
    from ferlib.records import predictions_of

    y_true, y_pred = np.array([0, 1, 2, 2]), np.array([0, 2, 2, 2])
    metrics = {"n": 4, "accuracy": 0.75, "y_true": y_true, "y_pred": y_pred,
               "scores": np.eye(3)[y_pred]}
    path = write_record(tmp_path, method="m", dataset="d", split="test", metrics=metrics,
                        params={}, seed=0, device="cpu", wall_time=1.0)
    rec = read_record(path)
    assert rec["predictions"] == {"y_true": "0122", "y_pred": "0222"}
    assert "scores" not in rec["metrics"] and "y_pred" not in rec["metrics"]
    got_true, got_pred = predictions_of(path)
    assert got_true.tolist() == [0, 1, 2, 2] and got_pred.tolist() == [0, 2, 2, 2]
    # a record written without them says so with None, not an empty array
    bare = write_record(tmp_path, method="m", dataset="d", split="test", metrics={"n": 4},
                        params={"x": 1}, seed=0, device="cpu", wall_time=1.0)
    assert predictions_of(bare) is None
    with pytest.raises(ValueError, match=r"y_true \(4\), y_pred \(3\)"):
        write_record(tmp_path, method="m", dataset="d", split="test",
                     metrics={"n": 4, "y_true": y_true, "y_pred": y_pred[:3]}, params={},
                     seed=0, device="cpu", wall_time=1.0)
