"""ferlib.train.recording: the one writer of training records (issue 13) and the file names of
records, which must not change when the parameter count joins their params."""
import json

import numpy as np
import pandas as pd
import pytest
import torch

from ferlib.data import FaceDataset
from ferlib.data.splits import Splits
from ferlib.records import record_name, write_record
from ferlib.train import FitResult
from ferlib.train.recording import FIT_FIELDS, count_trainable, write_run_record

CLASSES = ("Angry", "Happy")


@pytest.fixture(autouse=True)
def quick_provenance(monkeypatch):
    """Provenance asks git twice per record; not what these tests are about."""
    from ferlib import records as rec_mod
    monkeypatch.setattr(rec_mod, "provenance", lambda source=None: {"source": source})


def _splits():
    def ds(split, n):
        return FaceDataset(np.zeros((n, 4, 4), dtype=np.uint8), np.arange(n) % 2, CLASSES,
                           name="synthfacs", split=split)
    return Splits(ds("train", 6), ds("val", 4), ds("test", 4))


def _result(model):
    test = {"accuracy": 0.5, "n": 4, "y_true": np.array([0, 1, 0, 1]),
            "y_pred": np.array([0, 0, 0, 1])}
    hist = pd.DataFrame({"epoch": [1, 2], "val_accuracy": [0.25, 0.5],
                         "val_recall_Angry": [0.0, 1.0]})
    return FitResult(hist, 2, {"accuracy": 0.5}, test, {"accuracy": 0.4}, 3.0, model, "cpu")


def test_a_record_name_ignores_the_parameter_count():
    params = {"profile": "cpu", "epochs": 20, "lr": 0.1, "sampler": "balanced"}
    name = record_name("latent-aug", "fer2013", "PublicTest", params, 0)
    # pinned: the name records were given before n_params was recorded (committed records of
    # book/records keep being replaced, not doubled, by a rerun)
    assert name == "latent-aug_fer2013_PublicTest_04b06eaaf2.json"
    assert record_name("latent-aug", "fer2013", "PublicTest", {**params, "n_params": 7}, 0) == name
    assert record_name("latent-aug", "fer2013", "PublicTest", {**params, "lr": 0.2}, 0) != name


def test_write_run_record_counts_the_model_and_keeps_the_name(tmp_path):
    model = torch.nn.Linear(3, 2)            # 8 trainable parameters
    model.bias.requires_grad_(False)         # frozen ones do not count
    params = {"profile": "smoke", "epochs": 2}
    path = write_run_record(tmp_path, method="baseline", splits=_splits(), params=params, seed=0,
                            result=_result(model), fit_fields=(*FIT_FIELDS, "history"),
                            extra={"checkpoint": "x.pt"})
    rec = json.loads(path.read_text())
    assert rec["params"] == {**params, "n_params": 6}
    assert path.name == record_name("baseline", "synthfacs", "test", params, 0)
    assert (rec["dataset"], rec["split"], rec["device"], rec["wall_time"]) == \
        ("synthfacs", "test", "cpu", 3.0)
    assert list(rec["extra"]) == ["best_epoch", "val_metrics", "test_last5", "checkpoint",
                                  "history"]
    assert rec["extra"]["history"] == {"epoch": [1, 2], "val_accuracy": [0.25, 0.5]}
    assert rec["predictions"] == {"y_true": "0101", "y_pred": "0001"}
    # the same record through write_record by hand: the same name, the same content but n_params
    plain = write_record(tmp_path / "plain", method="baseline", dataset="synthfacs", split="test",
                         metrics=_result(model).test_metrics, params=params, seed=0,
                         device="cpu", wall_time=3.0, extra=rec["extra"])
    assert plain.name == path.name
    other = json.loads(plain.read_text())
    assert {**other, "params": {**other["params"], "n_params": 6}} == rec


def test_a_run_without_fit_gives_its_parts(tmp_path):
    # AHM: the backbone plus the projection W, scored by hand (no FitResult)
    W = np.zeros((5, 3))
    path = write_run_record(tmp_path, method="ahm", splits=_splits(), params={}, seed=0,
                            model=(torch.nn.Linear(3, 2), W), metrics={"accuracy": 0.5},
                            device="cpu", wall_time=1.0, fit_fields=(), extra={"lam": 1.0})
    rec = json.loads(path.read_text())
    assert rec["params"]["n_params"] == 8 + 15 and rec["extra"] == {"lam": 1.0}


def test_bad_input_names_the_parameter(tmp_path):
    kw = dict(method="ahm", splits=_splits(), params={}, seed=0, metrics={"accuracy": 0.5},
              device="cpu", wall_time=1.0, fit_fields=())
    with pytest.raises(ValueError, match="model"):
        write_run_record(tmp_path, **kw)
    with pytest.raises(ValueError, match="fit_fields"):
        write_run_record(tmp_path, **{**kw, "fit_fields": FIT_FIELDS}, model=torch.nn.Linear(1, 1))
    with pytest.raises(ValueError, match="fit_fields"):
        write_run_record(tmp_path, method="x", splits=_splits(), params={}, seed=0,
                         result=_result(torch.nn.Linear(1, 1)), fit_fields=("epochs",))
    with pytest.raises(ValueError, match="n_params"):
        write_run_record(tmp_path, **{**kw, "params": {"n_params": 3}},
                         model=torch.nn.Linear(1, 1))
    with pytest.raises(ValueError, match="dataset and split"):
        write_run_record(tmp_path, **{**kw, "splits": None}, model=torch.nn.Linear(1, 1))
    with pytest.raises(ValueError, match="not both"):
        write_run_record(tmp_path, **kw, dataset="fer2013", model=torch.nn.Linear(1, 1))
    with pytest.raises(TypeError, match="model"):
        count_trainable("resnet18")
    assert not list(tmp_path.iterdir())
