"""Tests of ferlib.methods.latent_aug.vaegan: shapes, losses on hand cases, resume, errors."""
import math

import numpy as np
import pytest
import torch

from ferlib.data.dataset import FaceDataset
from ferlib.methods.latent_aug.vaegan import (VAEGAN, PerceptualLoss, VAEGANConfig, hinge_d_loss,
                                              hinge_g_loss, kl_divergence, kl_weight_at,
                                              load_vaegan, train_vaegan, vaegan_config)

TINY = VAEGANConfig(latent_dim=4, image_size=16, width=2)


def test_shapes_48_grey_profile_sizes():
    m = VAEGAN(vaegan_config("smoke"))
    assert m.config.latent_dim == 16 and m.config.image_size == 32   # the smoke profile's faces
    m = VAEGAN(vaegan_config("smoke", image_size=48))
    x = torch.rand(3, 1, 48, 48)
    mu, logvar = m.encode(x)
    assert mu.shape == logvar.shape == (3, 16)
    img = m.decode(mu)
    img = img.detach()
    assert img.shape == (3, 1, 48, 48) and float(img.min()) >= 0 and float(img.max()) <= 1
    assert m.discriminator(x).shape == (3,)
    # spectral norm on every conv/linear of D
    names = [n for n, _ in m.discriminator.named_modules() if n.endswith("parametrizations")]
    assert len(names) == 3 * 4 + 1
    with pytest.raises(ValueError, match=r"\(B, 16\)"):
        m.decode(torch.zeros(2, 8))


def test_width_comes_from_the_profile_field():
    from ferlib.config import get_profile
    assert [vaegan_config(p).width for p in ("smoke", "cpu", "full")] == [4, 16, 64]
    assert vaegan_config(get_profile("smoke").replace(gen_width=8)).width == 8   # not the name


def test_kl_hand_cases():
    assert kl_divergence(torch.zeros(2, 5), torch.zeros(2, 5)).item() == 0.0
    # 1-D: KL(N(m, v) || N(0, 1)) = 0.5 (v + m^2 - 1 - log v); m = 1, v = e -> 0.5 (e + 1 - 1 - 1)
    kl = kl_divergence(torch.tensor([[1.0]]), torch.tensor([[1.0]])).item()
    assert kl == pytest.approx(0.5 * (math.e - 1.0), rel=1e-6)
    # sums over dimensions, averages over the batch
    two = kl_divergence(torch.tensor([[1.0, 1.0], [0.0, 0.0]]), torch.zeros(2, 2)).item()
    assert two == pytest.approx((0.5 + 0.5) / 2)


def test_hinge_hand_cases():
    d_real = torch.tensor([2.0, 0.5, -1.0])   # relu(1 - .) = 0, 0.5, 2 -> mean 0.8333
    d_fake = torch.tensor([-2.0, 0.0])         # relu(1 + .) = 0, 1 -> mean 0.5
    assert hinge_d_loss(d_real, d_fake).item() == pytest.approx(2.5 / 3 + 0.5)
    assert hinge_g_loss(d_fake).item() == pytest.approx(1.0)


def test_kl_annealing_is_linear_from_zero():
    assert kl_weight_at(0, 10, 0.2) == 0.0
    assert kl_weight_at(5, 10, 0.2) == pytest.approx(0.1)
    assert kl_weight_at(50, 10, 0.2) == pytest.approx(0.2)
    assert kl_weight_at(3, 0, 0.2) == pytest.approx(0.2)


def _toy(n=8):
    rng = np.random.default_rng(0)
    return FaceDataset(rng.integers(0, 256, size=(n, 16, 16), dtype=np.uint8),
                       np.arange(n) % 2, ("a", "b"), name="toy")


class _TinyClassifier(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = torch.nn.Conv2d(1, 3, 3, stride=2)

    def forward_map(self, x):
        return self.conv(x)


class _Interrupt(Exception):
    pass


def _stop_after_first(epoch, row):
    raise _Interrupt


def test_resume_equals_uninterrupted_run(tmp_path):
    """Interrupt a 2-epoch run after epoch 1 (checkpoint written), rerun: same weights as an
    uninterrupted run, bit for bit (KL annealing and perceptual term on)."""
    ds = _toy(4)                                               # one step per epoch
    torch.manual_seed(0)
    a = VAEGAN(TINY)
    init = {k: v.clone() for k, v in a.state_dict().items()}
    perc = PerceptualLoss(_TinyClassifier())
    ra = train_vaegan(a, ds, 2, batch_size=4, perceptual=perc, device="cpu", progress=False)
    b = VAEGAN(TINY)
    b.load_state_dict(init)
    with pytest.raises(_Interrupt):
        train_vaegan(b, ds, 2, batch_size=4, perceptual=perc, checkpoint_dir=tmp_path, device="cpu",
                     progress=False, on_epoch_end=_stop_after_first)
    c = VAEGAN(TINY)
    c.load_state_dict(init)
    rc = train_vaegan(c, ds, 2, batch_size=4, perceptual=perc, checkpoint_dir=tmp_path, device="cpu",
                      progress=False)
    assert rc.resumed_from_epoch == 1
    for (k, va), vc in zip(a.state_dict().items(), c.state_dict().values()):
        assert torch.equal(va, vc), k
    assert rc.history.equals(ra.history)
    # grids: rows real / reconstruction / prior sample, 4 columns (4 images), 2 px padding
    assert len(rc.grids) == 2 and np.array_equal(rc.grids[1], ra.grids[1])
    assert rc.grids[0].dtype == np.uint8 and rc.grids[0].shape == (3 * 16 + 4 * 2, 4 * 16 + 5 * 2)
    assert (tmp_path / "grids" / "epoch_001.png").exists()
    assert perc.classifier.conv.weight.grad is None          # the feature net stays frozen
    # 1 step per epoch, annealed over the whole run of 2 steps (the paper): beta 0, then w / 2
    assert ra.history["kl_beta"].tolist() == pytest.approx([0.0, TINY.kl_weight / 2])
    # a finished run returns at once with the same weights; load_vaegan reads them back
    again = train_vaegan(VAEGAN(TINY), ds, 2, batch_size=4, checkpoint_dir=tmp_path, device="cpu",
                         progress=False)
    assert again.resumed_from_epoch == 2 and again.wall_time < 1.0
    loaded = load_vaegan(tmp_path)
    assert torch.equal(loaded.state_dict()["encoder.fc_mu.weight"], c.state_dict()["encoder.fc_mu.weight"])


def test_latent_dim_mismatch_is_a_clear_error(tmp_path):
    ds = _toy(4)
    train_vaegan(VAEGAN(TINY), ds, 1, batch_size=4, checkpoint_dir=tmp_path, device="cpu", progress=False)
    other = VAEGAN(VAEGANConfig(latent_dim=6, image_size=16, width=2))
    with pytest.raises(ValueError, match="latent_dim=4 but the model has latent_dim=6"):
        train_vaegan(other, ds, 2, batch_size=4, checkpoint_dir=tmp_path, device="cpu", progress=False)
    with pytest.raises(ValueError, match="latent_dim"):
        load_vaegan(tmp_path, other)


def test_bad_inputs():
    with pytest.raises(ValueError, match="latent_dim"):
        VAEGANConfig(latent_dim=0)
    with pytest.raises(ValueError, match="multiple of 8"):
        VAEGANConfig(image_size=50)
    with pytest.raises(ValueError, match="images are"):
        train_vaegan(VAEGAN(VAEGANConfig(latent_dim=4, image_size=24, width=2)), _toy(), 1,
                     batch_size=4, device="cpu", progress=False)
    with pytest.raises(TypeError, match="forward_map"):
        PerceptualLoss(torch.nn.Linear(2, 2))
