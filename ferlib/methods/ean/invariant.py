"""EAN's invariant feature generator (Du et al., Sec. 2.2), small and adversarial.

The paper wants backbone features of one person to agree across pose, occlusion and
illumination, so that the graph of Eq. 3-4 links faces by expression, not by nuisance. It gives
no code; this module is our reading, documented in notebooks/05_adjacency_threshold_tuning,
"The invariant feature generator":

* **Generator** ``G``: a residual MLP on the pooled backbone feature, ``G(h) = h + g(h)``,
  with the last layer of ``g`` initialised to zero, so training starts from the plain backbone.
* **Discriminator** ``D``: an MLP that predicts the nuisance conditions of a feature (one
  binary output per condition: profile pose, occluded, dimly lit). It is trained through a
  **gradient-reversal layer** (Ganin & Lempitsky 2015): in one backward pass ``D`` learns to
  tell the conditions apart while ``G`` and the backbone receive the negated gradient and learn
  to hide them. One optimiser, no alternating steps, so it plugs into ``ferlib.train.fit``.
* **Pair consistency**: on same-identity frontal/profile pairs (SynthFACS, the only data set
  here with identity labels; ``ferlib.data.synthfacs.make_identity_pairs``) the cosine distance
  ``1 - cos(G(h_a), G(h_b))`` is minimised.

:class:`InvariantBackbone` wraps a ferlib backbone and is itself a backbone (``forward``,
``forward_features``, ``feature_dim``, ``fc``), so ``EAN(InvariantBackbone(...))`` composes.
:class:`InvariantLoss` adds ``lambda_adv * BCE(D(GRL(G(h))), nuisance) + lambda_pair *
pair_loss`` to any base loss (plain cross-entropy by default, or ``ean_loss_fn``).
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

__all__ = ["GradientReversal", "grad_reverse", "InvariantConfig", "InvariantFeatureGenerator",
           "NuisanceDiscriminator", "InvariantBackbone", "build_invariant", "nuisance_targets",
           "NUISANCES", "pair_consistency", "InvariantLoss"]

NUISANCES = ("profile", "occluded", "dim")


class GradientReversal(torch.autograd.Function):
    """Identity forward; multiplies the gradient by ``-lambd`` backward."""

    @staticmethod
    def forward(ctx, x, lambd):
        ctx.lambd = float(lambd)
        return x.view_as(x)

    @staticmethod
    def backward(ctx, grad):
        return -ctx.lambd * grad, None


def grad_reverse(x: torch.Tensor, lambd: float = 1.0) -> torch.Tensor:
    """Gradient-reversal layer: ``y = x``, ``dL/dx = -lambd * dL/dy``."""
    return GradientReversal.apply(x, lambd)


@dataclass
class InvariantConfig:
    """``hidden``: width of the generator/discriminator MLPs (default: the feature size);
    ``lambda_adv``: weight of the adversarial nuisance loss; ``lambda_grl``: gradient-reversal
    factor; ``lambda_pair``: weight of the same-identity pair consistency; ``pair_batch``:
    pairs drawn per training step; ``nuisances``: the discriminator's binary outputs."""

    hidden: int | None = None
    lambda_adv: float = 0.1
    lambda_grl: float = 1.0
    lambda_pair: float = 1.0
    pair_batch: int = 32
    nuisances: tuple[str, ...] = NUISANCES

    def __post_init__(self):
        for name in ("lambda_adv", "lambda_grl", "lambda_pair"):
            if getattr(self, name) < 0:
                raise ValueError(f"InvariantConfig.{name} must be >= 0, got {getattr(self, name)}")
        if self.pair_batch < 1:
            raise ValueError(f"InvariantConfig.pair_batch must be >= 1, got {self.pair_batch}")
        self.nuisances = tuple(self.nuisances)
        if not self.nuisances:
            raise ValueError("InvariantConfig.nuisances must name at least one condition")

    def to_dict(self) -> dict:
        return asdict(self)


class InvariantFeatureGenerator(nn.Module):
    """``G(h) = h + W2 relu(W1 h)`` with ``W2 = 0`` at start (identity map). (B, D) -> (B, D)."""

    def __init__(self, dim: int, hidden: int | None = None):
        super().__init__()
        hidden = hidden or dim
        self.net = nn.Sequential(nn.Linear(dim, hidden), nn.ReLU(), nn.Linear(hidden, dim))
        nn.init.zeros_(self.net[2].weight)
        nn.init.zeros_(self.net[2].bias)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return h + self.net(h)                                       # (B, D)


class NuisanceDiscriminator(nn.Module):
    """MLP (B, D) -> (B, M) logits, one per nuisance condition (sigmoid / BCE)."""

    def __init__(self, dim: int, num_nuisances: int, hidden: int | None = None):
        super().__init__()
        hidden = hidden or dim
        self.net = nn.Sequential(nn.Linear(dim, hidden), nn.ReLU(), nn.Linear(hidden, num_nuisances))

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return self.net(h)                                           # (B, M)


class InvariantBackbone(nn.Module):
    """A ferlib backbone followed by the invariant generator; a backbone itself.

    ``forward_features(x) = G(backbone.forward_features(x))`` (B, D); ``forward(x) =
    fc(forward_features(x))`` (B, K) with a fresh ``fc``; ``discriminator`` holds D. The last
    features are kept in ``last_features`` for :class:`InvariantLoss`. ``enabled=False`` skips G
    (the ablation's "without" arm keeps the same parameters count and code path).
    """

    def __init__(self, backbone: nn.Module, num_classes: int, config: InvariantConfig | None = None,
                 enabled: bool = True):
        super().__init__()
        if not hasattr(backbone, "forward_features") or not hasattr(backbone, "feature_dim"):
            raise TypeError(f"backbone {type(backbone).__name__} needs forward_features(x) "
                            "and feature_dim")
        self.config = config or InvariantConfig()
        self.backbone = backbone
        self.feature_dim = dim = backbone.feature_dim
        self.generator = InvariantFeatureGenerator(dim, self.config.hidden)
        self.discriminator = NuisanceDiscriminator(dim, len(self.config.nuisances), self.config.hidden)
        self.fc = nn.Linear(dim, num_classes)
        self.enabled = enabled
        self.last_features: torch.Tensor | None = None

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        h = self.backbone.forward_features(x)                        # (B, D)
        f = self.generator(h) if self.enabled else h                 # (B, D)
        self.last_features = f
        return f

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.forward_features(x))                     # (B, K)


def build_invariant(backbone: str | nn.Module = "smallcnn", num_classes: int = 7, *,
                    in_channels: int = 1, width: int = 16, image_size: int = 48,
                    enabled: bool = True, config: InvariantConfig | None = None,
                    **config_kw) -> InvariantBackbone:
    """An :class:`InvariantBackbone` on a ferlib backbone given by name or module."""
    if config is not None and config_kw:
        raise TypeError("pass either config= or InvariantConfig keyword arguments, not both")
    config = config or InvariantConfig(**config_kw)
    if isinstance(backbone, str):
        from ferlib.models.backbones import build_backbone
        backbone = build_backbone(backbone, num_classes, in_channels=in_channels, width=width,
                                  image_size=image_size)
    return InvariantBackbone(backbone, num_classes, config, enabled)


def nuisance_targets(dataset, yaw_threshold: float = 17.5, dim_threshold: float = 0.85,
                     nuisances: tuple[str, ...] = NUISANCES) -> np.ndarray:
    """Binary nuisance labels (N, M) float32 from SynthFACS extras.

    ``profile``: ``|yaw| > yaw_threshold`` (``extras["pose"][:, 1]``, degrees); ``occluded``:
    ``extras["occluded"]``; ``dim``: ``extras["illumination"] < dim_threshold`` (a brightness
    factor, 1 = normal). A data set without these extras is an error naming the missing key.
    """
    extras = getattr(dataset, "extras", {}) or {}
    cols = []
    for name in nuisances:
        key = {"profile": "pose", "occluded": "occluded", "dim": "illumination"}.get(name)
        if key is None:
            raise ValueError(f"unknown nuisance {name!r}: choose from {NUISANCES}")
        if key not in extras:
            raise ValueError(f"{getattr(dataset, 'name', 'dataset')}: extras[{key!r}] is missing; "
                             f"nuisance {name!r} needs it (SynthFACS provides it)")
        v = np.asarray(extras[key])
        if name == "profile":
            cols.append(np.abs(v[:, 1] if v.ndim == 2 else v) > yaw_threshold)
        elif name == "occluded":
            cols.append(v.astype(bool))
        else:
            cols.append(v < dim_threshold)
    return np.stack(cols, axis=1).astype(np.float32)                 # (N, M)


def pair_consistency(fa: torch.Tensor, fb: torch.Tensor) -> torch.Tensor:
    """Mean cosine distance ``1 - cos(f_a, f_b)`` of same-identity pairs (0 when they agree)."""
    if fa.shape != fb.shape or fa.ndim != 2:
        raise ValueError(f"pair features must both be (P, D), got {tuple(fa.shape)} and {tuple(fb.shape)}")
    return (1.0 - F.cosine_similarity(fa.float(), fb.float(), dim=1, eps=1e-8)).mean()


def _find_invariant(model: nn.Module) -> InvariantBackbone:
    for m in model.modules():
        if isinstance(m, InvariantBackbone):
            return m
    raise TypeError(f"{type(model).__name__} holds no InvariantBackbone")


class InvariantLoss:
    """``base_loss + lambda_adv * BCE(D(GRL(f)), nuisance[idx]) + lambda_pair * pair_loss``.

    ``nuisance``: (N, M) targets of the training set (:func:`nuisance_targets`), indexed by the
    sample indices the engine passes (``ferlib.train.IndexedDataset``); without ``idx`` the
    adversarial term is skipped. ``pairs``: ``(xa, xb)`` image tensors (P, C, H, W) of
    same-identity frontal/profile pairs, or None; ``pair_batch`` of them are drawn per step with
    a generator seeded from ``seed``. ``base_loss``: ``(model, x, y, epoch, **kw) -> (loss,
    logits)``, default cross-entropy on ``model(x)``. ``last`` keeps the parts for logging.
    """

    def __init__(self, nuisance=None, pairs=None, base_loss=None, config: InvariantConfig | None = None,
                 seed: int = 0):
        self.nuisance = None if nuisance is None else torch.as_tensor(np.asarray(nuisance, np.float32))
        if pairs is not None:
            xa, xb = pairs
            if len(xa) != len(xb) or len(xa) == 0:
                raise ValueError(f"pairs must be two non-empty tensors of equal length, got "
                                 f"{len(xa)} and {len(xb)}")
        self.pairs = pairs
        self.base_loss = base_loss
        self.config = config
        self.gen = torch.Generator().manual_seed(seed)
        self.last: dict = {}

    def __call__(self, model, x, y, epoch=None, idx=None, **kw):
        inv = _find_invariant(model)
        cfg = self.config or inv.config
        if self.base_loss is None:
            logits = model(x)                                        # (B, K)
            loss = F.cross_entropy(logits, y)
        else:
            loss, logits = self.base_loss(model, x, y, epoch, **kw)
        feats = inv.last_features                                    # (B, D)
        adv = pair = loss.new_zeros(())
        if self.nuisance is not None and idx is not None and cfg.lambda_adv > 0:
            target = self.nuisance[idx.long().cpu()].to(feats.device)  # (B, M)
            d_logits = inv.discriminator(grad_reverse(feats, cfg.lambda_grl))  # (B, M)
            adv = F.binary_cross_entropy_with_logits(d_logits.float(), target)
        if self.pairs is not None and cfg.lambda_pair > 0 and inv.enabled:
            xa, xb = self.pairs
            take = torch.randint(len(xa), (min(cfg.pair_batch, len(xa)),), generator=self.gen)
            both = torch.cat([xa[take], xb[take]]).to(x.device, x.dtype)   # (2P, C, H, W)
            f = inv.forward_features(both)                           # (2P, D)
            pair = pair_consistency(*f.chunk(2))
            inv.last_features = feats
        self.last = {"adv": float(adv.detach()), "pair": float(pair.detach())}
        return loss + cfg.lambda_adv * adv + cfg.lambda_pair * pair, logits

    def state_dict(self) -> dict:
        return {"gen": self.gen.get_state()}

    def load_state_dict(self, state: dict) -> None:
        self.gen.set_state(state["gen"])
