"""ferlib.compare: tables over hand-made records (means over seeds by hand) and the resumable
ensure_records loop (a counting fake runner; no training)."""
import json

import numpy as np
import pytest

from ferlib import compare
from ferlib.data import FaceDataset
from ferlib.data.splits import Splits
from ferlib.records import load_records, write_record

CLASSES = ("Angry", "Happy", "Sad")


def _rec(folder, method, seed, acc, *, recalls=(0.5, 0.5, 0.5), dataset="synthfacs",
         split="test", profile="smoke", wall=10.0, **params):
    metrics = {"accuracy": acc, "mean_class_accuracy": float(np.mean(recalls)),
               "macro_f1": acc - 0.1, "min_class_recall": min(recalls),
               "per_class_recall": dict(zip(CLASSES, recalls))}
    return write_record(folder, method=method, dataset=dataset, split=split, metrics=metrics,
                        params={"profile": profile, **params}, seed=seed, device="cpu",
                        wall_time=wall)


@pytest.fixture(autouse=True)
def quick_provenance(monkeypatch):
    """Provenance asks git twice per record; not what these tests are about."""
    from ferlib import records as rec_mod
    monkeypatch.setattr(rec_mod, "provenance", lambda source=None: {"time_utc": None,
                                                                     "source": source})


@pytest.fixture
def records(tmp_path):
    # natural cell: baseline two seeds, latent-aug (chapter spelling) one seed
    _rec(tmp_path, "baseline", 0, 0.50, recalls=(0.2, 0.8, 0.5), wall=10.0, n_params=100)
    _rec(tmp_path, "baseline", 1, 0.70, recalls=(0.4, 0.9, 0.8), wall=20.0, n_params=100)
    _rec(tmp_path, "latent-aug", 0, 0.60, recalls=(0.6, 0.6, 0.6), wall=30.0)
    # other dataset / profile / method that must not leak into the synthfacs smoke table
    _rec(tmp_path, "baseline", 0, 0.99, dataset="fer2013", split="PublicTest")
    _rec(tmp_path, "baseline", 2, 0.99, profile="cpu")
    _rec(tmp_path, "ean:invariant", 0, 0.99)
    # imbalance cells (noise 0) and noise cells (natural imbalance)
    for seed, (a1, a10) in enumerate([(0.80, 0.40), (0.60, 0.30)]):
        _rec(tmp_path, "baseline", seed, a1, imbalance_ratio=1.0, noise_rate=0.0)
        _rec(tmp_path, "baseline", seed, a10, imbalance_ratio=10.0, noise_rate=0.0)
    _rec(tmp_path, "ean", 0, 0.55, noise_rate=0.0)
    _rec(tmp_path, "ean", 0, 0.45, noise_rate=0.2)
    _rec(tmp_path, "ean", 1, 0.35, noise_rate=0.2)
    return load_records(tmp_path)


def test_comparison_table_means_over_seeds(records):
    t = compare.comparison_table(records, "synthfacs", profile="smoke")
    # registry order; the chapter's "latent-aug" shown as the registry's "latent_aug"
    assert t["method"].tolist() == ["baseline", "latent_aug", "ean"]
    base = t.set_index("method").loc["baseline"]
    assert base["n_runs"] == 2
    assert base["accuracy"] == pytest.approx((0.50 + 0.70) / 2)
    assert base["accuracy_std"] == pytest.approx(np.std([0.5, 0.7], ddof=1))
    assert base["mean_class_accuracy"] == pytest.approx((0.5 + 0.7) / 2)
    assert base["min_class_recall"] == pytest.approx((0.2 + 0.4) / 2)
    assert base["wall_time"] == pytest.approx(15.0)
    assert base["n_params"] == 100
    # the natural cell holds ean at noise 0 only
    assert t.set_index("method").loc["ean", "accuracy"] == pytest.approx(0.55)
    assert "latent_aug" in t.attrs["note"] and "ean" in t.attrs["note"]
    # a parameter count handed in fills the gap
    t2 = compare.comparison_table(records, "synthfacs", profile="smoke",
                                  n_params={"latent-aug": 7, "ean": 9})
    assert t2.set_index("method")["n_params"].tolist() == [100, 7, 9]
    assert t2.attrs["note"] == ""


def test_comparison_table_filters_and_empty(records):
    fer = compare.comparison_table(records, "fer2013", split="PublicTest")
    assert fer["method"].tolist() == ["baseline"] and fer["accuracy"].iloc[0] == pytest.approx(0.99)
    cpu = compare.comparison_table(records, "synthfacs", profile="cpu")
    assert cpu["n_runs"].tolist() == [1]
    allm = compare.comparison_table(records, "synthfacs", profile="smoke",
                                    methods=["baseline", "ean:invariant"])
    assert allm["method"].tolist() == ["baseline", "ean:invariant"]
    empty = compare.comparison_table(records, "rafdb")
    assert empty.empty and "no records" in empty.attrs["note"]


def test_per_class_recall_table(records):
    pc = compare.per_class_recall_table(records, "synthfacs", profile="smoke",
                                        methods=["baseline", "latent_aug"])
    assert list(pc.columns) == list(CLASSES)
    assert pc.loc["baseline"].tolist() == pytest.approx([0.3, 0.85, 0.65])
    assert pc.loc["latent_aug"].tolist() == pytest.approx([0.6, 0.6, 0.6])


def test_degradation_tables(records):
    imb = compare.degradation_table(records, "imbalance_ratio", dataset="synthfacs", profile="smoke")
    assert imb["imbalance_ratio"].tolist() == [1.0, 10.0]
    assert imb["accuracy"].tolist() == pytest.approx([0.70, 0.35])
    assert imb["n_runs"].tolist() == [2, 2]
    noise = compare.degradation_table(records, "noise_rate", dataset="synthfacs", profile="smoke")
    by = {(m, r): a for m, r, a in noise[["method", "noise_rate", "accuracy"]].itertuples(index=False)}
    # baseline natural records (no noise_rate param) count as noise 0
    assert by[("baseline", 0.0)] == pytest.approx(0.60)
    assert by[("ean", 0.0)] == pytest.approx(0.55)
    assert by[("ean", 0.2)] == pytest.approx(0.40)
    with pytest.raises(ValueError, match="factor"):
        compare.degradation_table(records, "temperature")
    ax = compare.plot_degradation(noise, "noise_rate")
    assert len(ax.get_lines()) >= 2


def test_method_names():
    assert compare.normalize_method("dan+latent-aug") == "dan+latent_aug"
    assert compare.registry_name("latent-aug") == "latent_aug"
    assert compare.registry_name("ean:baseline") is None
    with pytest.raises(ValueError, match="unknown method"):
        compare.ensure_records(["no-such-method"], splits=object())
    with pytest.raises(ValueError, match="noise_rate"):
        compare.degradation_grid(noise_rates=[1.5])
    assert compare.degradation_grid([1, 10], [0, 0.1]) == [
        {"imbalance_ratio": None, "noise_rate": 0.0}, {"imbalance_ratio": 1.0, "noise_rate": 0.0},
        {"imbalance_ratio": 10.0, "noise_rate": 0.0}, {"imbalance_ratio": None, "noise_rate": 0.1}]


def _resolve(dotted: str):
    import importlib

    module, _, name = dotted.rpartition(".")
    return getattr(importlib.import_module(module), name)


def test_registry_names_what_each_runner_trains_with():
    entries = {**compare.METHODS, **compare.TABLE_ROWS}
    for key, r in entries.items():
        assert callable(_resolve(r.loss)), key
        assert r.predict is None or callable(_resolve(r.predict)), key
        assert r.sampler in compare.SAMPLERS, key
    # by hand: the balanced rows draw class-balanced batches, EAN predicts over the batch graph,
    # AHM has no gradient steps, the CUCN rungs all share its loss and prediction
    assert {k for k, r in entries.items() if r.sampler == "balanced"} == {
        "baseline+balanced", "latent_aug", "dan+balanced", "dan+latent_aug", "balanced:matched"}
    assert entries["ean"].predict.endswith("ean_predict_batch")
    assert entries["ahm"].sampler == "none"
    assert len({(r.loss, r.predict) for k, r in entries.items() if k.startswith("cucn")}) == 1


def test_registry_sampler_agrees_with_the_committed_records():
    from pathlib import Path

    folder = Path(__file__).resolve().parents[1] / "book" / "records" / "cpu_v2"
    recs = load_records(folder).dropna(subset=["param/sampler"])
    assert set(recs["method"]) >= {"baseline", "baseline+balanced"}
    for method, sampler in zip(recs["method"], recs["param/sampler"]):
        assert compare._runner(method).sampler == sampler, method


def test_table_rows_are_runnable_but_not_in_the_comparison(records, tmp_path):
    # the chapters' other rows resolve in either spelling ...
    assert compare.registry_name("dan+latent-aug") == "dan+latent_aug"
    assert compare.registry_name("cucn:w+cbam") == "cucn:w+cbam"
    assert compare._runner("cucn:w").record_method == "cucn:w"
    # ... but the default comparison table keeps to METHODS
    _rec(tmp_path, "cucn:w", 0, 0.9)
    t = compare.comparison_table(load_records(tmp_path), "synthfacs")
    assert "cucn:w" not in set(t["method"])
    t = compare.comparison_table(load_records(tmp_path), "synthfacs", methods=["cucn:w"])
    assert list(t["method"]) == ["cucn:w"] and t["accuracy"].iloc[0] == pytest.approx(0.9)


def test_parameter_counts_build_what_the_runners_train():
    # count_parameters builds through the runners' own builders, options included
    from ferlib.methods.latent_aug.experiment import build_dan_model
    from ferlib.train.recording import count_trainable
    s = _tiny_splits()
    assert compare.count_parameters("dan", s) == count_trainable(build_dan_model(s))
    assert count_trainable(build_dan_model(s, num_heads=2)) < compare.count_parameters("dan", s)
    base = compare.count_parameters("baseline", s)
    assert compare.count_parameters("latent_aug", s) == base   # the classifier, not the VAE-GAN
    assert compare.count_parameters("ahm", s) > base           # + the projection W
    assert base < compare.count_parameters("scn", s) and base < compare.count_parameters("ean", s)


def test_cucn_ladder_parameter_counts():
    # weights add no parameters; CBAM adds its gates; the full CUCN adds the uncertainty heads
    s = _tiny_splits()
    n = {m: compare.count_parameters(m, s)
         for m in ("cucn:base", "cucn:w", "cucn:w+cbam", "cucn:mix", "cucn:w+mix", "cucn")}
    assert n["cucn:base"] == n["cucn:w"] < n["cucn:w+cbam"] < n["cucn"]
    assert n["cucn:base"] < n["cucn:mix"] == n["cucn:w+mix"] < n["cucn"]


def _tiny_splits():
    rng = np.random.default_rng(0)
    labels = np.repeat(np.arange(3), [20, 10, 5])

    def ds(split, y):
        return FaceDataset(rng.integers(0, 255, (len(y), 8, 8), dtype=np.uint8), y, CLASSES,
                           name="synthfacs", split=split)
    return Splits(ds("train", labels), ds("val", np.arange(3).repeat(2)),
                  ds("test", np.arange(3).repeat(2)))


def test_ensure_records_runs_only_missing(tmp_path, monkeypatch):
    calls = []

    def fake(splits, profile, device, seed, results_path, *, noise_rate=0.0, **kw):
        calls.append((len(splits.train), noise_rate, seed))
        return [_rec(results_path, "latent-aug", seed, 0.5 - noise_rate, profile=profile.name,
                     n_params=42)]

    def no_count(*a, **k):
        raise AssertionError("the runner's record holds n_params; nothing is counted after it")

    monkeypatch.setitem(compare.METHODS, "latent_aug",
                        compare.Runner(fake, "latent-aug", "backbone", "test"))
    monkeypatch.setattr(compare, "count_parameters", no_count)
    grid = compare.degradation_grid([1], [0.2])
    kw = dict(grid=grid, seeds=[0], results_path=tmp_path, splits=_tiny_splits(), progress=False)
    plan = compare.ensure_records(["latent_aug"], **kw)
    assert plan["status"].tolist() == ["ran"] * 3
    # imbalance 1 keeps 5 per class (the smallest class); the others train on all 35
    assert sorted(calls) == [(15, 0.0, 0), (35, 0.0, 0), (35, 0.2, 0)]
    recs = load_records(tmp_path, "**/*.json")
    assert len(recs) == 3 and (recs["param/n_params"] == 42).all()   # the runner's, kept
    assert sorted(recs["param/imbalance_ratio"].dropna()) == [1.0]
    assert (tmp_path / "cells" / "irnat_noise0.2").is_dir()

    calls.clear()
    plan = compare.ensure_records(["latent_aug"], **kw)
    assert calls == [] and plan["status"].tolist() == ["found"] * 3

    # lose one record: only that one runs again; a second seed runs everything once
    gone = next((tmp_path / "cells").glob("ir1_*/*.json"))
    gone.unlink()
    plan = compare.ensure_records(["latent_aug"], **kw)
    assert calls == [(15, 0.0, 0)]
    assert plan["status"].tolist() == ["found", "ran", "found"]
    assert json.loads(gone.read_text())["params"]["imbalance_ratio"] == 1.0


def test_ensure_records_reads_committed_folder(tmp_path, monkeypatch):
    committed = tmp_path / "book" / "cpu"
    _rec(committed, "baseline", 0, 0.5, profile="smoke")

    def boom(*a, **k):
        raise AssertionError("must not run")

    monkeypatch.setitem(compare.METHODS, "baseline",
                        compare.Runner(boom, "baseline", "backbone", "test"))
    plan = compare.ensure_records(["baseline"], results_path=tmp_path / "build",
                                  read_also=[committed], splits=object(), progress=False)
    assert plan["status"].tolist() == ["found"]
    # another profile's record does not count
    with pytest.raises(AssertionError, match="must not run"):
        compare.ensure_records(["baseline"], profile="cpu", results_path=tmp_path / "build",
                               read_also=[committed], splits=_tiny_splits(), progress=False)


def test_gains_table_pairs_seeds_and_images(tmp_path):
    """Each method's gain over the baseline, paired by seed on the same 1,000 test images:
    right on the first k images, so the differences are worked by hand."""
    y = np.arange(1000) % 3

    def rec(method, seed, right):
        pred = np.where(np.arange(1000) < right, y, (y + 1) % 3)
        write_record(tmp_path, method=method, dataset="synthfacs", split="test",
                     metrics={"n": 1000, "accuracy": right / 1000, "y_true": y, "y_pred": pred},
                     params={"profile": "smoke"}, seed=seed, device="cpu", wall_time=1.0)

    for seed, (b, a, c) in enumerate([(500, 560, 500), (520, 590, 530)]):
        rec("baseline", seed, b)
        rec("ahm", seed, a)      # +6 and +7 points
        rec("cucn", seed, c)     # +0 and +1
    t = compare.gains_table(compare.load_all_records(tmp_path), "synthfacs", profile="smoke")
    t = t.set_index("method")
    assert t.loc["ahm", "gain"] == pytest.approx(6.5) and t.loc["ahm", "seeds"] == 2
    assert t.loc["ahm", "interval"] == "paired bootstrap over test images"
    assert t.loc["ahm", "reading"] == "higher" and t.loc["ahm", "low"] > 4
    # 0 and 10 discordant images in 1,000: the interval of +0.5 points holds zero
    assert t.loc["cucn", "gain"] == pytest.approx(0.5)
    assert t.loc["cucn", "reading"] == "not significant"
    assert "baseline" not in t.index
    said = compare.describe_gains(t.reset_index())
    assert "ahm: above baseline" in said and "cucn: not significantly different" in said
    assert "Fewer than three paired seeds for ahm, cucn (2 to 2)" in said


def test_estimates_table_and_sentences_built_from_the_records(tmp_path):
    # baseline: three seeds; latent-aug: one seed; no per-image predictions
    for seed, acc in ((0, 0.50), (1, 0.60), (2, 0.70)):
        _rec(tmp_path, "baseline", seed, acc)
    _rec(tmp_path, "latent-aug", 0, 0.55)
    df = compare.load_all_records(tmp_path)
    t = compare.estimates_table(df, "synthfacs", ["latent-aug", "baseline", "absent"])
    assert t["method"].tolist() == ["latent-aug", "baseline"]      # order given, absent dropped
    assert t["seeds"].tolist() == [1, 3]
    base = t.iloc[1]
    assert base["accuracy"] == pytest.approx(60.0)
    assert base["accuracy_sd"] == pytest.approx(10.0)               # sd of 50, 60, 70
    assert base["accuracy_interval"] == "t over seeds"
    shown = compare.format_estimates(t)
    assert shown["accuracy"].iloc[0] == "55.00 ± - (n=1)"          # fewer than three seeds: n
    assert shown["accuracy"].iloc[1].startswith("60.00 ± 10.00 [") and "n=" not in shown[
        "accuracy"].iloc[1]
    g = compare.gains_table(df, "synthfacs", methods=["latent-aug"]).iloc[0]
    assert g["reading"] == "no interval" and g["gain"] == pytest.approx(5.0)
    assert "do not say which is higher" in compare.gain_sentence(g)
    assert "neither confirm nor contradict" in compare.paper_gain_sentence(g, 3.0, "x")
    # with an interval: the reading makes the sentence, and a reversal is said plainly
    row = {"method": "a", "against": "b", "seeds": 3, "gain": -2.0, "low": -3.0, "high": -1.0,
           "interval": "t over paired seeds", "reading": "lower"}
    assert compare.gain_sentence(row).startswith("a scores lower than b")
    assert "reverses the paper's" in compare.paper_gain_sentence(row, 1.2, "x")
    assert "not significant" in compare.gain_sentence({**row, "high": 1.0,
                                                       "reading": "not significant"})
    # one seed: the interval counts the test images only, and a paper's claim is not judged
    one = {**row, "seeds": 1, "interval": "paired bootstrap over test images"}
    assert compare.gain_sentence(one).endswith("[-3.00, -1.00], 1 seed, test images only).")
    assert compare.paper_gain_sentence(one, 1.2, "x").endswith(
        "(on 1 seed: a reading, not yet a verdict).")
    assert "(one seed" in compare.gain_sentence(
        {**g, "interval": "none: one seed and no per-image predictions"})


def test_ordering_sentence_says_same_reverse_or_different():
    paper = {"none": 1.0, "balanced": 2.0, "latent": 3.0}
    assert "exact reverse" in compare.ordering_sentence("x", {"none": 3, "balanced": 2,
                                                              "latent": 1}, paper, 1)
    assert "same order" in compare.ordering_sentence("x", {"none": 1, "balanced": 2,
                                                           "latent": 3}, paper, 3)
    text = compare.ordering_sentence("x", {"none": 2, "balanced": 1, "latent": 3}, paper, 1)
    assert "a different order" in text and "(1 seed)" in text
