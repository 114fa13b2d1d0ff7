"""Tests of the cpu recipe (chapter 02_baseline, "The cpu recipe"): per-image crop/flip
augmentation, precision choice, one-cycle schedule, label smoothing, test-time flip averaging,
dropout and the profile's fit options. Tiny data and models on the CPU."""
from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F
from torchvision.transforms.v2 import functional as TF

from ferlib.config import PROFILES, get_profile
from ferlib.data.dataset import FaceDataset
from ferlib.models import build_backbone
from ferlib.train import CHECKPOINT_NAME, evaluate, fit
from ferlib.train import precision as P
from ferlib.train.augment import BatchAugment, make_augment

from test_train_engine import KillableLoss, metric_cols, model, stripes


# ---------------------------------------------------------------------------- augmentation
def test_crop_of_a_3x3_image_by_hand():
    # padding 1, reflect: row [1 2 3] pads to [2 1 2 3 2]; offsets (0, 0) take the top-left 3x3
    x = torch.arange(1.0, 10.0).view(1, 1, 3, 3)
    aug = BatchAugment("crop_flip", padding=1)
    seen = set()
    for seed in range(40):
        torch.manual_seed(seed)
        out = aug(x)[0, 0]
        seen.add(tuple(out.flatten().tolist()))
    top_left = (5.0, 4.0, 5.0, 2.0, 1.0, 2.0, 5.0, 4.0, 5.0)
    centre = tuple(range(1, 10))
    mirrored = (3.0, 2.0, 1.0, 6.0, 5.0, 4.0, 9.0, 8.0, 7.0)
    assert {top_left, centre, mirrored} <= {tuple(float(v) for v in s) for s in seen}
    assert len(seen) <= 18  # 9 offsets x 2 flips


def test_batch_augment_equals_torchvision_image_by_image():
    x = torch.rand(6, 1, 10, 12)
    aug = BatchAugment("crop_flip", padding=3)
    torch.manual_seed(7)
    out = aug(x)
    torch.manual_seed(7)  # the same draws, in the order BatchAugment makes them
    oy, ox, flip = torch.randint(0, 7, (6,)), torch.randint(0, 7, (6,)), torch.rand(6) < 0.5
    for i in range(6):
        ref = TF.pad(x[i], [3, 3, 3, 3], padding_mode="reflect")
        ref = TF.crop(ref, int(oy[i]), int(ox[i]), 10, 12)
        if flip[i]:
            ref = TF.horizontal_flip(ref)
        assert torch.equal(out[i], ref), i


def test_flip_only_and_bad_augment_arguments():
    x = torch.arange(4.0).view(1, 1, 1, 4)
    outs = {tuple(BatchAugment("flip")(x).flatten().tolist()) for _ in range(30)}
    assert outs == {(0.0, 1.0, 2.0, 3.0), (3.0, 2.0, 1.0, 0.0)}
    assert make_augment("none") is None and make_augment(None) is None
    with pytest.raises(ValueError, match="augment 'rotate'"):
        make_augment("rotate")
    with pytest.raises(ValueError, match="padding must be an int"):
        BatchAugment("crop_flip", padding=-1)
    with pytest.raises(ValueError, match="padding 4 must be smaller than the image"):
        BatchAugment("crop_flip", padding=4)(torch.rand(1, 1, 3, 3))
    with pytest.raises(ValueError, match="float batch"):
        BatchAugment()(torch.zeros(2, 1, 8, 8, dtype=torch.uint8))


# ---------------------------------------------------------------------------- precision
def test_precision_auto_follows_the_hardware(monkeypatch):
    cpu, cuda = torch.device("cpu"), torch.device("cuda")
    monkeypatch.setattr(P, "cpu_has_bf16_units", lambda: False)
    assert P.resolve_precision("auto", cpu) == "fp32"
    monkeypatch.setattr(P, "cpu_has_bf16_units", lambda: True)
    assert P.resolve_precision("auto", cpu) == "bf16"
    assert P.resolve_precision("auto", cuda) == "fp16"
    assert P.resolve_precision("fp32", cuda) == "fp32"
    assert P.autocast_dtype("bf16") is torch.bfloat16 and P.autocast_dtype("fp32") is None
    with pytest.raises(ValueError, match="precision 'fp16' is for CUDA"):
        P.resolve_precision("fp16", cpu)
    with pytest.raises(ValueError, match="precision 'half'"):
        P.resolve_precision("half", cpu)
    assert isinstance(P.cpu_model(), str) and P.cpu_model()


def test_bf16_training_on_the_cpu_runs_and_is_recorded():
    tr, va = stripes(32, 0), stripes(16, 1)
    res = fit(model(), tr, va, epochs=1, batch_size=16, device="cpu", progress=False,
              precision="bf16", channels_last=True)
    assert res.params["precision"] == "bf16" and res.params["amp"] is True
    assert res.params["channels_last"] is True
    off = fit(model(), tr, va, epochs=1, batch_size=16, device="cpu", progress=False,
              precision="bf16", amp=False)
    assert off.params["precision"] == "fp32"


# ---------------------------------------------------------------------------- schedule, loss
def test_one_cycle_starts_at_a_25th_of_the_peak_and_sgd_is_nesterov():
    tr, va = stripes(64, 0), stripes(16, 1)
    res = fit(model(), tr, va, epochs=3, batch_size=16, lr=0.1, optimizer="sgd",
              schedule="onecycle", weight_decay=5e-4, device="cpu", progress=False)
    assert res.history["lr"].iloc[0] == pytest.approx(0.1 / 25)   # OneCycleLR div_factor
    assert res.history["lr"].max() <= 0.1 + 1e-12
    assert res.params["optimizer"] == "SGD" and res.params["scheduler"] == "OneCycleLR"
    assert res.params["weight_decay"] == 5e-4
    cos = fit(model(), tr, va, epochs=2, batch_size=16, lr=0.1, schedule="cosine", device="cpu",
              progress=False)
    # 4 steps an epoch over 8: after epoch 1 the cosine is at its middle, lr/2
    assert cos.history["lr"].tolist() == pytest.approx([0.1, 0.05])


def test_schedule_arguments_are_checked():
    tr, va = stripes(20, 0), stripes(10, 1)
    kw = dict(epochs=1, batch_size=10, device="cpu", progress=False)
    with pytest.raises(ValueError, match="schedule 'step'"):
        fit(model(), tr, va, schedule="step", **kw)
    with pytest.raises(ValueError, match="not both"):
        fit(model(), tr, va, schedule="onecycle",
            scheduler=lambda o: torch.optim.lr_scheduler.ExponentialLR(o, 0.9), **kw)
    with pytest.raises(ValueError, match=r"label_smoothing must be in \[0, 1\)"):
        fit(model(), tr, va, label_smoothing=1.0, **kw)


def test_label_smoothing_raises_the_first_loss_of_a_confident_model():
    # a model that outputs logits (10, 0, 0) for every image of class 0: plain CE = log(1 + 2e-10)
    # ~ 9.1e-5; smoothed (0.3) CE adds 0.3 * (2/3) * 10 = 2.0 for the two wrong classes
    class Confident(nn.Module):
        def __init__(self):
            super().__init__()
            self.w = nn.Parameter(torch.zeros(()))

        def forward(self, x):
            out = torch.zeros(x.shape[0], 3)
            out[:, 0] = 10.0
            return out + 0 * self.w

    y = np.zeros(8, np.int64)
    ds = FaceDataset(np.zeros((8, 4, 4), np.uint8), y, ("a", "b", "c"), "zeros", "train")
    plain = fit(Confident(), ds, ds, epochs=1, batch_size=8, lr=0.0, device="cpu", progress=False)
    smooth = fit(Confident(), ds, ds, epochs=1, batch_size=8, lr=0.0, device="cpu", progress=False,
                 label_smoothing=0.3)
    expected = F.cross_entropy(torch.tensor([[10.0, 0, 0]]), torch.tensor([0]), label_smoothing=0.3)
    assert plain.history["train_loss"].iloc[0] == pytest.approx(np.log1p(2 * np.exp(-10)), abs=1e-6)
    assert smooth.history["train_loss"].iloc[0] == pytest.approx(float(expected), rel=1e-5)
    assert float(expected) == pytest.approx(np.log1p(2 * np.exp(-10)) + 0.3 * 2 / 3 * 10, rel=1e-3)


# ---------------------------------------------------------------------------- evaluation
def test_flip_averaging_of_a_left_right_model_gives_one_half():
    # logits = (left pixel, right pixel); its mirror swaps them, and sigma(a-b) + sigma(b-a) = 1
    class LeftRight(nn.Module):
        def forward(self, x):
            return x.flatten(1)  # (B, 2)

    imgs = np.array([[[200, 10]], [[0, 90]], [[50, 50]]], np.uint8)
    ds = FaceDataset(imgs, np.array([0, 1, 0]), ("l", "r"), "lr", "test")
    plain = evaluate(LeftRight(), ds, device="cpu")
    tta = evaluate(LeftRight(), ds, device="cpu", tta_flip=True)
    assert plain["scores"][0, 0] == pytest.approx(1 / (1 + np.exp(-190 / 255)), rel=1e-5)
    np.testing.assert_allclose(tta["scores"], 0.5, atol=1e-6)


# ---------------------------------------------------------------------------- resume, profile
def test_resume_with_the_whole_recipe_equals_an_uninterrupted_run(tmp_path):
    tr, va, te = stripes(48, 0), stripes(30, 1), stripes(30, 2)
    kw = dict(test_set=te, epochs=4, batch_size=16, lr=0.05, device="cpu", seed=3, progress=False,
              optimizer="sgd", schedule="onecycle", augment="crop_flip", tta_flip=True)
    full = fit(model(), tr, va, loss_fn=KillableLoss(), **kw)
    ckdir = tmp_path / "ck"
    with pytest.raises(KeyboardInterrupt):
        fit(model(), tr, va, loss_fn=KillableLoss(kill_at=3), checkpoint_dir=ckdir, **kw)
    assert (ckdir / CHECKPOINT_NAME).exists()
    resumed = fit(model(seed=99), tr, va, loss_fn=KillableLoss(), checkpoint_dir=ckdir, **kw)
    cols = metric_cols(full.history)
    assert full.history[cols].equals(resumed.history[cols])
    for (k, a), b in zip(full.model.state_dict().items(), resumed.model.state_dict().values()):
        assert torch.equal(a, b), k


@pytest.mark.parametrize("name", sorted(PROFILES))
def test_every_profile_recipe_is_accepted_by_fit(name):
    prof = get_profile(name)
    opts = {**prof.fit_options(epochs=1), "batch_size": 16, "precision": "fp32", "num_workers": 0}
    res = fit(model(), stripes(32, 0), stripes(16, 1), device="cpu", progress=False, **opts)
    assert len(res.history) == 1
    assert set(prof.recipe()) >= {"optimizer", "schedule", "augment", "dropout", "tta_flip"}


def test_cpu_profile_trains_on_all_real_training_images():
    prof = get_profile("cpu")
    assert prof.real_train_cap is None and prof.augment == "crop_flip" and prof.schedule == "onecycle"


def test_backbone_dropout_acts_in_training_only_and_minixception_shapes():
    torch.manual_seed(0)
    net = build_backbone("smallcnn", 7, width=8, dropout=0.5)
    x = torch.rand(4, 1, 48, 48)
    net.eval()
    assert torch.allclose(net(x), net.fc(net.forward_features(x)))
    net.train()
    torch.manual_seed(1)
    a = net(x)
    torch.manual_seed(2)
    assert not torch.allclose(a, net(x))
    with pytest.raises(ValueError, match="dropout must be a number in"):
        build_backbone("smallcnn", 7, dropout=1.0)
    mx = build_backbone("minixception", 7, width=8).eval()
    assert mx.forward_map(x).shape == (4, 128, 3, 3) and mx(x).shape == (4, 7)
    with pytest.raises(ValueError, match="cbam=True is not available for minixception"):
        build_backbone("minixception", 7, cbam=True)


def test_records_name_the_processor_and_its_bf16_units():
    from ferlib.records import provenance

    prov = provenance("test")
    assert prov["cpu_model"] == P.cpu_model()
    assert prov["cpu_bf16_units"] is P.cpu_has_bf16_units()
