"""VAE-GAN of Li et al. (long-tailed FER by latent covariance augmentation), chapter
notebooks/04_latent_covariance_augmentation, "The VAE-GAN".

Three networks on 48x48 grey faces in [0, 1]:

* encoder ``E`` (ResNet style, torchvision ``BasicBlock`` with stride 2) -> mean ``mu`` and
  log-variance ``logvar`` of q(z | x);
* generator / decoder ``G`` (BigGAN-style residual up-sampling blocks: BN, ReLU, 2x nearest
  up-sampling, 3x3 conv, BN, ReLU, 3x3 conv, plus a 1x1-conv shortcut) -> image via a sigmoid;
* discriminator ``D`` (BigGAN-style residual down-sampling blocks, every conv and the final
  linear under spectral normalisation) -> one unbounded score per image.

Losses (see :func:`vaegan_losses`):

* hinge GAN loss (reference facts, "GAN"): ``L_D = mean relu(1 - D(x)) + mean relu(1 + D(x~))``,
  ``L_G = -mean D(x~)`` where x~ are reconstructions and decoded prior samples;
* ``KL(q(z|x) || N(0, I))`` (Kingma & Welling, Eq. 10), weighted by ``beta_t`` that rises
  linearly from 0 to ``kl_weight`` over the first ``kl_anneal_share`` of the training steps
  (KL annealing, Bowman et al. 2016; default 1, the whole run, as Li et al.);
* L1 reconstruction ``mean |x - G(mu + sigma eps)|`` plus an optional perceptual term
  ``mean (phi(x) - phi(x_rec))^2`` where ``phi`` is the last convolutional map
  (``forward_map``) of a classifier trained in this book, frozen. No pretrained network is
  downloaded; the chapter uses the plain cross-entropy classifier of its Table I ("none" row).

Adam with betas (0, 0.999), G 1e-4 and D 4e-4 (BigGAN / SAGAN two-time-scale rule).
:func:`train_vaegan` checkpoints after each epoch (all three networks, both optimisers, the
random generators, the history and the per-epoch image grids) and resumes when run again.
"""
from __future__ import annotations

import dataclasses
import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.nn.utils.parametrizations import spectral_norm
from torchvision.models.resnet import BasicBlock
from tqdm.auto import tqdm

__all__ = [
    "VAEGANConfig", "VAEGAN", "Encoder", "Generator", "Discriminator", "GBlock", "DBlock",
    "vaegan_config", "build_vaegan", "kl_divergence", "hinge_d_loss", "hinge_g_loss",
    "kl_weight_at", "PerceptualLoss", "vaegan_losses", "train_vaegan", "VAEGANResult",
    "load_vaegan", "CHECKPOINT_NAME",
]

CHECKPOINT_NAME = "vaegan_last.pt"


# ------------------------------------------------------------------------------------------
# configuration
# ------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class VAEGANConfig:
    """Sizes and loss weights of the VAE-GAN (chapter 04, "The VAE-GAN").

    ``width`` is the channel count of the first encoder stage / last generator stage; the
    network doubles it at each of the three resolution changes (48 -> 24 -> 12 -> 6).
    """

    latent_dim: int = 32
    image_size: int = 48
    in_channels: int = 1
    width: int = 16
    rec_weight: float = 1.0          # L1 reconstruction
    kl_weight: float = 1e-3          # KL weight reached at the end of the annealing
    kl_anneal_share: float = 1.0     # share of all training steps over which beta rises from 0
                                     # (1: over the whole run, as the paper)
    adv_weight: float = 0.05         # weight of the hinge generator loss in the E+G objective
    perceptual_weight: float = 0.1   # 0 switches the perceptual term off
    lr_g: float = 1e-4               # encoder + generator
    lr_d: float = 4e-4               # discriminator
    betas: tuple[float, float] = (0.0, 0.999)

    def __post_init__(self):
        if self.latent_dim < 1:
            raise ValueError(f"VAEGANConfig.latent_dim must be >= 1, got {self.latent_dim}")
        if self.image_size % 8:
            raise ValueError(f"VAEGANConfig.image_size must be a multiple of 8 (three 2x stages), "
                             f"got {self.image_size}")
        if self.width < 1:
            raise ValueError(f"VAEGANConfig.width must be >= 1, got {self.width}")
        for name in ("rec_weight", "kl_weight", "adv_weight", "perceptual_weight"):
            if getattr(self, name) < 0:
                raise ValueError(f"VAEGANConfig.{name} must be >= 0, got {getattr(self, name)}")
        if not 0.0 <= self.kl_anneal_share <= 1.0:
            raise ValueError(f"VAEGANConfig.kl_anneal_share must be in [0, 1], got {self.kl_anneal_share}")

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d["betas"] = list(self.betas)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "VAEGANConfig":
        d = dict(d)
        if "betas" in d:
            d["betas"] = tuple(d["betas"])
        return cls(**d)


def vaegan_config(profile="smoke", **overrides) -> VAEGANConfig:
    """The VAE-GAN configuration of a profile (``ferlib.config``): latent size from
    ``profile.latent_dim``, width from ``profile.gen_width`` (4 / 16 / 64 for smoke / cpu /
    full), the profile's image size (grey)."""
    from ferlib.config import get_profile

    p = get_profile(profile)
    kw = dict(latent_dim=p.latent_dim, image_size=p.image_size, width=p.gen_width)
    kw.update(overrides)
    return VAEGANConfig(**kw)


# ------------------------------------------------------------------------------------------
# blocks
# ------------------------------------------------------------------------------------------
class GBlock(nn.Module):
    """BigGAN generator block (Brock et al. 2019, Fig. 15a, unconditional BN):
    BN-ReLU-up-conv3-BN-ReLU-conv3, shortcut up-conv1; doubles the resolution."""

    def __init__(self, in_ch: int, out_ch: int):
        super().__init__()
        self.bn1 = nn.BatchNorm2d(in_ch)
        self.conv1 = nn.Conv2d(in_ch, out_ch, 3, padding=1)
        self.bn2 = nn.BatchNorm2d(out_ch)
        self.conv2 = nn.Conv2d(out_ch, out_ch, 3, padding=1)
        self.shortcut = nn.Conv2d(in_ch, out_ch, 1)

    def forward(self, x):
        h = F.interpolate(F.relu(self.bn1(x)), scale_factor=2, mode="nearest")  # (B, Cin, 2h, 2w)
        h = self.conv2(F.relu(self.bn2(self.conv1(h))))                          # (B, Cout, 2h, 2w)
        return h + self.shortcut(F.interpolate(x, scale_factor=2, mode="nearest"))


class DBlock(nn.Module):
    """BigGAN discriminator block (Brock et al. 2019, Fig. 15b): (ReLU)-conv3-ReLU-conv3-avgpool,
    shortcut conv1-avgpool; every conv spectrally normalised (Miyato et al. 2018)."""

    def __init__(self, in_ch: int, out_ch: int, down: bool = True, preactivation: bool = True):
        super().__init__()
        self.conv1 = spectral_norm(nn.Conv2d(in_ch, out_ch, 3, padding=1))
        self.conv2 = spectral_norm(nn.Conv2d(out_ch, out_ch, 3, padding=1))
        self.shortcut = spectral_norm(nn.Conv2d(in_ch, out_ch, 1))
        self.down = down
        self.preactivation = preactivation

    def forward(self, x):
        h = F.relu(x) if self.preactivation else x
        h = self.conv2(F.relu(self.conv1(h)))  # (B, Cout, h, w)
        s = self.shortcut(x)
        if self.down:
            h, s = F.avg_pool2d(h, 2), F.avg_pool2d(s, 2)  # (B, Cout, h/2, w/2)
        return h + s


# ------------------------------------------------------------------------------------------
# networks
# ------------------------------------------------------------------------------------------
class Encoder(nn.Module):
    """E: image (B, C, S, S) -> (mu, logvar), each (B, latent_dim). ResNet style: a 3x3 stem,
    then three torchvision BasicBlocks with stride 2 (S -> S/8), flattened to two linears."""

    def __init__(self, cfg: VAEGANConfig):
        super().__init__()
        w = cfg.width
        self.stem = nn.Sequential(nn.Conv2d(cfg.in_channels, w, 3, padding=1, bias=False),
                                  nn.BatchNorm2d(w), nn.ReLU(inplace=True))
        blocks, c = [], w
        for _ in range(3):
            down = nn.Sequential(nn.Conv2d(c, 2 * c, 1, stride=2, bias=False), nn.BatchNorm2d(2 * c))
            blocks.append(BasicBlock(c, 2 * c, stride=2, downsample=down))
            c *= 2
        self.blocks = nn.Sequential(*blocks)
        self.bottom = cfg.image_size // 8
        flat = c * self.bottom * self.bottom
        self.fc_mu = nn.Linear(flat, cfg.latent_dim)
        self.fc_logvar = nn.Linear(flat, cfg.latent_dim)

    def forward(self, x):
        h = self.blocks(self.stem(x)).flatten(1)  # (B, 8w * (S/8)^2)
        return self.fc_mu(h), self.fc_logvar(h)   # (B, d), (B, d)


class Generator(nn.Module):
    """G: latent (B, d) -> image (B, C, S, S) in [0, 1]. Linear to an (8w, S/8, S/8) map,
    three GBlocks (S/8 -> S), BN-ReLU-conv3, sigmoid."""

    def __init__(self, cfg: VAEGANConfig):
        super().__init__()
        w, self.bottom = cfg.width, cfg.image_size // 8
        self.c0 = 8 * w
        self.fc = nn.Linear(cfg.latent_dim, self.c0 * self.bottom * self.bottom)
        self.blocks = nn.Sequential(GBlock(8 * w, 4 * w), GBlock(4 * w, 2 * w), GBlock(2 * w, w))
        self.out = nn.Sequential(nn.BatchNorm2d(w), nn.ReLU(inplace=True),
                                 nn.Conv2d(w, cfg.in_channels, 3, padding=1))

    def forward(self, z):
        h = self.fc(z).view(z.shape[0], self.c0, self.bottom, self.bottom)  # (B, 8w, S/8, S/8)
        return torch.sigmoid(self.out(self.blocks(h)))                      # (B, C, S, S)


class Discriminator(nn.Module):
    """D: image (B, C, S, S) -> score (B,). DBlocks S -> S/8, one more DBlock without pooling,
    ReLU, sum over space (BigGAN), spectrally normalised linear."""

    def __init__(self, cfg: VAEGANConfig):
        super().__init__()
        w = cfg.width
        self.blocks = nn.Sequential(
            DBlock(cfg.in_channels, w, preactivation=False), DBlock(w, 2 * w), DBlock(2 * w, 4 * w),
            DBlock(4 * w, 8 * w, down=False))
        self.fc = spectral_norm(nn.Linear(8 * w, 1))

    def forward(self, x):
        h = F.relu(self.blocks(x)).sum(dim=(2, 3))  # (B, 8w)
        return self.fc(h).squeeze(1)                # (B,)


class VAEGAN(nn.Module):
    """Encoder, generator and discriminator together (chapter 04, "The VAE-GAN")."""

    def __init__(self, cfg: VAEGANConfig | None = None):
        super().__init__()
        self.config = cfg or VAEGANConfig()
        self.encoder = Encoder(self.config)
        self.generator = Generator(self.config)
        self.discriminator = Discriminator(self.config)

    @property
    def latent_dim(self) -> int:
        return self.config.latent_dim

    def encode(self, x):
        """(mu, logvar) of q(z | x), each (B, d)."""
        return self.encoder(x)

    def decode(self, z):
        """G(z): (B, d) -> (B, C, S, S) in [0, 1]."""
        if z.ndim != 2 or z.shape[1] != self.latent_dim:
            raise ValueError(f"decode expects latents of shape (B, {self.latent_dim}), got {tuple(z.shape)}")
        return self.generator(z)

    @staticmethod
    def reparameterize(mu, logvar, generator: torch.Generator | None = None):
        """z = mu + exp(logvar / 2) * eps, eps ~ N(0, I) (Kingma & Welling, Eq. 4)."""
        eps = torch.randn(mu.shape, generator=generator, device=mu.device, dtype=mu.dtype)
        return mu + torch.exp(0.5 * logvar) * eps  # (B, d)

    def forward(self, x, generator: torch.Generator | None = None):
        """Reconstruction through a sampled latent: returns (x_rec, mu, logvar)."""
        mu, logvar = self.encode(x)
        return self.decode(self.reparameterize(mu, logvar, generator)), mu, logvar

    @torch.no_grad()
    def reconstruct(self, x):
        """Deterministic reconstruction G(mu(x)) (no sampling)."""
        return self.decode(self.encode(x)[0])

    @torch.no_grad()
    def sample(self, n: int, generator: torch.Generator | None = None):
        """n images decoded from the prior N(0, I)."""
        dev = next(self.parameters()).device
        z = torch.randn((n, self.latent_dim), generator=generator, device=dev)
        return self.decode(z)


def build_vaegan(profile="smoke", **overrides) -> VAEGAN:
    """A VAE-GAN sized by a profile (see :func:`vaegan_config`)."""
    return VAEGAN(vaegan_config(profile, **overrides))


# ------------------------------------------------------------------------------------------
# losses
# ------------------------------------------------------------------------------------------
def kl_divergence(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """KL(N(mu, diag(exp(logvar))) || N(0, I)), summed over latent dimensions and averaged
    over the batch: ``-1/2 sum(1 + logvar - mu^2 - exp(logvar))`` (Kingma & Welling 2014,
    Appendix B, Eq. 10). Zero for mu = 0, logvar = 0."""
    if mu.shape != logvar.shape:
        raise ValueError(f"mu {tuple(mu.shape)} and logvar {tuple(logvar.shape)} differ in shape")
    kl = -0.5 * (1 + logvar - mu.pow(2) - logvar.exp())  # (B, d)
    return kl.sum(dim=-1).mean()


def hinge_d_loss(d_real: torch.Tensor, d_fake: torch.Tensor) -> torch.Tensor:
    """Discriminator hinge loss ``mean relu(1 - D(x)) + mean relu(1 + D(x~))``
    (Lim & Ye 2017; Miyato et al. 2018, Eq. 16)."""
    return F.relu(1.0 - d_real).mean() + F.relu(1.0 + d_fake).mean()


def hinge_g_loss(d_fake: torch.Tensor) -> torch.Tensor:
    """Generator hinge loss ``-mean D(x~)``."""
    return -d_fake.mean()


def kl_weight_at(step: int, anneal_steps: int, max_weight: float) -> float:
    """Linear KL annealing: ``max_weight * min(1, step / anneal_steps)``; 0 at step 0.
    ``anneal_steps <= 0`` means no annealing (the full weight from the start)."""
    if anneal_steps <= 0:
        return float(max_weight)
    return float(max_weight) * min(1.0, step / anneal_steps)


class PerceptualLoss(nn.Module):
    """``mean (phi(x) - phi(x_rec))^2`` with ``phi`` = ``classifier.forward_map`` (last conv
    map) of a ferlib backbone trained in this book, frozen (eval mode, no gradients to its
    weights). Chapter 04 uses the plain cross-entropy classifier of its Table I "none" row."""

    def __init__(self, classifier: nn.Module, layer: str = "forward_map"):
        super().__init__()
        if not hasattr(classifier, layer):
            raise TypeError(f"PerceptualLoss: the classifier has no {layer}(); pass a ferlib backbone "
                            "(ferlib.models.build_backbone) or choose layer='forward_features'")
        self.classifier = classifier.eval()
        self.classifier.requires_grad_(False)
        self.layer = layer

    def train(self, mode: bool = True):  # the feature network stays in eval mode
        super().train(mode)
        self.classifier.eval()
        return self

    def forward(self, x, x_rec):
        phi = getattr(self.classifier, self.layer)
        with torch.no_grad():
            target = phi(x)  # (B, C, h, w)
        return F.mse_loss(phi(x_rec), target)


def vaegan_losses(model: VAEGAN, x: torch.Tensor, *, kl_beta: float,
                  perceptual: PerceptualLoss | None = None,
                  generator: torch.Generator | None = None) -> dict[str, torch.Tensor]:
    """All terms for one batch: returns ``d_loss`` (discriminator), ``eg_loss`` (encoder +
    generator objective) and the parts ``rec``, ``kl``, ``perc``, ``adv``.

    D scores the fakes once for both losses, so ``d_loss`` is connected to E and G too: take its
    gradient with respect to the discriminator's parameters only (as :func:`train_vaegan` does
    with ``torch.autograd.grad(..., inputs=D params)``), never ``d_loss.backward()``.

    ``eg_loss = rec_weight * L1 + kl_beta * KL + perceptual_weight * perc + adv_weight * L_G``
    with fakes = reconstructions of x and decodings of as many prior samples."""
    cfg = model.config
    mu, logvar = model.encode(x)                                            # (B, d)
    x_rec = model.decode(model.reparameterize(mu, logvar, generator))       # (B, C, S, S)
    z_p = torch.randn(mu.shape, generator=generator, device=x.device, dtype=mu.dtype)
    x_p = model.decode(z_p)                                                 # (B, C, S, S)
    fakes = torch.cat([x_rec, x_p])                                         # (2B, C, S, S)

    d_fake = model.discriminator(fakes)                                     # (2B,) one pass for both
    d_loss = hinge_d_loss(model.discriminator(x), d_fake)
    rec = F.l1_loss(x_rec, x)
    kl = kl_divergence(mu, logvar)
    adv = hinge_g_loss(d_fake)
    use_perc = perceptual is not None and cfg.perceptual_weight > 0
    perc = perceptual(x, x_rec) if use_perc else torch.zeros((), device=x.device)
    eg_loss = cfg.rec_weight * rec + kl_beta * kl + cfg.perceptual_weight * perc + cfg.adv_weight * adv
    return dict(d_loss=d_loss, eg_loss=eg_loss, rec=rec, kl=kl, perc=perc, adv=adv)


# ------------------------------------------------------------------------------------------
# training
# ------------------------------------------------------------------------------------------
@dataclass
class VAEGANResult:
    """What :func:`train_vaegan` returns. ``grids[e]`` is the uint8 (H, W) image of epoch e:
    row 1 real images, row 2 their reconstructions G(mu(x)), row 3 decoded prior samples
    (a fixed z). ``grid_paths`` are the PNG files when a checkpoint_dir was given."""

    model: VAEGAN
    history: pd.DataFrame
    grids: list[np.ndarray] = field(default_factory=list)
    grid_paths: list[Path] = field(default_factory=list)
    wall_time: float = 0.0
    resumed_from_epoch: int = 0
    device: str = "cpu"


def _images_uint8(dataset) -> torch.Tensor:
    """All images of a dataset as a uint8 tensor (N, C, H, W) (FaceDataset: no copy)."""
    imgs = getattr(dataset, "images", None)
    if isinstance(imgs, np.ndarray) and imgs.dtype == np.uint8:
        t = torch.from_numpy(imgs)
        return t.unsqueeze(1) if t.ndim == 3 else t.permute(0, 3, 1, 2)
    xs = [dataset[i][0] for i in range(len(dataset))]
    return (torch.stack(xs).clamp(0, 1) * 255).round().to(torch.uint8)


def _grid(model: VAEGAN, x_fixed, z_fixed) -> np.ndarray:
    from torchvision.utils import make_grid

    was = model.training
    model.eval()
    with torch.no_grad():
        rows = torch.cat([x_fixed, model.reconstruct(x_fixed), model.decode(z_fixed)])  # (3n, C, S, S)
    model.train(was)
    g = make_grid(rows.float().cpu(), nrow=len(x_fixed), padding=2, pad_value=1.0)   # (3, H, W)
    return (g[0].clamp(0, 1) * 255).round().to(torch.uint8).numpy()


def _check_config(ckpt_cfg: dict, cfg: VAEGANConfig, path) -> None:
    if ckpt_cfg.get("latent_dim") != cfg.latent_dim:
        raise ValueError(f"{path}: checkpoint has latent_dim={ckpt_cfg.get('latent_dim')} but the model "
                         f"has latent_dim={cfg.latent_dim}; use a matching profile/config or another "
                         "checkpoint_dir")
    for key in ("image_size", "in_channels", "width"):
        if ckpt_cfg.get(key) != getattr(cfg, key):
            raise ValueError(f"{path}: checkpoint has {key}={ckpt_cfg.get(key)} but the model has "
                             f"{key}={getattr(cfg, key)}")


def load_vaegan(path, model: VAEGAN | None = None, map_location="cpu") -> VAEGAN:
    """Load the networks of a :func:`train_vaegan` checkpoint (a file or its folder). With a
    model given, its config must match (a latent size mismatch is a ValueError)."""
    path = Path(path)
    if path.is_dir():
        path = path / CHECKPOINT_NAME
    if not path.exists():
        raise FileNotFoundError(f"no VAE-GAN checkpoint at {path}")
    state = _read_checkpoint(path, map_location)
    if model is None:
        try:
            model = VAEGAN(VAEGANConfig.from_dict(state["config"]))
        except (TypeError, ValueError) as exc:
            raise ValueError(f"{path}: its config {state['config']!r} is not a VAEGANConfig ({exc})") from None
    else:
        _check_config(state["config"], model.config, path)
    model.load_state_dict(state["model"])
    return model


_STATE_KEYS = ("config", "model", "opt_eg", "opt_d", "g_data", "g_noise", "history", "grids",
               "epoch", "step")


def _read_checkpoint(path: Path, map_location="cpu") -> dict:
    """A :func:`train_vaegan` checkpoint read with ``weights_only=True`` (tensors and plain
    data only: a file holding other objects is refused, never executed); errors name the file."""
    from ferlib.checkpoint import load_checkpoint_file

    state = load_checkpoint_file(path, "VAE-GAN checkpoint", map_location)
    missing = [k for k in _STATE_KEYS if not isinstance(state, dict) or k not in state]
    if missing:
        raise ValueError(f"{path} is not a complete VAE-GAN checkpoint (missing {', '.join(missing)}); "
                         "delete it to train again")
    if not isinstance(state["config"], dict):
        raise ValueError(f"{path}: 'config' must be a plain dict, got {type(state['config']).__name__}")
    return state


def _data_hash(images: torch.Tensor) -> str:
    """Hex digest of a uint8 image tensor (N, C, H, W): which images a run was trained on."""
    import hashlib

    h = hashlib.blake2b(digest_size=16)
    h.update(str(tuple(images.shape)).encode())
    h.update(images.contiguous().numpy().data)
    return h.hexdigest()


def _check_run(saved: dict, current: dict, path) -> None:
    for key in sorted(set(saved) | set(current)):
        if saved.get(key) != current.get(key):
            raise ValueError(f"{path} was written by a different run ({key}: checkpoint has "
                             f"{saved.get(key)!r}, this run has {current.get(key)!r}). Pass the same "
                             "arguments to resume, or use another checkpoint_dir / delete the file.")


def train_vaegan(model: VAEGAN, dataset, epochs: int, *, batch_size: int = 64,
                 perceptual: nn.Module | None = None, checkpoint_dir=None, device="auto",
                 seed: int = 0, n_grid: int = 8, progress: bool = True,
                 on_epoch_end: Callable[[int, dict], None] | None = None) -> VAEGANResult:
    """Train the VAE-GAN (chapter 04, "Training the VAE-GAN").

    Per step: one Adam step on D with the hinge loss, then one on E+G with
    :func:`vaegan_losses`; the KL weight rises linearly (:func:`kl_weight_at`). Learning rates
    and betas come from ``model.config``. ``perceptual``: a :class:`PerceptualLoss` (or None).

    With ``checkpoint_dir`` the state after each epoch goes to ``checkpoint_dir/vaegan_last.pt``
    and the grid to ``checkpoint_dir/grids/epoch_XXX.png``; running again with the same
    arguments resumes from the last finished epoch (a finished run returns at once). All
    randomness (shuffling, reparameterisation noise, prior samples) comes from generators seeded
    by ``seed`` and saved in the checkpoint, so a resumed run equals an uninterrupted one.
    The checkpoint holds tensors and plain data only (read with ``weights_only=True``) and is
    written atomically (:func:`ferlib.checkpoint.save_atomic`); a checkpoint of another run
    (other config, seed, batch size, epochs, grid size or images) is a ValueError naming the
    difference. This loop is separate from ``ferlib.train.fit`` because a GAN needs two optimisers.
    """
    from ferlib.checkpoint import save_atomic
    from ferlib.config import resolve_device

    if epochs < 0:
        raise ValueError(f"train_vaegan: epochs must be >= 0, got {epochs}")
    if batch_size < 2:
        raise ValueError(f"train_vaegan: batch_size must be >= 2 (BatchNorm), got {batch_size}")
    dev = resolve_device(device)
    cfg = model.config
    images = _images_uint8(dataset)                                        # (N, C, H, W) uint8
    n = len(images)
    if n < 2:
        raise ValueError(f"train_vaegan: the dataset has {n} images; need at least 2")
    if tuple(images.shape[1:]) != (cfg.in_channels, cfg.image_size, cfg.image_size):
        raise ValueError(f"train_vaegan: images are {tuple(images.shape[1:])} but the model expects "
                         f"({cfg.in_channels}, {cfg.image_size}, {cfg.image_size})")
    model.to(dev)
    if perceptual is not None:
        perceptual.to(dev)

    eg_params = list(model.encoder.parameters()) + list(model.generator.parameters())
    d_params = list(model.discriminator.parameters())
    opt_eg = torch.optim.Adam(eg_params, lr=cfg.lr_g, betas=cfg.betas)
    opt_d = torch.optim.Adam(d_params, lr=cfg.lr_d, betas=cfg.betas)
    g_data = torch.Generator().manual_seed(seed)
    g_noise = torch.Generator(device=dev).manual_seed(seed + 1)

    fixed_idx = torch.randperm(n, generator=torch.Generator().manual_seed(seed))[:min(n_grid, n)]
    x_fixed = images[fixed_idx].float().div(255).to(dev)
    z_fixed = torch.randn((len(fixed_idx), cfg.latent_dim), generator=torch.Generator().manual_seed(seed + 2)).to(dev)

    steps_per_epoch = max(1, n // batch_size)  # drop_last: BatchNorm needs > 1 sample
    anneal_steps = int(round(cfg.kl_anneal_share * epochs * steps_per_epoch))
    rows, grids, grid_paths, start_epoch, step = [], [], [], 0, 0
    # what the result depends on besides the config: a checkpoint of another run is an error
    run = {"seed": int(seed), "batch_size": int(batch_size), "epochs": int(epochs),
           "n_grid": int(n_grid), "data": _data_hash(images),
           **{f"config.{k}": v for k, v in cfg.to_dict().items()}}

    ckpt_path = None
    if checkpoint_dir is not None:
        checkpoint_dir = Path(checkpoint_dir)
        (checkpoint_dir / "grids").mkdir(parents=True, exist_ok=True)
        ckpt_path = checkpoint_dir / CHECKPOINT_NAME
        if ckpt_path.exists():
            state = _read_checkpoint(ckpt_path)
            _check_config(state["config"], cfg, ckpt_path)
            _check_run(state.get("run", {}), run, ckpt_path)
            model.load_state_dict(state["model"])
            opt_eg.load_state_dict(state["opt_eg"])
            opt_d.load_state_dict(state["opt_d"])
            g_data.set_state(state["g_data"])
            g_noise.set_state(state["g_noise"])
            rows, grids = state["history"], [g.numpy() for g in state["grids"]]
            start_epoch, step = state["epoch"], state["step"]
            grid_paths = [checkpoint_dir / "grids" / f"epoch_{e:03d}.png" for e in range(start_epoch)]

    t0 = time.time()
    model.train()
    for epoch in range(start_epoch, epochs):
        perm = torch.randperm(n, generator=g_data)
        sums = {k: torch.zeros((), device=dev) for k in ("d_loss", "eg_loss", "rec", "kl", "perc", "adv")}
        bar = tqdm(range(steps_per_epoch), desc=f"VAE-GAN epoch {epoch + 1}/{epochs}",
                   disable=not progress, leave=False)
        for b in bar:
            idx = perm[b * batch_size:(b + 1) * batch_size]
            x = images[idx].float().div_(255).to(dev)                          # (B, C, S, S)
            beta = kl_weight_at(step, anneal_steps, cfg.kl_weight)
            out = vaegan_losses(model, x, kl_beta=beta, perceptual=perceptual, generator=g_noise)
            opt_d.zero_grad(set_to_none=True)
            opt_eg.zero_grad(set_to_none=True)
            # D gradients come only from d_loss; E+G gradients only from eg_loss (shared graph).
            d_grads = torch.autograd.grad(out["d_loss"], d_params, retain_graph=True)
            out["eg_loss"].backward(inputs=eg_params)
            for p, g in zip(d_params, d_grads):
                p.grad = g
            opt_d.step()
            opt_eg.step()
            step += 1
            for k in sums:
                sums[k] += out[k].detach()
            if progress and b % 10 == 0:
                bar.set_postfix(rec=f"{float(out['rec']):.3f}", d=f"{float(out['d_loss']):.2f}")
        row = {"epoch": epoch, "kl_beta": kl_weight_at(step - 1, anneal_steps, cfg.kl_weight)}  # last step's
        row.update({k: float(v) / steps_per_epoch for k, v in sums.items()})
        bad = [k for k, v in row.items() if not np.isfinite(v)]
        if bad:
            raise FloatingPointError(f"train_vaegan: {', '.join(bad)} became non-finite in epoch {epoch}; "
                                     "lower the learning rates (config.lr_g / lr_d)")
        rows.append(row)
        grid = _grid(model, x_fixed, z_fixed)
        grids.append(grid)
        if ckpt_path is not None:
            from PIL import Image

            gp = checkpoint_dir / "grids" / f"epoch_{epoch:03d}.png"
            Image.fromarray(grid).save(gp)
            grid_paths.append(gp)
            # tensors and plain data only (read back with weights_only=True)
            state = dict(config=cfg.to_dict(), run=run, model=model.state_dict(),
                         opt_eg=opt_eg.state_dict(), opt_d=opt_d.state_dict(),
                         g_data=g_data.get_state(), g_noise=g_noise.get_state().cpu(),
                         history=rows, grids=[torch.from_numpy(g) for g in grids],
                         epoch=epoch + 1, step=step)
            save_atomic(state, ckpt_path)
            (checkpoint_dir / "vaegan_config.json").write_text(json.dumps(cfg.to_dict(), indent=1))
        if on_epoch_end is not None:
            on_epoch_end(epoch, row)
    model.eval()
    return VAEGANResult(model=model, history=pd.DataFrame(rows), grids=grids, grid_paths=grid_paths,
                        wall_time=time.time() - t0, resumed_from_epoch=start_epoch, device=str(dev))
