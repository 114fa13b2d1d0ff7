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
