"""Tests for ferlib.methods.cucn.model (class weights, RUL mixing, CUCN loss) and the CBAM option of
the backbones. Hand-checkable numbers; tiny tensors (whole file runs in a few seconds)."""
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from ferlib.methods.cucn.model import (CUCN, CUCNLoss, build_cucn, class_weights, cucn_loss_fn,
                                mix_features, mixing_loss, mixing_weights, predict_fn,
                                relative_uncertainty, resolve_class_weights,
                                weighted_cross_entropy)

LN2, LN3 = math.log(2.0), math.log(3.0)


# ---------------------------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------------------------
class TinyMapBackbone(nn.Module):
    """Smallest module with the feature-map interface CUCN needs (``forward_map``; unlike
    conftest.TinyBackbone, which gives pooled features)."""

    def __init__(self, in_channels=1, channels=4):
        super().__init__()
        self.conv = nn.Conv2d(in_channels, channels, 3, stride=4, padding=1)
        self.map_channels = channels

    def forward_map(self, x):
        return torch.relu(self.conv(x))  # (B, 4, 4, 4) for 16x16 input


class Lambda(nn.Module):
    def __init__(self, fn):
        super().__init__()
        self.fn = fn

    def forward(self, x):
        return self.fn(x)


class PassThrough(nn.Module):
    """forward_map returns the input itself, so a test sets mu and logvar directly."""

    def forward_map(self, x):
        return x


def hand_model():
    """CUCN whose input (B, 4, 1, 1) holds mu = x[:, :2] and logvar = x[:, 2:]; fc = identity."""
    model = CUCN(PassThrough(), num_classes=2, embed_dim=2, in_channels=4, image_size=1)
    model.mu_head = Lambda(lambda m: m.flatten(1)[:, :2])
    model.logvar_head = Lambda(lambda m: m.flatten(1)[:, 2:])
    with torch.no_grad():
        model.fc.weight.copy_(torch.eye(2))
        model.fc.bias.zero_()
    return model


# ---------------------------------------------------------------------------------------------
# class weights
# ---------------------------------------------------------------------------------------------
def test_inverse_weights_hand_case_mean_one():
    # 1/n = (0.1, 1/30, 1/60), sum 0.15 -> times 3 / 0.15 = 20
    w = class_weights([10, 30, 60], method="inverse")
    assert torch.allclose(w, torch.tensor([2.0, 2 / 3, 1 / 3]))
    assert w.mean().item() == pytest.approx(1.0)


def test_effective_weights_hand_case_and_limits():
    # beta 0.5, n = (1, 2): effective numbers (1, 1.5) -> 1/E = (1, 2/3) -> mean 1: (1.2, 0.8)
    w = class_weights([1, 2], method="effective", beta=0.5)
    assert torch.allclose(w, torch.tensor([1.2, 0.8]))
    # beta = 0 gives equal weights; beta -> 1 approaches inverse frequency
    assert torch.allclose(class_weights([5, 50, 500], beta=0.0), torch.ones(3))
    near = class_weights([5, 50, 500], beta=1 - 1e-9)
    assert torch.allclose(near, class_weights([5, 50, 500], method="inverse"), rtol=1e-4)


def test_minority_class_gets_the_largest_weight():
    counts = [4772, 281, 717, 1290]
    for method in ("inverse", "effective"):
        w = class_weights(counts, method=method)
        assert int(torch.argmax(w)) == 1 and int(torch.argmin(w)) == 0


def test_given_weights_are_normalised_the_same_way():
    w = class_weights([10, 10], method="given", given=[1.0, 3.0])
    assert torch.allclose(w, torch.tensor([0.5, 1.5]))
    assert resolve_class_weights([1.0, 3.0], [10, 10]).tolist() == w.tolist()
    assert resolve_class_weights(None, [10, 10]) is None
    assert resolve_class_weights("none", [10, 10]) is None


@pytest.mark.parametrize("kwargs, message", [
    (dict(counts=[10, 20, 30], given=[1.0, 2.0]), "given has 2 weights but counts has 3"),
    (dict(given=[1.0, 0.0, 2.0]), r"given\[1\] = 0.0.*positive"),
    (dict(given=[1.0, -2.0]), r"given\[1\].*positive"),
    (dict(given=[1.0, float("nan")]), r"given\[1\].*not finite"),
    (dict(given=[float("inf"), 1.0]), r"given\[0\].*not finite"),
    (dict(given=[[1.0, 2.0]]), "given must be a non-empty 1-D vector"),
    (dict(given=[]), "given must be a non-empty 1-D vector"),
    (dict(), "method='given' needs the weight vector"),
])
def test_given_vector_validation(kwargs, message):
    with pytest.raises(ValueError, match=message):
        class_weights(method="given", **kwargs)


def test_given_vector_type_errors():
    with pytest.raises(TypeError, match="given must be a sequence of numbers"):
        class_weights(method="given", given="1,2,3")
    with pytest.raises(TypeError, match="given must be a sequence of numbers"):
        class_weights(method="given", given=["a", "b"])


def test_count_and_option_validation():
    with pytest.raises(ValueError, match=r"counts\[1\] = 0.*no training samples"):
        class_weights([5, 0, 3], method="inverse")
    with pytest.raises(ValueError, match=r"counts\[0\].*negative"):
        class_weights([-1, 3])
    with pytest.raises(ValueError, match="beta must be in"):
        class_weights([1, 2], beta=1.0)
    with pytest.raises(ValueError, match="unknown class-weight method 'focal'"):
        class_weights([1, 2], method="focal")
    with pytest.raises(ValueError, match="needs counts"):
        class_weights(method="inverse")
    with pytest.raises(ValueError, match="class_weights='balanced'"):
        resolve_class_weights("balanced", [1, 2])


# ---------------------------------------------------------------------------------------------
# relative uncertainty and mixing weights
# ---------------------------------------------------------------------------------------------
def test_uncertainty_is_mean_of_exp_logvar():
    logvar = torch.tensor([[0.0, LN3], [LN2, LN2]])
    assert torch.allclose(relative_uncertainty(logvar), torch.tensor([2.0, 2.0]))


def test_mixing_weights_hand_case():
    # u = (1, 3, 6); perm (1, 2, 0): w_i = u_i / (u_i + u_perm[i]) = (1/4, 3/9, 6/7)
    logvar = torch.log(torch.tensor([[1.0, 1.0], [3.0, 3.0], [6.0, 6.0]]))
    perm = torch.tensor([1, 2, 0])
    w = mixing_weights(logvar, perm)
    assert torch.allclose(w, torch.tensor([1 / 4, 1 / 3, 6 / 7]))
    # the opposite convention gives u_j / (u_i + u_j) = 1 - w
    assert torch.allclose(mixing_weights(logvar, perm, weighting="certain"), 1 - w)
    # huge log-variances do not overflow to NaN (exp(1000) = inf)
    big = torch.tensor([[1000.0], [1000.0 + LN3]])
    w_big = mixing_weights(big, torch.tensor([1, 0]))  # float32 ulp at 1000 is 6e-5
    assert torch.allclose(w_big, torch.tensor([0.25, 0.75]), atol=1e-4)


def test_mix_features_pairs_each_sample_with_its_partner():
    mu = torch.tensor([[1.0, 0.0], [0.0, 1.0], [2.0, 2.0]])
    logvar = torch.log(torch.tensor([[1.0, 1.0], [3.0, 3.0], [6.0, 6.0]]))
    mixed, w = mix_features(mu, logvar, torch.tensor([1, 2, 0]))
    expected = torch.tensor([[1 / 4, 3 / 4],                 # 1/4 mu0 + 3/4 mu1
                             [2 * 2 / 3, 1 / 3 + 2 * 2 / 3],  # 1/3 mu1 + 2/3 mu2
                             [2 * 6 / 7 + 1 / 7, 2 * 6 / 7]])  # 6/7 mu2 + 1/7 mu0
    assert torch.allclose(mixed, expected)
    # identity permutation: each sample mixed with itself is unchanged
    same, w_same = mix_features(mu, logvar, torch.arange(3))
    assert torch.allclose(same, mu) and torch.allclose(w_same, torch.full((3,), 0.5))
    with pytest.raises(ValueError, match="perm must be a permutation"):
        mix_features(mu, logvar, torch.tensor([0, 0, 1]))


# ---------------------------------------------------------------------------------------------
# losses
# ---------------------------------------------------------------------------------------------
def test_weighted_cross_entropy_normalisers():
    logits = torch.tensor([[0.0, 0.0], [LN3, 0.0]])  # p = (1/2, 1/2), (3/4, 1/4)
    y = torch.tensor([0, 1])                           # CE = (ln 2, ln 4)
    cw = torch.tensor([1.0, 3.0])
    by_weights = weighted_cross_entropy(logits, y, cw)            # (ln2 + 3 ln4) / 4
    by_batch = weighted_cross_entropy(logits, y, cw, "batch")     # (ln2 + 3 ln4) / 2
    assert by_weights.item() == pytest.approx(7 * LN2 / 4)
    assert by_batch.item() == pytest.approx(7 * LN2 / 2)
    assert by_weights.item() == pytest.approx(F.cross_entropy(logits, y, weight=cw).item())
    assert weighted_cross_entropy(logits, y).item() == pytest.approx(3 * LN2 / 2)
    with pytest.raises(ValueError, match="class_weight has shape"):
        weighted_cross_entropy(logits, y, torch.ones(3))


def test_mixing_loss_two_samples_by_hand():
    logits = torch.tensor([[0.0, 0.0], [LN3, 0.0]])
    y, perm = torch.tensor([0, 1]), torch.tensor([1, 0])   # partner labels (1, 0)
    cw = torch.tensor([1.0, 3.0])
    # half A, labels (0, 1): (1 ln2 + 3 ln4) / 4;  half B, labels (1, 0): (3 ln2 + 1 ln(4/3)) / 4
    # average: (12 ln2 - ln3) / 8
    assert mixing_loss(logits, y, perm, cw).item() == pytest.approx((12 * LN2 - LN3) / 8)
    # dividing by N = 2 instead of the weight sum 4 doubles it
    assert mixing_loss(logits, y, perm, cw, "batch").item() == pytest.approx((12 * LN2 - LN3) / 4)
    # unweighted: average of both labels' plain CE = (ln2 + ln4 + ln2 + ln(4/3)) / 4
    assert mixing_loss(logits, y, perm).item() == pytest.approx((6 * LN2 - LN3) / 4)


def test_cucn_loss_end_to_end_two_samples_by_hand():
    # sample 0: mu (0, 0), u = 1; sample 1: mu (a, 0), u = 3; swapped (perm = (1, 0)).
    # RUL weights: w0 = 1/4, w1 = 3/4 -> both mixed features = 3/4 mu1 = (ln 3, 0) for a = 4/3 ln 3
    # -> p = (3/4, 1/4) for both; labels (0, 1), class weights (1, 3):
    # each half = (1 ln(4/3) + 3 ln 4) / 4 -> loss = 2 ln 2 - ln 3 / 4
    a = 4 * LN3 / 3
    x = torch.tensor([[0.0, 0.0, 0.0, 0.0], [a, 0.0, LN3, LN3]]).view(2, 4, 1, 1)
    y = torch.tensor([0, 1])
    model = hand_model()
    loss, logits = cucn_loss_fn(model, x, y, 0, class_weight=[1.0, 3.0], perm=torch.tensor([1, 0]))
    assert loss.item() == pytest.approx(2 * LN2 - LN3 / 4)
    assert torch.allclose(logits, torch.tensor([[0.0, 0.0], [a, 0.0]]))  # unmixed mu
    # the opposite convention gives 1/4 mu1 = (ln3 / 3, 0): a different, hand-checkable loss
    loss_c, _ = cucn_loss_fn(model, x, y, 0, class_weight=[1.0, 3.0], perm=torch.tensor([1, 0]),
                             weighting="certain")
    p0 = 1 / (1 + math.exp(-LN3 / 3))
    assert loss_c.item() == pytest.approx((-math.log(p0) - 3 * math.log(1 - p0)) / 4)
    # without mixing: weighted CE of the unmixed logits
    loss_nomix, _ = cucn_loss_fn(model, x, y, 0, class_weight=[1.0, 3.0], mix=False)
    assert loss_nomix.item() == pytest.approx(
        F.cross_entropy(logits, y, weight=torch.tensor([1.0, 3.0])).item())


def test_mixing_warmup_trains_on_the_unmixed_feature_first():
    from ferlib.methods.cucn.experiment import mix_warmup
    from ferlib.methods.cucn.model import mixing_active

    assert [mixing_active(e, 4) for e in (1, 4, 5, 8)] == [False, False, True, True]
    assert mixing_active(1, 0) and mixing_active(None, 4)
    with pytest.raises(ValueError, match="warmup_epochs"):
        mixing_active(1, -1)
    with pytest.raises(ValueError, match="warmup_epochs"):
        CUCNLoss(warmup_epochs=1.5)
    # the hand case above: in a warm-up epoch the loss is the weighted CE of the unmixed
    # logits (the mix=False value); from the next epoch on it is the mixing loss 2 ln 2 - ln 3 / 4
    a = 4 * LN3 / 3
    x = torch.tensor([[0.0, 0.0, 0.0, 0.0], [a, 0.0, LN3, LN3]]).view(2, 4, 1, 1)
    y = torch.tensor([0, 1])
    model, perm = hand_model(), torch.tensor([1, 0])
    logits = torch.tensor([[0.0, 0.0], [a, 0.0]])
    plain = F.cross_entropy(logits, y, weight=torch.tensor([1.0, 3.0])).item()
    for epoch, want in ((2, plain), (3, 2 * LN2 - LN3 / 4)):
        loss, _ = cucn_loss_fn(model, x, y, epoch, class_weight=[1.0, 3.0], perm=perm,
                               warmup_epochs=2)
        assert loss.item() == pytest.approx(want)
    # the profiles: smoke and cpu mix in the second half of the run, full (the paper) from epoch 1
    assert mix_warmup("smoke", 8) == 4 and mix_warmup("smoke", 3) == 2
    assert mix_warmup("cpu", 20) == 10 and mix_warmup("full", 60) == 0


def test_mix_needs_a_cucn_model():
    with pytest.raises(TypeError, match="mix=True needs a CUCN model"):
        cucn_loss_fn(nn.Linear(3, 2), torch.zeros(2, 3), torch.tensor([0, 1]))
    linear = nn.Linear(3, 2)
    nn.init.zeros_(linear.bias)
    loss, _ = cucn_loss_fn(linear, torch.zeros(2, 3), torch.tensor([0, 1]), mix=False)
    assert loss.item() == pytest.approx(LN2)  # zero logits: CE = ln 2 for any weights


# ---------------------------------------------------------------------------------------------
# the model
# ---------------------------------------------------------------------------------------------
def tiny_cucn(seed=0):
    torch.manual_seed(seed)
    return CUCN(TinyMapBackbone(), num_classes=3, embed_dim=8, image_size=16)


def test_heads_sized_from_the_map_and_shapes():
    model = tiny_cucn()
    assert model.map_size == (4, 4) and model.map_channels == 4
    assert model.mu_head[3].in_features == 4 * 4 * 4 and model.feature_dim == 8
    x, y = torch.rand(5, 1, 16, 16), torch.tensor([0, 1, 2, 0, 1])
    out = model.mixed_forward(x, generator=torch.Generator().manual_seed(0))
    assert out.logits_mixed.shape == (5, 3) and out.mu.shape == (5, 8)
    assert out.uncertainty.shape == (5,) and bool((out.uncertainty > 0).all())
    assert sorted(out.perm.tolist()) == list(range(5))
    loss, logits = CUCNLoss(class_weight=[1.0, 2.0, 3.0], seed=0)(model, x, y, 0, idx=None)
    loss.backward()
    # the uncertainty branch is trained through the mixing weights
    assert model.logvar_head[3].weight.grad.abs().sum() > 0
    assert torch.isfinite(loss)


def test_inference_uses_the_unmixed_feature():
    model = tiny_cucn().eval()
    x = torch.rand(4, 1, 16, 16)
    logits = predict_fn(model, x)
    by_hand = model.fc(model.mu_head(model.backbone.forward_map(x)))
    assert torch.allclose(logits, by_hand)
    # does not depend on the other samples of the batch (no mixing at inference)
    assert torch.allclose(predict_fn(model, x[:1]), logits[:1], atol=1e-6)
    out = model.mixed_forward(x, perm=torch.tensor([3, 2, 1, 0]))
    assert torch.allclose(out.logits, logits)
    assert not torch.allclose(out.logits_mixed, logits)
    same = model.mixed_forward(x, perm=torch.arange(4))
    assert torch.allclose(same.logits_mixed, logits, atol=1e-6)


def test_permutation_is_reproducible_with_a_seed():
    model = tiny_cucn().eval()
    x, y = torch.rand(6, 1, 16, 16), torch.tensor([0, 1, 2, 0, 1, 2])
    l1 = CUCNLoss(seed=3)(model, x, y)[0]
    l2 = CUCNLoss(seed=3)(model, x, y)[0]
    assert l1.item() == l2.item()


def test_single_sample_batch_in_training_mode():
    model = tiny_cucn().train()
    loss, _ = cucn_loss_fn(model, torch.rand(1, 1, 16, 16), torch.tensor([2]))
    assert torch.isfinite(loss)
    assert model.mu_head[4].training  # BatchNorm1d mode restored


def test_bad_backbone_is_a_clear_error():
    with pytest.raises(TypeError, match="has no forward_map"):
        CUCN(nn.Linear(2, 2), num_classes=3)


# ---------------------------------------------------------------------------------------------
# CBAM through the shared backbone option
# ---------------------------------------------------------------------------------------------
def test_cbam_in_every_basic_block_with_maps_in_unit_interval():
    from torchvision.models.resnet import BasicBlock

    from ferlib.models.backbones import build_backbone
    from ferlib.models.cbam import CBAM

    torch.manual_seed(0)
    # 16x16 input keeps the full-resolution stem cheap; layer4 map is 2x2
    net = build_backbone("resnet18", 7, in_channels=1, cbam=True, image_size=16)
    blocks = [m for m in net.modules() if isinstance(m, BasicBlock)]
    assert len(blocks) == 8
    for block in blocks:
        assert sum(isinstance(m, CBAM) for m in block.modules()) == 1
    x = torch.rand(2, 1, 16, 16)
    with torch.no_grad():
        assert net(x).shape == (2, 7)
    cbams = [m for m in net.modules() if isinstance(m, CBAM)]
    channels = [m.last_channel_att.shape[1] for m in cbams]
    assert channels == [64, 64, 128, 128, 256, 256, 512, 512]
    for m in cbams:
        ca, sa = m.last_channel_att, m.last_spatial_att
        assert ca.shape[0] == 2 and ca.shape[2:] == (1, 1)
        assert sa.shape[:2] == (2, 1)
        for att in (ca, sa):
            assert float(att.min()) >= 0.0 and float(att.max()) <= 1.0
    assert cbams[-1].last_spatial_att.shape == (2, 1, 2, 2)
    plain = build_backbone("smallcnn", 7, in_channels=1, width=4, cbam=False, image_size=16)
    assert not any(isinstance(m, CBAM) for m in plain.modules())


def test_cucn_on_a_cbam_backbone():
    from ferlib.models.backbones import build_backbone
    from ferlib.models.cbam import CBAM

    torch.manual_seed(0)
    net = build_backbone("smallcnn", 7, in_channels=1, width=4, cbam=True, image_size=16)
    model = build_cucn(7, backbone=net, image_size=16).eval()
    assert model.map_channels == net.map_channels
    x = torch.rand(3, 1, 16, 16)
    with torch.no_grad():
        assert model(x).shape == (3, 7)
    # the CBAM gates of the backbone ran inside CUCN's forward
    assert all(m.last_spatial_att.shape[0] == 3 for m in model.modules() if isinstance(m, CBAM))


def test_cbam_module_shapes():
    from ferlib.models.cbam import CBAM

    cbam = CBAM(32, reduction=16, kernel_size=7)
    x = torch.rand(3, 32, 6, 5)
    with torch.no_grad():
        y = cbam(x)
    assert y.shape == x.shape
    assert cbam.last_channel_att.shape == (3, 32, 1, 1)
    assert cbam.last_spatial_att.shape == (3, 1, 6, 5)
    for att in (cbam.last_channel_att, cbam.last_spatial_att):
        assert float(att.min()) >= 0.0 and float(att.max()) <= 1.0
    # the output is the input gated by both maps (gates in [0, 1] shrink magnitudes)
    assert float(y.abs().max()) <= float(x.abs().max()) + 1e-6


def test_counts_from_numpy():
    w = class_weights(np.array([100, 10]), method="inverse")
    assert torch.allclose(w, torch.tensor([2 / 11, 20 / 11]))


# ---------------------------------------------------------------------------------------------
# plugging into ferlib.train.fit, and the chapter helpers
# ---------------------------------------------------------------------------------------------
def test_cucn_trains_with_fit(tmp_path):
    from ferlib.data import FaceDataset
    from ferlib.train import IndexedDataset, fit

    rng = np.random.default_rng(0)
    ds = FaceDataset(rng.integers(0, 256, (24, 16, 16), dtype=np.uint8), np.arange(24) % 3,
                     ("a", "b", "c"), name="toy")
    model = tiny_cucn()
    loss = CUCNLoss(class_weight=class_weights(ds.class_counts(), "inverse"), seed=0)
    res = fit(model, IndexedDataset(ds), ds, epochs=1, batch_size=8, loss_fn=loss,
              predict_fn=predict_fn, device="cpu", progress=False, checkpoint_dir=tmp_path)
    assert len(res.history) == 1 and math.isfinite(res.history["train_loss"].iloc[0])
    assert set(loss.state_dict()) == {"generator"}  # checkpointed with the run


def test_table2_ladder_and_method_names():
    from ferlib.methods.cucn.experiment import table2_variants

    # the mixing reading (default): the no-mixing base as an extra row, then mixing in every rung
    full = table2_variants()
    assert [v.method for v in full] == ["cucn:base", "cucn:mix", "cucn:w+mix", "cucn"]
    assert [(v.weighted, v.cbam, v.mix) for v in full] == [
        (False, False, False), (False, False, True), (True, False, True), (True, True, True)]
    assert [v.paper_row for v in full] == ["ResNet18#", "ResNet18#", "ResNet18# + W",
                                           "ResNet18# + W + CBAM"]
    assert [v.reading for v in full] == ["no-mixing", "mixing", "mixing", "mixing"]
    assert [v.method for v in table2_variants(use_cbam=False)] == ["cucn:base", "cucn:mix", "cucn:w+mix"]
    # the other reading: mixing added last
    old = table2_variants(reading="no-mixing")
    assert [v.method for v in old] == ["cucn:base", "cucn:w", "cucn:w+cbam", "cucn"]
    assert [v.method for v in table2_variants(mix=False)] == ["cucn:base", "cucn:w", "cucn:w+cbam"]
    # labels name the backbone that runs
    assert table2_variants(backbone_label="SmallCNN")[-1].label == "SmallCNN + W + CBAM + mixing (CUCN)"
    with pytest.raises(ValueError, match="reading"):
        table2_variants(reading="both")


def test_cbam_sits_after_bn2_and_before_the_residual_add():
    from ferlib.models.backbones import CBAMBasicBlock

    torch.manual_seed(0)
    block = CBAMBasicBlock(4, 4).eval()
    seen = {}
    block.bn2.register_forward_hook(lambda m, i, o: seen.__setitem__("bn2", o))
    block.cbam.register_forward_hook(lambda m, i, o: seen.update(cbam_in=i[0], cbam_out=o))
    x = torch.randn(2, 4, 6, 6)
    out = block(x)
    assert torch.equal(seen["cbam_in"], seen["bn2"])                 # CBAM reads bn2's output
    assert not torch.equal(seen["cbam_out"], seen["cbam_in"])        # and changes it
    torch.testing.assert_close(out, torch.relu(seen["cbam_out"] + x))  # then identity, then ReLU


def test_full_profile_classifier_lr_is_five_times_the_backbone():
    from ferlib.config import PROFILES
    from ferlib.methods.cucn.experiment import HEAD_LR_FACTOR, head_parameters, optimizer_factory

    model = tiny_cucn()
    opt = optimizer_factory(model, 1e-4, HEAD_LR_FACTOR)(model.parameters())
    body, head = opt.param_groups
    assert body["lr"] == pytest.approx(1e-4) and head["lr"] == pytest.approx(5e-4)
    assert {id(p) for p in head["params"]} == {id(p) for p in head_parameters(model)}
    assert len(body["params"]) + len(head["params"]) == len(list(model.parameters()))
    assert {id(p) for p in model.fc.parameters()} <= {id(p) for p in head["params"]}
    # the paper's two learning rates and decay in full only; one lr in smoke and cpu
    assert [n for n, p in PROFILES.items() if p.paper_recipe] == ["full"]


def test_paper_recipe_sets_the_head_lr_and_the_decay(monkeypatch, tmp_path):
    import ferlib.train
    from ferlib.config import get_profile
    from ferlib.methods.cucn import experiment as exp

    seen = {}

    def fake_fit(model, train, val, **kw):  # what run_variant hands the engine, no training
        seen.update(kw)
        raise RuntimeError("stop")

    from ferlib.data import FaceDataset, Splits

    monkeypatch.setattr(ferlib.train, "fit", fake_fit)
    rng = np.random.default_rng(0)
    ds = FaceDataset(rng.integers(0, 256, (12, 16, 16), dtype=np.uint8), np.arange(12) % 3,
                     ("a", "b", "c"), name="toy")
    splits = Splits(ds, ds, ds)
    variant = exp.table2_variants()[0]
    for prof, groups_lr, decay in ((get_profile("smoke"), None, None),
                                   (get_profile("smoke").replace(paper_recipe=True),
                                    [6e-3, 3e-2], 0.9)):   # smoke lr 6e-3, the classifier at 5x
        seen.clear()
        with pytest.raises(RuntimeError, match="stop"):
            exp.run_variant(variant, splits, profile=prof, device="cpu", backbone="smallcnn",
                            results_path=tmp_path, progress=False)
        if groups_lr is None:
            assert seen["optimizer"] == prof.optimizer and seen["scheduler"] is None
        else:
            model = exp.build_variant_model(variant, splits, prof, "smallcnn")
            opt = seen["optimizer"](model.parameters())
            assert [g["lr"] for g in opt.param_groups] == pytest.approx(groups_lr)
            assert seen["scheduler"](opt).gamma == decay


def test_chapter_helpers():
    from ferlib.methods.cucn.experiment import class_gap, extreme_samples, hand_case

    most, least = extreme_samples([0.3, 0.9, 0.1, 0.5], k=2)
    assert most.tolist() == [1, 3] and least.tolist() == [2, 0]
    assert class_gap({"max_class_recall": 0.8, "min_class_recall": 0.35}) == pytest.approx(0.45)
    hc = hand_case()
    assert hc["mixing_loss"] == pytest.approx(hc["mixing_loss_closed_form"])
    assert hc["mix_weights"] == pytest.approx([1 / 4, 1 / 3, 6 / 7])
    assert hc["inverse"][1] == max(hc["inverse"])  # Fear (281) is the minority


def test_committed_table2_reads_the_ladder_records(tmp_path):
    from ferlib.methods.cucn.experiment import committed_table2, load_table2_records
    from ferlib.records import write_record

    def rec(folder, method, acc, **params):
        write_record(folder, method=method, dataset="fer2013", split="PublicTest",
                     metrics={"accuracy": acc, "min_class_recall": 0.1, "max_class_recall": 0.9},
                     seed=0, device="cpu", wall_time=1.0,
                     params={"profile": "cpu", "backbone": "smallcnn", **params})

    rec(tmp_path, "cucn", 0.5)
    rec(tmp_path / "cpu", "cucn:base", 0.4)                       # subfolders are read
    rec(tmp_path, "cucn:w", 0.45)                                 # the no-mixing reading's rung
    rec(tmp_path / "cells", "cucn", 0.2, noise_rate=0.2)          # a noise cell is not Table II
    rec(tmp_path, "baseline", 0.3)                                # not a rung
    tables = committed_table2(load_table2_records(tmp_path))
    t = tables[("fer2013", "cpu")]
    assert list(t["method"]) == ["cucn:base", "cucn:w", "cucn"]   # ladder order
    assert list(t["ours_accuracy"]) == [40.0, 45.0, 50.0]
    assert t["setup"].iloc[0] == "SmallCNN (no mixing)" and t["paper_accuracy"].iloc[2] == 63.77
    assert list(t["reading"]) == ["no-mixing", "no-mixing", "mixing"]
    assert list(t["paper_row"]) == ["ResNet18#", "ResNet18# + W", "ResNet18# + W + CBAM"]


def test_mixing_state_on_two_faces():
    from ferlib.data.dataset import FaceDataset
    from ferlib.methods.cucn.model import relative_uncertainty
    from ferlib.methods.cucn.experiment import mixing_state

    rng = np.random.default_rng(0)
    ds = FaceDataset(rng.integers(0, 255, (6, 16, 16), dtype=np.uint8), np.array([0, 1, 2, 0, 1, 2]),
                     ("a", "b", "c"), name="toy")
    model = tiny_cucn()
    st = mixing_state(model, ds, 1, 2)
    mu, logvar = model.eval().embed(torch.stack([ds[1][0], ds[2][0]]))
    u = relative_uncertainty(logvar)
    u = u.detach()
    assert st["u_i"] == pytest.approx(float(u[0])) and st["w"] == pytest.approx(float(u[0] / u.sum()))
    mixed = st["w"] * mu[0] + (1 - st["w"]) * mu[1]
    p = torch.softmax(model.fc(mixed), 0).detach().numpy()
    np.testing.assert_allclose(st["p_mix"], p, rtol=1e-5)
    assert st["ce_y_i"] == pytest.approx(-math.log(p[1]), rel=1e-5) and (st["y_i"], st["y_j"]) == (1, 2)
    with pytest.raises(ValueError, match="face j=9"):
        mixing_state(model, ds, 0, 9)
