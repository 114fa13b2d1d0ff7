"""Controls where a method's gain could come from something else: the AHM semantic space
against a refitted linear head and against one-hot prototypes (same frozen features), EAN's
batch graph against single-image inference, latent augmentation against balanced resampling
with the same number of draws per class."""
from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
from conftest import ConstantVAE, TinyBackbone


# ----------------------------------------------------------------------------------------------
# AHM: one-hot prototypes and a refitted logistic-regression head
# ----------------------------------------------------------------------------------------------
def test_one_hot_sae_by_hand():
    """X = I (one image per class), S = one-hot = I: every feature column has norm 1 (scale 1),
    A = I, B = lam I, C = (1 + lam) I, so (1 + lam) W = (1 + lam) I and W = I for every lam.
    The code of a test x is x itself and its cosine distance to e_c is 1 - x_c / ||x||."""
    from ferlib.methods.ahm.experiment import one_hot_prototypes
    from ferlib.methods.ahm.sae import SemanticClassifier

    P = one_hot_prototypes(3)
    np.testing.assert_array_equal(P, np.eye(3))
    x = np.array([[0.2, 0.9, 0.1], [3.0, 1.0, 2.0]])
    for lam in (0.5, 7.0):
        clf = SemanticClassifier(lam=lam).fit(np.eye(3), np.arange(3), P)
        np.testing.assert_allclose(clf.W_, np.eye(3), atol=1e-12)
        np.testing.assert_allclose(clf.distances(x), 1 - x / np.linalg.norm(x, axis=1, keepdims=True),
                                   atol=1e-12)
        assert clf.predict(x).tolist() == [1, 0]


def test_one_hot_control_is_the_argmax_of_a_linear_head():
    """With one-hot prototypes the nearest prototype by cosine is the argmax of the codes."""
    from ferlib.methods.ahm.experiment import one_hot_prototypes
    from ferlib.methods.ahm.sae import SemanticClassifier

    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(60, 5)), np.arange(60) % 3
    clf = SemanticClassifier(lam=3.0).fit(X, y, one_hot_prototypes(3))
    Xt = rng.normal(size=(40, 5))
    np.testing.assert_array_equal(clf.predict(Xt), clf.transform(Xt).argmax(1))
    with pytest.raises(ValueError, match="n_classes"):
        one_hot_prototypes(1)


def _adversarial_feats(rng):
    """3 well-separated classes, class 0 the majority of train (60 %); val labelled truly;
    test labelled all 0 (adversarial): a tiny C predicts the prior (class 0 everywhere) and
    scores 100 % on this test set, a large C separates the classes (val 100 %, test 1/3)."""
    centres = 4.0 * np.eye(3, 4)

    def split(y):
        return centres[y] + 0.3 * rng.normal(size=(len(y), 4)), y

    ytr = np.r_[np.zeros(60, int), np.ones(20, int), np.full(20, 2)]
    Xte, yte = split(np.arange(60) % 3)
    return {"train": split(ytr), "val": split(np.arange(30) % 3), "test": (Xte, np.zeros(60, int))}


def test_logreg_C_is_chosen_on_val_not_on_test():
    from ferlib.methods.ahm.experiment import logreg_sweep, select_on_val

    feats = _adversarial_feats(np.random.default_rng(0))
    sweep, models = logreg_sweep(feats, Cs=(1e-6, 10.0), class_names=["a", "b", "c"])
    tiny, large = sweep.set_index("C").loc[1e-6], sweep.set_index("C").loc[10.0]
    assert tiny.test_accuracy == 1.0 and tiny.val_accuracy == pytest.approx(1 / 3)
    assert large.val_accuracy == 1.0 and large.test_accuracy == pytest.approx(1 / 3)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")          # 10.0 is the grid's edge: warned, tested below
        assert select_on_val(sweep, "C") == 10.0
    with pytest.raises(ValueError, match="Cs"):
        logreg_sweep(feats, Cs=(0.0,))


def test_ahm_controls_records_carry_predictions_and_val_choice():
    from ferlib.methods.ahm.experiment import GridEdgeWarning, ahm_controls

    feats = _adversarial_feats(np.random.default_rng(1))
    with pytest.warns(GridEdgeWarning):
        ctrl = ahm_controls(feats, ["a", "b", "c"], lams=(1.0, 100.0), Cs=(1e-6, 1.0, 10.0))
    assert set(ctrl) == {"ahm:logreg", "ahm:onehot"}
    lr, oh = ctrl["ahm:logreg"], ctrl["ahm:onehot"]
    assert lr.params["C"] > 1e-6 and lr.val_metrics["accuracy"] == 1.0
    for c in (lr, oh):
        np.testing.assert_array_equal(c.metrics["y_true"], feats["test"][1])
        assert len(c.metrics["y_pred"]) == 60
        assert c.metrics["accuracy"] == pytest.approx(np.mean(c.metrics["y_pred"] == 0))
    assert oh.params["lam"] in (1.0, 100.0) and oh.params["prototypes"] == "one-hot"


class _Split:
    def __init__(self, name, split, class_names, n):
        self.name, self.split, self.class_names, self.n = name, split, class_names, n

    def __len__(self):
        return self.n


def test_run_ahm_experiment_writes_a_record_per_control(tmp_path, monkeypatch):
    """The runner reuses its extracted features for the controls (one extraction per split) and
    writes ahm, ahm:logreg and ahm:onehot records whose metrics carry y_true / y_pred."""
    from types import SimpleNamespace

    import ferlib.records
    import ferlib.train
    import ferlib.methods.baseline.experiment
    from ferlib.methods.ahm import load_hierarchy
    from ferlib.methods.ahm.experiment import AHM_METHODS, load_ahm_records, run_ahm_experiment
    from ferlib.metrics import classification_metrics

    names = list(load_hierarchy().classes)
    rng = np.random.default_rng(0)
    feats, extracted, written = {}, [], []
    for split, n in (("train", 140), ("val", 70), ("test", 70)):
        y = np.arange(n) % len(names)
        feats[split] = ((3 * np.eye(len(names), 10)[y] + 0.3 * rng.normal(size=(n, 10))).astype(np.float32), y)
    splits = SimpleNamespace(**{s: _Split("synthfacs", s, names, len(feats[s][1])) for s in feats})

    def extract(model, dataset, **kw):
        extracted.append(dataset.split)
        return feats[dataset.split]

    def write(folder, **kw):
        assert "y_true" in kw["metrics"] and "y_pred" in kw["metrics"], kw["method"]
        np.testing.assert_array_equal(kw["metrics"]["y_true"], feats["test"][1])
        written.append(kw["method"])
        return real_write(folder, **kw)

    real_write = ferlib.records.write_record
    monkeypatch.setattr(ferlib.records, "write_record", write)
    monkeypatch.setattr(ferlib.train, "extract_features", extract)
    base_m = classification_metrics(feats["test"][1], np.zeros(70, int), class_names=names)
    monkeypatch.setattr(ferlib.train, "evaluate", lambda *a, **k: base_m)
    backbone = torch.nn.Linear(10, len(names))   # features 10 -> scores: 10 K + K parameters
    monkeypatch.setattr(ferlib.methods.baseline.experiment, "load_or_train_baseline",
                        lambda *a, **k: SimpleNamespace(model=backbone, record_path=None))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        run = run_ahm_experiment(splits, device="cpu", lams=(1.0, 1e3), results_path=tmp_path)
    assert sorted(extracted) == ["test", "train", "val"]           # no second extraction
    assert written == list(AHM_METHODS) and set(run.control_records) == set(AHM_METHODS[1:])
    assert list(run.summary().columns) == ["baseline", "baseline+AHM", *AHM_METHODS[1:]]
    table = load_ahm_records(tmp_path, methods=AHM_METHODS)
    assert sorted(table["method"]) == sorted(AHM_METHODS)
    assert np.allclose(table["gain_points"], 100 * (table["accuracy"] - base_m["accuracy"]))
    # each record counts the backbone plus its own head on the 10 features
    k, n_base = len(names), 11 * len(names)
    n = dict(zip(table["method"], table["param/n_params"]))
    assert n == {"ahm": n_base + run.params["semantic_dim"] * 10, "ahm:onehot": n_base + k * 10,
                 "ahm:logreg": n_base + k * 10 + k}


# ----------------------------------------------------------------------------------------------
# EAN: batch graph against single-image inference
# ----------------------------------------------------------------------------------------------
def _toy_faces(n, seed, split, size=4):
    from ferlib.data.dataset import FaceDataset

    rng = np.random.default_rng(seed)
    return FaceDataset(rng.integers(0, 255, (n, size, size), dtype=np.uint8), rng.integers(0, 3, n),
                       ("a", "b", "c"), "toy", split)


@pytest.mark.parametrize("tau1, equal", [(1.0, True), (-1.0, False)])
def test_single_image_eval_equals_batch_eval_when_A_is_I(tau1, equal):
    """tau1 = 1: no pair of distinct images reaches cosine 1, so A = 0 and Eq. 7 gives
    A_hat = I: the batch-graph scores are the single-image ones. tau1 = -1 links every pair
    (a complete graph): the scores differ."""
    from conftest import TinyBackbone

    from ferlib.methods.ean.model import EANConfig, build_ean, ean_predict_batch
    from ferlib.methods.ean.experiment import single_image_metrics
    from ferlib.train import evaluate

    torch.manual_seed(0)
    model = build_ean(TinyBackbone(), 3, config=EANConfig(tau1=tau1, tau2=None, warmup_epochs=0))
    test = _toy_faces(40, 0, "test")
    single = single_image_metrics(model, test, device="cpu")
    batch = evaluate(model, test, device="cpu", predict_fn=ean_predict_batch)
    np.testing.assert_array_equal(single["y_true"], test.labels)
    assert np.allclose(single["scores"], batch["scores"], atol=1e-6) == equal
    if equal:
        np.testing.assert_array_equal(single["y_pred"], batch["y_pred"])
        assert single["accuracy"] == batch["accuracy"]


def test_noisy_label_experiment_writes_the_single_image_record(tmp_path):
    """One EAN training yields two records: ean (batch graph) and ean:single (A = I), with the
    same params, so ferlib.records.select finds them side by side."""
    from types import SimpleNamespace

    from ferlib.methods.ean.experiment import noisy_label_experiment
    from ferlib.records import read_record, select

    splits = SimpleNamespace(train=_toy_faces(48, 1, "train", 16), val=_toy_faces(24, 2, "val", 16),
                             test=_toy_faces(24, 3, "test", 16))
    out = noisy_label_experiment("smoke", splits=splits, noise_rates=(0.0,), methods=("ean",),
                                 epochs=1, device="cpu", results_path=tmp_path)
    recs = select(tmp_path, method=["ean", "ean:single"])
    assert sorted(recs["method"]) == ["ean", "ean:single"] and len(out) == 1
    ean, single = (recs[recs["method"] == m].iloc[0] for m in ("ean", "ean:single"))
    assert single["accuracy"] == pytest.approx(out["single_image_accuracy"].iloc[0])
    assert read_record(tmp_path / single["file"])["params"] == read_record(tmp_path / ean["file"])["params"]
    assert read_record(tmp_path / single["file"])["extra"]["batch_record"] == ean["file"]


# ----------------------------------------------------------------------------------------------
# latent augmentation against balanced resampling with the same number of draws
# ----------------------------------------------------------------------------------------------
def test_matched_resampling_has_the_latent_runs_draws_per_class():
    """Long-tailed pool 20 / 6 / 4; 3 epochs of 32 class-balanced draws in batches of 8; half
    of each batch replaced in epochs 1-2 (epoch 3 clean): 4 rows x 4 batches x 2 epochs = 32
    replaced rows in each run, the same rows, so the same count per class; the control's
    replacements are real images of the row's class (pixel value 40 c + i, i < 10)."""
    from ferlib.methods.latent_aug import (LatentAugmentation, MatchedResampling,
                                           class_latent_stats, clean_epochs_from)
    from ferlib.data.dataset import FaceDataset
    from ferlib.train.samplers import DistributedClassBalancedSampler

    labels = np.repeat([0, 1, 2], [20, 6, 4])
    images = (40 * labels + np.arange(30) % 10).astype(np.uint8)[:, None, None] * np.ones((1, 4, 4), np.uint8)
    pool = FaceDataset(images, labels, ("a", "b", "c"), "toy", "train")
    x_all, y_all = pool.tensors()
    stats = class_latent_stats(torch.randn(30, 2), torch.from_numpy(labels), 3)
    kw = dict(aug_ratio=0.5, clean_epochs_from=clean_epochs_from(3, 1), seed=7)
    latent = LatentAugmentation(ConstantVAE(), stats, **kw)
    control = MatchedResampling(pool, stats.present, **kw)
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(16, 3))
    seen_labels = []
    sampler = DistributedClassBalancedSampler(labels, num_samples=32, seed=0)
    for epoch in (1, 2, 3):
        sampler.set_epoch(epoch)
        order = torch.tensor(list(sampler))
        for b in range(4):
            x, y = x_all[order[8 * b:8 * b + 8]], y_all[order[8 * b:8 * b + 8]]
            seen_labels += y.tolist()
            if latent.augments_in(epoch):   # peek at both replacements, then rewind
                gens = [g for r in (latent, control) for g in (r.generator, r.draw_generator)]
                states = [g.get_state() for g in gens]
                _, mask_l = latent.replace(x, y)
                x_c, mask_c = control.replace(x, y)
                assert torch.equal(mask_l, mask_c)                       # the same rows
                drawn_class = torch.floor(255 * x_c[mask_c][:, 0, 0, 0] / 40 + 1e-4).long()
                assert torch.equal(drawn_class, y[mask_c])               # real images of y
                for g, st in zip(gens, states):
                    g.set_state(st)
            for run in (latent, control):
                run(model, x, y, epoch)
    assert latent.replaced == control.replaced == 32 and latent.seen == control.seen == 96
    np.testing.assert_array_equal(latent.replaced_per_class, control.replaced_per_class)
    assert latent.replaced_per_class.min() > 0                           # every class redrawn
    # the training sets: originals + draws per class, equal in both runs
    np.testing.assert_array_equal(np.bincount(seen_labels, minlength=3) + latent.replaced_per_class,
                                  np.bincount(seen_labels, minlength=3) + control.replaced_per_class)
    with pytest.raises(ValueError, match="pool"):
        MatchedResampling([], aug_ratio=0.5)


def test_flip_averaged_features_are_the_mean_of_the_image_and_its_mirror(tmp_path):
    """extract_features(tta_flip=True): features of a mirror-symmetric image are unchanged, and
    of any image the mean of its own and its mirror's features (cached under another name)."""
    from ferlib.data import FaceDataset
    from ferlib.train import extract_features

    torch.manual_seed(0)
    model = TinyBackbone(in_dim=16, dim=8)
    images = np.random.default_rng(0).integers(0, 256, (6, 4, 4), dtype=np.uint8)
    images[0] = images[0][:, ::-1] // 2 + images[0] // 2   # not symmetric in general
    images[1] = np.array([[1, 2, 2, 1]] * 4, dtype=np.uint8) * 50   # symmetric left-right
    ds = FaceDataset(images, np.zeros(6, dtype=np.int64), ("a",), name="toy", split="test")
    plain, _ = extract_features(model, ds, device="cpu", cache_dir=tmp_path)
    mirror = FaceDataset(images[:, :, ::-1].copy(), np.zeros(6, dtype=np.int64), ("a",),
                         name="toy", split="test")
    mirrored, _ = extract_features(model, mirror, device="cpu")
    flipped, _ = extract_features(model, ds, device="cpu", cache_dir=tmp_path, tta_flip=True)
    np.testing.assert_allclose(flipped, (plain + mirrored) / 2, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(flipped[1], plain[1], rtol=1e-5, atol=1e-6)
    assert not np.allclose(flipped[2], plain[2])
    assert len(list(tmp_path.glob("features_*_flip.npz"))) == 1
