"""Tests of ferlib.methods.dan.model: shapes, the affinity and partition losses, the loss_fn."""
import math

import pytest
import torch
import torch.nn as nn

from ferlib.methods.dan.model import (DAN, AffinityLoss, ChannelAttention, DANConfig,
                                      SpatialAttention, dan_loss_fn, partition_loss)


class _StubBackbone(nn.Module):
    """A ferlib-style backbone: forward_map -> (B, 32, 6, 6)."""

    map_channels = 32
    feature_dim = 32

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 32, 3, stride=8, padding=1)
        self.fc = nn.Linear(32, 7)

    def forward_map(self, x):
        return torch.relu(self.conv(x))

    def forward(self, x):
        return self.fc(self.forward_map(x).mean((2, 3)))


def test_shapes_and_head_fusion():
    torch.manual_seed(0)
    model = DAN(_StubBackbone(), num_classes=7, num_heads=4)
    x = torch.rand(5, 1, 48, 48)
    out = model.forward_all(x)
    assert out.logits.shape == (5, 7)
    assert out.feature_map.shape == (5, 32, 6, 6)
    assert out.heads.shape == (5, 4, 32)
    # heads are log-softmaxed across heads: exp sums to 1 over the head axis
    assert torch.allclose(out.heads.exp().sum(1), torch.ones(5, 32), atol=1e-5)
    assert model(x).shape == (5, 7) and model.forward_features(x).shape == (5, 32)
    assert model.attention_maps(x).shape == (5, 4, 6, 6)
    # reductions scale with the map: C/2 in the spatial unit, max(1, C/16) in the channel unit
    head = model.heads[0]
    assert head.sa.conv1x1[0].out_channels == 16 and head.ca.attention[0].out_features == 2
    # the affinity centres are model parameters (so fit's optimiser trains them)
    assert any(p is model.affinity.centers for p in model.parameters())


def test_spatial_and_channel_units():
    sa = SpatialAttention(8).eval()
    x = torch.rand(2, 8, 5, 5)
    assert sa(x).shape == (2, 8, 5, 5) and sa.last_map.shape == (2, 1, 5, 5)
    ca = ChannelAttention(8).eval()
    v = ca(x)
    assert v.shape == (2, 8)
    assert torch.all(v <= x.mean((2, 3)) + 1e-6)             # sigmoid gate in (0, 1) scales down


def test_affinity_loss_hand_case():
    aff = AffinityLoss(num_classes=2, feat_dim=2)
    with torch.no_grad():
        aff.centers.copy_(torch.tensor([[0.0, 0.0], [2.0, 4.0]]))
    # centre variance per dim (unbiased): (0-1)^2*2/1 = 2 and (0-2)^2*2/1 = 8 -> total 10
    feats = torch.tensor([[1.0, 0.0], [2.0, 2.0]])           # distances^2 to own centre: 1, 4
    labels = torch.tensor([0, 1])
    assert aff(feats, labels).item() == pytest.approx((1 + 4) / 2 / 10)
    # a map input is globally pooled first
    fmap = feats[:, :, None, None].expand(2, 2, 3, 3)
    assert aff(fmap, labels).item() == pytest.approx(0.25)


def test_partition_loss_hand_case():
    heads = torch.tensor([[[0.0, 2.0], [2.0, 0.0]]])        # (B=1, H=2, C=2): var over heads = 2, 2
    assert partition_loss(heads).item() == pytest.approx(math.log(1 + 2 / 2))
    assert partition_loss(torch.ones(3, 1, 4)).item() == 0.0
    with pytest.raises(ValueError, match="heads"):
        partition_loss(torch.ones(3, 4))


def test_dan_loss_fn_and_one_training_step():
    torch.manual_seed(0)
    model = DAN(_StubBackbone(), num_classes=3, num_heads=2)
    x, y = torch.rand(6, 1, 48, 48), torch.tensor([0, 1, 2, 0, 1, 2])
    loss, logits = dan_loss_fn(model, x, y, epoch=1)
    assert logits.shape == (6, 3) and torch.isfinite(loss)
    parts = dan_loss_fn.last
    assert loss.item() == pytest.approx(float(parts["ce"] + parts["affinity"] + parts["partition"]), rel=1e-5)
    before = model.affinity.centers.detach().clone()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    loss.backward()
    opt.step()
    assert not torch.equal(before, model.affinity.centers)
    with pytest.raises(TypeError, match="DAN model"):
        dan_loss_fn(nn.Linear(2, 2), x, y, 1)


def test_bad_inputs():
    with pytest.raises(TypeError, match="forward_map"):
        DAN(nn.Linear(2, 2), 7)
    with pytest.raises(ValueError, match="num_heads"):
        DAN(_StubBackbone(), 7, num_heads=0)
    with pytest.raises(ValueError, match="num_heads"):
        DANConfig(num_heads=0)


def test_build_dan_on_ferlib_backbone():
    pytest.importorskip("ferlib.models.backbones", reason="ferlib.models.backbones not written yet")
    from ferlib.methods.dan.model import build_dan

    model = build_dan(7, "smallcnn", width=8).eval()
    out = model.forward_all(torch.rand(2, 1, 48, 48))
    assert out.logits.shape == (2, 7)
    assert out.heads.shape == (2, 4, model.backbone.map_channels)
