"""Tests of ferlib.train: fit, evaluate, resume, samplers, feature cache (chapter 02_baseline).

Everything runs on tiny uint8 FaceDatasets and models of a few hundred weights on the CPU.
"""
from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from ferlib.data.dataset import FaceDataset
from ferlib.train import (CHECKPOINT_NAME, DistributedClassBalancedSampler, IndexedDataset,
                          evaluate, extract_features, fit, set_seed)
from ferlib.train.engine import _BatchReader
from ferlib.train.features import feature_cache_path

CLASSES = ("a", "b", "c")


def stripes(n, seed, counts=None, size=12):
    """Class c has a bright vertical stripe in columns 4c..4c+3 on noise: linearly separable."""
    r = np.random.default_rng(seed)
    y = (np.repeat(np.arange(len(counts)), counts) if counts is not None
         else r.integers(0, 3, n)).astype(np.int64)
    r.shuffle(y)
    img = r.integers(0, 60, (len(y), size, size)).astype(np.uint8)
    for c in range(3):
        img[y == c, :, 4 * c:4 * c + 4] += 150
    return FaceDataset(img, y, CLASSES, "stripes", "train")


class TinyCNN(nn.Module):
    """Conv + BatchNorm + dropout (exercises running stats and the RNG), with forward_features."""

    def __init__(self, width=4, k=3):
        super().__init__()
        self.conv = nn.Conv2d(1, width, 3, padding=1)
        self.bn = nn.BatchNorm2d(width)
        self.drop = nn.Dropout(0.2)
        self.fc = nn.Linear(3 * width, k)
        self.feature_dim = 3 * width

    def forward_features(self, x):
        h = F.relu(self.bn(self.conv(x)))  # (B, W, H, W)
        return F.adaptive_avg_pool2d(h, (1, 3)).flatten(1)  # (B, 3W): left, middle, right

    def forward(self, x):
        return self.fc(self.drop(self.forward_features(x)))  # (B, K)


def model(width=4, seed=0):
    torch.manual_seed(seed)
    return TinyCNN(width)


def metric_cols(history):
    return [c for c in history.columns if c != "epoch_time"]


# --------------------------------------------------------------------------------------------
def test_fit_learns_a_separable_problem_and_returns_best_weights():
    tr, va, te = stripes(192, 0), stripes(60, 1), stripes(60, 2)
    res = fit(model(), tr, va, test_set=te, epochs=5, batch_size=64, lr=5e-2, device="cpu",
              progress=False)
    assert list(res.history["epoch"]) == [1, 2, 3, 4, 5]
    assert res.test_metrics["accuracy"] >= 0.95
    assert res.val_metrics["accuracy"] == res.history["val_accuracy"].max()
    # the returned model carries the selected epoch's weights
    again = evaluate(res.model, va, device="cpu")
    assert again["accuracy"] == pytest.approx(res.val_metrics["accuracy"])
    assert again["scores"].shape == (60, 3) and np.allclose(again["scores"].sum(1), 1, atol=1e-5)
    assert (again["y_pred"] == again["scores"].argmax(1)).all()
    # test_last5: mean over the last five epochs of the history's test columns
    assert res.test_last5["accuracy"] == pytest.approx(res.history["test_accuracy"].tail(5).mean())
    assert res.test_last5["epochs"] == [1, 2, 3, 4, 5]
    assert res.history["train_loss"].iloc[-1] < res.history["train_loss"].iloc[0]


# --------------------------------------------------------------------------------------------
# Selection uses validation only. Images carry (set id, label, row) in their first pixels and a
# scripted predict_fn answers correctly for the first n rows, n taken from a table per epoch:
#   epoch:              1     2     3
#   val accuracy:      2/4   4/4   1/4      -> best val epoch = 2
#   test accuracy:     4/4   0/4   2/4      -> best test epoch would be 1
SCRIPT = {0: [2, 4, 1], 1: [4, 0, 2]}  # set id -> number of correct rows per epoch


def scripted_set(set_id, n=4):
    img = np.zeros((n, 4, 4), np.uint8)
    y = np.arange(n) % 3
    img[:, 0, 0], img[:, 0, 1], img[:, 0, 2] = set_id, y, np.arange(n)
    return FaceDataset(img, y, CLASSES, f"scripted{set_id}", "val")


class Scripted(nn.Module):
    def __init__(self):
        super().__init__()
        self.w = nn.Parameter(torch.zeros(3))
        self.epoch = 0


def scripted_loss(model, x, y, epoch):
    model.epoch = epoch
    return (model.w ** 2).sum(), torch.zeros(len(y), 3) + model.w


def scripted_predict(model, x):
    raw = (x[:, 0, 0, :3] * 255).round().long()  # (B, 3): set id, label, row
    set_id, label, row = raw[:, 0], raw[:, 1], raw[:, 2]
    n_ok = torch.tensor([SCRIPT[int(s)][model.epoch - 1] for s in set_id])
    pred = torch.where(row < n_ok, label, (label + 1) % 3)
    return F.one_hot(pred, 3).float()


def test_selection_uses_validation_never_test():
    res = fit(Scripted(), scripted_set(2), scripted_set(0), test_set=scripted_set(1), epochs=3,
              batch_size=4, loss_fn=scripted_loss, predict_fn=scripted_predict, device="cpu",
              progress=False)
    assert list(res.history["val_accuracy"]) == [0.5, 1.0, 0.25]
    assert list(res.history["test_accuracy"]) == [1.0, 0.0, 0.5]
    assert res.best_epoch == 2
    assert res.val_metrics["accuracy"] == 1.0
    assert res.test_metrics["accuracy"] == 0.0  # the test score of the val-selected epoch
    assert res.test_last5["accuracy"] == pytest.approx(0.5)  # (1 + 0 + 0.5) / 3: fewer than 5


# --------------------------------------------------------------------------------------------
class KillableLoss:
    """Cross-entropy that raises at the first batch of epoch ``kill_at`` (a simulated crash)."""

    def __init__(self, kill_at=None):
        self.kill_at, self.epochs_seen = kill_at, []

    def __call__(self, model, x, y, epoch):
        if epoch == self.kill_at:
            raise KeyboardInterrupt("simulated kill")
        if not self.epochs_seen or self.epochs_seen[-1] != epoch:
            self.epochs_seen.append(epoch)
        logits = model(x)
        return F.cross_entropy(logits, y), logits


@pytest.mark.parametrize("sampler", [None, "balanced"])
def test_resume_after_a_kill_equals_an_uninterrupted_run(tmp_path, sampler):
    tr, va, te = stripes(48, 0), stripes(30, 1), stripes(30, 2)
    kw = dict(test_set=te, epochs=4, batch_size=16, lr=1e-2, device="cpu", seed=3, progress=False,
              sampler=sampler, scheduler=lambda opt: torch.optim.lr_scheduler.ExponentialLR(opt, 0.9))
    full = fit(model(), tr, va, loss_fn=KillableLoss(), **kw)

    ckdir = tmp_path / "ck"
    with pytest.raises(KeyboardInterrupt):
        fit(model(), tr, va, loss_fn=KillableLoss(kill_at=3), checkpoint_dir=ckdir, **kw)
    assert (ckdir / CHECKPOINT_NAME).exists()
    second = KillableLoss()
    resumed = fit(model(seed=99), tr, va, loss_fn=second, checkpoint_dir=ckdir, **kw)
    assert second.epochs_seen == [3, 4]  # epochs 1-2 came from the checkpoint
    cols = metric_cols(full.history)
    assert full.history[cols].equals(resumed.history[cols])
    assert resumed.best_epoch == full.best_epoch
    assert resumed.test_metrics == full.test_metrics and resumed.test_last5 == full.test_last5
    for (k, a), b in zip(full.model.state_dict().items(), resumed.model.state_dict().values()):
        assert torch.equal(a, b), k
    # a finished run called again returns its result without training
    third = KillableLoss()
    done = fit(model(seed=5), tr, va, loss_fn=third, checkpoint_dir=ckdir, **kw)
    assert third.epochs_seen == [] and done.history[cols].equals(full.history[cols])


def test_checkpoint_from_a_different_run_is_a_clear_error(tmp_path):
    tr, va = stripes(40, 0), stripes(20, 1)
    kw = dict(batch_size=20, device="cpu", progress=False, checkpoint_dir=tmp_path)
    fit(model(), tr, va, epochs=1, **kw)
    with pytest.raises(ValueError, match="epochs: checkpoint has 1, this run has 3"):
        fit(model(), tr, va, epochs=3, **kw)
    with pytest.raises(ValueError, match="model weights differ.*'conv.weight'"):
        fit(model(width=6), tr, va, epochs=1, **kw)


def test_bad_arguments_are_named():
    tr, va = stripes(20, 0), stripes(10, 1)
    with pytest.raises(ValueError, match="select_metric 'loss'"):
        fit(model(), tr, va, epochs=1, batch_size=10, select_metric="loss", device="cpu")
    with pytest.raises(ValueError, match="sampler 'weighted'"):
        fit(model(), tr, va, epochs=1, batch_size=10, sampler="weighted", device="cpu")
    with pytest.raises(TypeError, match=r"loss_fn must return \(loss, logits\)"):
        fit(model(), tr, va, epochs=1, batch_size=10, device="cpu", progress=False,
            loss_fn=lambda m, x, y, e: F.cross_entropy(m(x), y))


# --------------------------------------------------------------------------------------------
def test_class_balanced_sampler_draws_classes_equally_and_shards_one_global_draw():
    labels = np.array([0] * 90 + [1] * 9 + [2] * 1)  # 90 : 9 : 1
    s = DistributedClassBalancedSampler(labels, num_samples=6000, seed=1)
    s.set_epoch(2)
    share = np.bincount(labels[list(s)], minlength=3) / 6000
    assert np.allclose(share, 1 / 3, atol=0.03)  # each class 1/3 (sd ~0.006)
    # two ranks deal out the same global draw round-robin (padded to an even length)
    shards = [DistributedClassBalancedSampler(labels, num_samples=7, seed=1, num_replicas=2, rank=r)
              for r in (0, 1)]
    for sh in shards:
        sh.set_epoch(2)
    order = shards[0].global_order().tolist()  # 7 draws + 1 repeat of the first
    assert len(order) == 8 and order[7] == order[0]
    assert list(shards[0]) == order[0::2] and list(shards[1]) == order[1::2]
    # another epoch, another draw; the same epoch, the same draw
    s.set_epoch(3)
    again = DistributedClassBalancedSampler(labels, num_samples=6000, seed=1)
    again.set_epoch(3)
    assert list(s) == list(again)


def test_fit_with_balanced_sampler_feeds_balanced_batches():
    tr, va = stripes(None, 0, counts=[80, 16, 4]), stripes(30, 1)
    seen = []

    def loss(m, x, y, epoch):
        seen.append(y.clone())
        logits = m(x)
        return F.cross_entropy(logits, y), logits

    fit(model(), tr, va, epochs=3, batch_size=25, sampler="balanced", loss_fn=loss,
        device="cpu", progress=False)
    share = np.bincount(torch.cat(seen).numpy(), minlength=3) / 300  # 3 epochs x 100 draws
    assert np.allclose(share, 1 / 3, atol=0.09)  # vs 0.8 / 0.16 / 0.04 when shuffling


def test_indexed_dataset_passes_row_numbers_and_batch_reader_matches_collate():
    tr, va = stripes(24, 0), stripes(12, 1)
    checked = []

    def loss(m, x, y, epoch, idx):
        assert torch.equal(x, tr.tensors()[0][idx]) and torch.equal(y, torch.as_tensor(tr.labels[idx]))
        checked.append(len(idx))
        logits = m(x)
        return F.cross_entropy(logits, y), logits

    fit(model(), IndexedDataset(tr), va, epochs=1, batch_size=8, loss_fn=loss, device="cpu",
        progress=False)
    assert sum(checked) == 24
    rows = [5, 0, 17]
    x, y = _BatchReader(tr, False)[rows]
    assert torch.equal(x, torch.stack([tr[i][0] for i in rows]))
    assert torch.equal(y, torch.tensor([tr[i][1] for i in rows]))


# --------------------------------------------------------------------------------------------
class LabelReader(nn.Module):
    """Predicts the class written into pixel (0, 0) of the image."""

    def __init__(self):
        super().__init__()
        self.w = nn.Parameter(torch.zeros(1))

    def forward(self, x):
        return F.one_hot((x[:, 0, 0, 0] * 255).round().long(), 3).float() + 0 * self.w


def test_evaluate_scores_flipped_training_labels_against_clean_labels():
    clean = np.array([0, 1, 2, 0, 1, 2])
    noisy = np.array([0, 2, 2, 1, 1, 2])  # rows 1 and 3 flipped
    img = np.zeros((6, 3, 3), np.uint8)
    img[:, 0, 0] = clean
    flipped = FaceDataset(img, noisy, CLASSES, "toy", "train", clean_labels=clean)
    out = evaluate(LabelReader(), flipped, device="cpu")
    assert out["accuracy"] == 1.0 and list(out["y_true"]) == list(clean)
    plain = FaceDataset(img, noisy, CLASSES, "toy", "train")  # no clean labels: scored on labels
    assert evaluate(LabelReader(), plain, device="cpu")["accuracy"] == pytest.approx(4 / 6)


# --------------------------------------------------------------------------------------------
def test_extract_features_caches_by_weights_and_data(tmp_path):
    ds = stripes(20, 0)
    m = model()
    calls = []
    m.register_forward_hook(lambda *a: calls.append(1))  # counts forward(): not used here
    orig = m.forward_features
    m.forward_features = lambda x: (calls.append(1), orig(x))[1]

    f1, y1 = extract_features(m, ds, device="cpu", batch_size=8, cache_dir=tmp_path)
    assert f1.shape == (20, 12) and f1.dtype == np.float32 and (y1 == ds.labels).all()
    assert len(calls) == 3  # 20 rows in batches of 8
    path = feature_cache_path(m, ds, tmp_path)
    assert path.exists()
    f2, y2 = extract_features(m, ds, device="cpu", batch_size=8, cache_dir=tmp_path)
    assert len(calls) == 3 and np.array_equal(f1, f2) and np.array_equal(y1, y2)  # from cache
    with torch.no_grad():
        m.conv.bias[0] += 1.0  # new weights -> new key -> recomputed
    assert feature_cache_path(m, ds, tmp_path) != path
    f3, _ = extract_features(m, ds, device="cpu", batch_size=8, cache_dir=tmp_path)
    assert len(calls) == 6 and not np.array_equal(f1, f3)
    # eval mode: the features equal a plain eval forward
    m.eval()
    with torch.no_grad():
        assert np.allclose(f3, orig(ds.tensors()[0]).numpy(), atol=1e-6)


def test_set_seed_repeats_torch_numpy_python():
    import random
    set_seed(7)
    a = (random.random(), np.random.rand(), torch.rand(1).item())
    set_seed(7)
    assert a == (random.random(), np.random.rand(), torch.rand(1).item())
    with pytest.raises(TypeError, match="seed must be an int"):
        set_seed(1.5)


def test_a_checkpoint_written_before_the_methods_moved_still_resumes(tmp_path):
    """The fingerprint names a loss by its module (describe_callable): a checkpoint of a run
    started before the methods moved to ferlib.methods names the old module, and is the same
    run; a different loss is still refused."""
    from ferlib.train.engine import _compare_fingerprints, renamed_modules

    old = {"loss": "ferlib.models.dan.DANLoss: DANLoss(affinity_weight=1.0)",
           "predict": "ferlib.models.ean.ean_predict_batch",
           "scheduler_settings": {"lr_lambdas": ["ferlib.models.cucn_experiment.<lambda>"]},
           "train_size": 10}
    new = {"loss": "ferlib.methods.dan.model.DANLoss: DANLoss(affinity_weight=1.0)",
           "predict": "ferlib.methods.ean.model.ean_predict_batch",
           "scheduler_settings": {"lr_lambdas": ["ferlib.methods.cucn.experiment.<lambda>"]},
           "train_size": 10}
    _compare_fingerprints(old, new, tmp_path / "last.pt")
    assert renamed_modules(new) == new    # the new names are left as they are
    assert renamed_modules("ferlib.sae.SemanticClassifier ferlib.ahm.experiment.f") == \
        "ferlib.methods.ahm.sae.SemanticClassifier ferlib.methods.ahm.experiment.f"
    with pytest.raises(ValueError, match="written by a different run"):
        _compare_fingerprints(old, {**new, "loss": "ferlib.methods.ean.model.EANLoss: EANLoss()"},
                              tmp_path / "last.pt")
