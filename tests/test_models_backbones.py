"""Backbones, CBAM and checkpoints (ferlib.models.backbones, ferlib.models.cbam).

Tiny inputs; ResNet-50/101 get a single 1x1x32x32 forward. Torch runs single-threaded inside
this module (restored afterwards): on the shared 2-core machine, oversubscribed threads made a
ResNet-50 forward 25x slower.
"""
import math

import numpy as np
import pytest
import torch
from torch import nn
from torchvision.models.resnet import BasicBlock, Bottleneck
from torchvision.models.resnet import resnet18 as tv_resnet18

from ferlib.models import (CBAM, BackboneConfig, CBAMBasicBlock, build_backbone, load_backbone,
                           load_checkpoint, resnet18, save_backbone, small_cnn)
from ferlib.models.cbam import SpatialGate


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _check_interface(net, x, k, d, map_shape):
    net.eval()
    with torch.no_grad():
        logits = net(x)                      # (B, K)
        feats = net.forward_features(x)      # (B, D)
        fmap = net.forward_map(x)            # (B, C, h, w)
    b = x.shape[0]
    assert logits.shape == (b, k)
    assert feats.shape == (b, d) and net.feature_dim == d
    assert fmap.shape == (b, *map_shape) and net.map_channels == map_shape[0]
    assert isinstance(net.fc, nn.Linear) and net.fc.in_features == d and net.fc.out_features == k
    torch.testing.assert_close(logits, net.fc(feats))
    # features are the global average of the map
    torch.testing.assert_close(feats, fmap.mean(dim=(2, 3)))


# ---------------------------------------------------------------------------------------------
# shapes
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("cbam", [False, True])
def test_smallcnn_grey_48(cbam):
    torch.manual_seed(0)
    net = build_backbone("smallcnn", 7, in_channels=1, width=8, cbam=cbam)
    _check_interface(net, torch.rand(2, 1, 48, 48), 7, 64, (64, 6, 6))  # 48 / 2^3 = 6
    assert sum(isinstance(m, CBAM) for m in net.modules()) == (4 if cbam else 0)


def test_smallcnn_width16_parameter_count():
    # 9 * (1*16 + 16*16 + 16*32 + 32*32 + 32*64 + 64*64 + 64*128 + 128*128) conv weights
    net = small_cnn(7, width=16)
    conv = sum(m.weight.numel() for m in net.modules() if isinstance(m, nn.Conv2d))
    assert conv == 9 * 32528


@pytest.mark.parametrize("cbam", [False, True])
def test_resnet18_grey_48_small_stem(cbam):
    torch.manual_seed(0)
    net = build_backbone("resnet18", 8, in_channels=1, cbam=cbam, image_size=48)
    assert net.config.stem == "small" and isinstance(net.maxpool, nn.Identity)
    assert tuple(net.conv1.weight.shape) == (64, 1, 3, 3)
    _check_interface(net, torch.rand(2, 1, 48, 48), 8, 512, (512, 6, 6))  # 48 / 2^3
    blocks = [m for m in net.modules() if isinstance(m, BasicBlock)]
    assert len(blocks) == 8
    assert all(isinstance(b, CBAMBasicBlock) == cbam for b in blocks)


@pytest.mark.parametrize("stem,side", [("torchvision", 2), ("small_s2", 3)])
def test_resnet18_other_stems(stem, side):
    net = resnet18(7, stem=stem)
    _check_interface(net, torch.rand(1, 1, 48, 48), 7, 512, (512, side, side))


@pytest.mark.parametrize("name,cbam", [("resnet18", False), ("resnet34", True)])
def test_resnet_rgb_100(name, cbam):
    torch.manual_seed(0)
    net = build_backbone(name, 7, in_channels=3, cbam=cbam, image_size=100)
    assert net.config.stem == "torchvision"
    # 100 -> conv 50 -> pool 25 -> 25, 13, 7, 4
    _check_interface(net, torch.rand(1, 3, 100, 100), 7, 512, (512, 4, 4))


@pytest.mark.parametrize("name,cbam,blocks", [("resnet50", True, 16), ("resnet101", False, 33)])
def test_bottleneck_resnets_single_tiny_forward(name, cbam, blocks):
    net = build_backbone(name, 5, cbam=cbam, stem="torchvision").eval()
    assert sum(isinstance(m, Bottleneck) for m in net.modules()) == blocks
    assert sum(isinstance(m, CBAM) for m in net.modules()) == (blocks if cbam else 0)
    with torch.no_grad():
        out = net(torch.rand(1, 1, 32, 32))
    assert out.shape == (1, 5) and net.feature_dim == net.map_channels == 2048


def test_bad_arguments_are_clear_errors():
    with pytest.raises(ValueError, match="unknown backbone 'vgg'"):
        build_backbone("vgg", 7)
    with pytest.raises(ValueError, match="num_classes"):
        build_backbone("smallcnn", 0)
    with pytest.raises(ValueError, match="unknown stem"):
        build_backbone("resnet18", 7, stem="huge")
    net = small_cnn(7, width=4)
    with pytest.raises(ValueError, match=r"expects images \(B, 1, H, W\)"):
        net(torch.rand(1, 3, 48, 48))


# ---------------------------------------------------------------------------------------------
# CBAM
# ---------------------------------------------------------------------------------------------
def test_cbam_maps_shapes_range_and_initial_spatial_gate():
    torch.manual_seed(0)
    cbam = CBAM(32)
    x = torch.randn(3, 32, 6, 5)
    y = cbam(x)
    assert y.shape == x.shape
    ca, sa = cbam.last_channel_att, cbam.last_spatial_att
    assert ca.shape == (3, 32, 1, 1) and sa.shape == (3, 1, 6, 5)
    assert 0 <= float(ca.min()) and float(ca.max()) <= 1
    # spatial BN scale starts at 0, so BN output = beta = 0 and the gate is sigmoid(0) = 0.5
    assert float(cbam.spatial_gate.bn.weight.detach()) == 0.0
    torch.testing.assert_close(sa, torch.full_like(sa, 0.5))
    torch.testing.assert_close(y, x * ca * 0.5)
    # gamma still gets a gradient, so the gate can learn its spatial shape
    cbam(x).square().sum().backward()
    assert float(cbam.spatial_gate.bn.weight.grad.abs()) > 0


def test_cbam_channel_gate_closed_form():
    # MLP weights 0 and output bias b -> each branch gives b, the gate is sigmoid(2b);
    # b = ln(3)/2 -> sigmoid(ln 3) = 3/4 on every channel
    cbam = CBAM(8, zero_init_spatial=True)
    for p in cbam.channel_gate.mlp.parameters():
        nn.init.zeros_(p)
    nn.init.constant_(cbam.channel_gate.mlp[2].bias, math.log(3) / 2)
    x = torch.randn(2, 8, 4, 4)
    y = cbam(x)
    torch.testing.assert_close(cbam.last_channel_att, torch.full((2, 8, 1, 1), 0.75))
    torch.testing.assert_close(y, x * 0.75 * 0.5)


def test_cbam_gates_equal_the_equations_with_their_gradients():
    """Eqs. 2-3 written out with amax over the map / the channels and an NCHW convolution;
    ferlib's faster form (max-pools with indices, a channels-last convolution) gives the same
    output and the same gradients (no ties in a random input). A hand case first: one pixel,
    channels (1, 3) -> max 3, mean 2, so a 1x1 convolution with weights (1, -1) gives 1."""
    gate = SpatialGate(kernel_size=1, zero_init=False).eval()
    with torch.no_grad():
        gate.conv.weight.copy_(torch.tensor([1.0, -1.0]).view(1, 2, 1, 1))
    bn = gate.bn
    expected = torch.sigmoid(torch.tensor(1.0 / math.sqrt(1.0 + bn.eps)))   # BN stats 0 / 1
    torch.testing.assert_close(gate(torch.tensor([1.0, 3.0]).view(1, 2, 1, 1)).squeeze(),
                               expected)
    torch.manual_seed(0)
    cbam = CBAM(16, zero_init_spatial=False)
    x = torch.randn(4, 16, 9, 7, requires_grad=True)
    ca = torch.sigmoid(cbam.channel_gate.mlp(x.mean(dim=(2, 3)))
                       + cbam.channel_gate.mlp(x.amax(dim=(2, 3))))[:, :, None, None]
    xc = x * ca
    pooled = torch.cat([xc.amax(dim=1, keepdim=True), xc.mean(dim=1, keepdim=True)], dim=1)
    sg = cbam.spatial_gate
    ref = xc * torch.sigmoid(sg.bn(nn.functional.conv2d(pooled, sg.conv.weight, padding=3)))
    params = [x, *cbam.parameters()]
    g_ref = torch.autograd.grad(ref.square().sum(), params)
    out = cbam(x)
    torch.testing.assert_close(out, ref)
    for a, b in zip(torch.autograd.grad(out.square().sum(), params), g_ref):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)


def test_cbam_hidden_width_floor():
    assert CBAM(512).channel_gate.hidden == 32
    assert CBAM(64).channel_gate.hidden == 4
    assert CBAM(8).channel_gate.hidden == 4    # 8 // 16 = 0 -> floor
    assert CBAM(2).channel_gate.hidden == 2    # never wider than the input
    assert CBAM(2)(torch.rand(1, 2, 3, 3)).shape == (1, 2, 3, 3)
    with pytest.raises(ValueError, match="CBAM kernel_size"):
        CBAM(8, kernel_size=4)


def test_cbam_sits_after_bn2_before_the_residual_add():
    torch.manual_seed(0)
    block = CBAMBasicBlock(16, 16).eval()
    plain = BasicBlock(16, 16).eval()
    plain.load_state_dict({k: v for k, v in block.state_dict().items() if not k.startswith("cbam.")})
    x = torch.randn(2, 16, 5, 5)
    seen = {}
    block.bn2.register_forward_hook(lambda m, i, o: seen.__setitem__("bn2", o.clone()))
    block.cbam.register_forward_hook(lambda m, i, o: seen.update(cin=i[0].clone(), cout=o.clone()))
    with torch.no_grad():
        out = block(x)
    torch.testing.assert_close(seen["cin"], seen["bn2"])
    torch.testing.assert_close(out, torch.relu(seen["cout"] + x))
    block.cbam = nn.Identity()  # without the gate the block is torchvision's BasicBlock
    with torch.no_grad():
        torch.testing.assert_close(block(x), plain(x))


def test_spatial_bn_zero_init_survives_resnet_init():
    net = resnet18(7, cbam=True)
    gammas = [float(m.spatial_gate.bn.weight.detach()) for m in net.modules() if isinstance(m, CBAM)]
    assert gammas == [0.0] * 8


# ---------------------------------------------------------------------------------------------
# checkpoints
# ---------------------------------------------------------------------------------------------
def test_save_and_load_backbone_round_trip(tmp_path):
    torch.manual_seed(0)
    net = small_cnn(7, width=4, cbam=True)
    net.train()
    net(torch.rand(4, 1, 24, 24))  # move the BN running statistics away from their init
    net.eval()
    path = save_backbone(net, tmp_path / "sub" / "bb.pt",
                         meta={"method": "ce", "seed": np.int64(3), "acc": np.float32(0.5)})
    back = load_backbone(path)
    assert back.config == net.config == BackboneConfig("smallcnn", 7, width=4, cbam=True)
    assert back.checkpoint_meta == {"method": "ce", "seed": 3, "acc": 0.5}
    x = torch.rand(2, 1, 24, 24)
    with torch.no_grad():
        torch.testing.assert_close(back.eval()(x), net(x))


def test_module_prefix_and_state_dict_key(tmp_path, capsys):
    torch.manual_seed(0)
    src = small_cnn(7, width=4)
    sd = {"module." + k: v for k, v in src.state_dict().items()}
    torch.save({"state_dict": sd, "epoch": 12, "arch": "smallcnn"}, tmp_path / "ck.pth")
    torch.manual_seed(1)
    dst = small_cnn(7, width=4)
    report = load_checkpoint(dst, tmp_path / "ck.pth")
    assert report.missing == [] and report.unexpected == [] and report.skipped_shape == []
    assert report.loaded == list(src.state_dict()) and report.complete
    assert "loaded %d, missing 0" % len(report.loaded) in capsys.readouterr().out
    for k, v in src.state_dict().items():
        torch.testing.assert_close(dst.state_dict()[k], v)


def test_ms_celeb_like_resnet18_reports_the_skipped_fc(tmp_path):
    torch.manual_seed(0)
    celeb = tv_resnet18(num_classes=8631)  # RGB 7x7 stem, identity classifier
    sd = {"module." + k: v for k, v in celeb.state_dict().items()}
    torch.save({"state_dict": sd}, tmp_path / "resnet18_msceleb.pth")

    grey = resnet18(7, in_channels=1, stem="torchvision")
    report = load_checkpoint(grey, tmp_path / "resnet18_msceleb.pth", verbose=False)
    assert report.skipped_shape == [("fc.weight", (8631, 512), (7, 512)), ("fc.bias", (8631,), (7,))]
    assert report.missing == ["fc.weight", "fc.bias"] and report.unexpected == []
    assert report.adapted == ["conv1.weight"]  # grey pixel g = RGB (g, g, g)
    torch.testing.assert_close(grey.conv1.weight, celeb.conv1.weight.sum(1, keepdim=True))
    torch.testing.assert_close(grey.layer4[1].bn2.running_var, celeb.layer4[1].bn2.running_var)
    assert len(report.loaded) == len(celeb.state_dict()) - 2

    small = resnet18(7, in_channels=1)  # 3x3 stem: the 7x7 conv1 cannot be used either
    report = load_checkpoint(small, {"state_dict": sd}, verbose=False)  # in-memory works too
    assert [k for k, *_ in report.skipped_shape] == ["conv1.weight", "fc.weight", "fc.bias"]
    with pytest.raises(ValueError, match="strict load failed"):
        load_checkpoint(small, sd, strict=True, verbose=False)


def test_nothing_matching_is_an_error(tmp_path):
    torch.save({"model": {"encoder.weight": torch.zeros(3, 3)}}, tmp_path / "other.pt")
    with pytest.raises(ValueError, match="nothing loaded"):
        load_checkpoint(small_cnn(7, width=4), tmp_path / "other.pt")
    torch.save({"epoch": 3, "note": "no weights"}, tmp_path / "empty.pt")
    with pytest.raises(ValueError, match="no tensors found"):
        load_checkpoint(small_cnn(7, width=4), tmp_path / "empty.pt")
    with pytest.raises(FileNotFoundError):
        load_checkpoint(small_cnn(7, width=4), tmp_path / "absent.pt")
