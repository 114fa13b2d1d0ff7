"""DAN, "Distract Your Attention" (Wen et al. 2023), the second classifier of Li et al.'s
Table I; chapter notebooks/04_latent_covariance_augmentation, "Table I: none, balanced resampling, latent
augmentation".

Three parts, following the authors' reference code (yaoing/DAN, see reference facts "DAN"):

* feature clustering network (FCN): a ferlib backbone's ``forward_map`` (ResNet layer4 map,
  (B, C, h, w)) plus the **affinity loss**: centre loss with one centre per class, divided by the
  total variance of the centres, ``L_af = sum_i ||f_i - c_{y_i}||^2 / (B * sum_j Var_k(c_kj))``
  with ``f_i`` the globally pooled map (Wen et al., Eq. 2);
* multi-head cross attention (MAN): ``num_heads`` heads, each a spatial unit (1x1 conv C -> C/2,
  then 3x3 + 1x3 + 3x1 convs C/2 -> C, each with BN, summed, ReLU, summed over channels to one
  (B, 1, h, w) map that multiplies the input map) followed by a channel unit (GAP, linear
  C -> C/16, BN, ReLU, linear -> C, sigmoid, multiplies the pooled vector), giving (B, C);
* attention fusion (AFN): the heads (B, H, C) are log-softmaxed across heads, summed, and fed to
  ``fc`` followed by ``BatchNorm1d`` on the logits; the **partition loss**
  ``L_pt = log(1 + H / sigma^2)`` with ``sigma^2`` the variance across heads averaged over samples
  and channels (Eq. 6) pushes the heads to attend to different regions.

Total loss (reference training script): ``CE + affinity_weight * L_af + partition_weight * L_pt``.
The class centres are parameters of :class:`DAN` (``model.affinity.centers``) so any optimiser
over ``model.parameters()`` (``ferlib.train.fit``'s default) trains them. The reference trains
with SGD 0.1, momentum 0.9, wd 1e-4, step 10 x0.1, 40 epochs, batch 256.

Channel sizes scale with the backbone: C = ``backbone.map_channels`` (512 for ResNet-18,
smaller for the small CNN); the reductions are C/2 and max(1, C/16).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import torch
import torch.nn as nn
import torch.nn.functional as F

__all__ = ["DANConfig", "DAN", "DANOutput", "SpatialAttention", "ChannelAttention",
           "CrossAttentionHead", "AffinityLoss", "partition_loss", "build_dan", "dan_loss_fn",
           "DANLoss"]


@dataclass(frozen=True)
class DANConfig:
    """DAN hyperparameters (Wen et al.; 4 heads as in the reference code)."""

    num_classes: int = 7
    backbone: str = "resnet18"
    in_channels: int = 1
    width: int = 16
    image_size: int = 48
    num_heads: int = 4
    spatial_reduction: int = 2
    channel_reduction: int = 16
    affinity_weight: float = 1.0
    partition_weight: float = 1.0

    def __post_init__(self):
        if self.num_heads < 1:
            raise ValueError(f"DANConfig.num_heads must be >= 1, got {self.num_heads}")
        if self.num_classes < 2:
            raise ValueError(f"DANConfig.num_classes must be >= 2, got {self.num_classes}")


class DANOutput(NamedTuple):
    logits: torch.Tensor       # (B, K)
    feature_map: torch.Tensor  # (B, C, h, w) backbone map (input of the affinity loss)
    heads: torch.Tensor        # (B, H, C) log-softmaxed across heads when H > 1


class SpatialAttention(nn.Module):
    """Spatial unit of a cross-attention head: (B, C, h, w) -> x * a, a (B, 1, h, w)."""

    def __init__(self, channels: int, reduction: int = 2):
        super().__init__()
        mid = max(1, channels // reduction)
        self.conv1x1 = nn.Sequential(nn.Conv2d(channels, mid, 1), nn.BatchNorm2d(mid))
        self.conv_3x3 = nn.Sequential(nn.Conv2d(mid, channels, 3, padding=1), nn.BatchNorm2d(channels))
        self.conv_1x3 = nn.Sequential(nn.Conv2d(mid, channels, (1, 3), padding=(0, 1)), nn.BatchNorm2d(channels))
        self.conv_3x1 = nn.Sequential(nn.Conv2d(mid, channels, (3, 1), padding=(1, 0)), nn.BatchNorm2d(channels))
        self.last_map: torch.Tensor | None = None

    def forward(self, x):
        y = self.conv1x1(x)                                                          # (B, C/2, h, w)
        y = F.relu(self.conv_3x3(y) + self.conv_1x3(y) + self.conv_3x1(y))          # (B, C, h, w)
        y = y.sum(dim=1, keepdim=True)                                               # (B, 1, h, w)
        self.last_map = y.detach()
        return x * y                                                                 # (B, C, h, w)


class ChannelAttention(nn.Module):
    """Channel unit of a cross-attention head: (B, C, h, w) -> GAP (B, C) * sigmoid(MLP)."""

    def __init__(self, channels: int, reduction: int = 16):
        super().__init__()
        mid = max(1, channels // reduction)
        self.attention = nn.Sequential(nn.Linear(channels, mid), nn.BatchNorm1d(mid), nn.ReLU(inplace=True),
                                       nn.Linear(mid, channels), nn.Sigmoid())

    def forward(self, sa):
        v = sa.mean(dim=(2, 3))            # (B, C)
        return v * self.attention(v)       # (B, C)


class CrossAttentionHead(nn.Module):
    """Spatial then channel attention (Wen et al., Fig. 4), initialised as the reference code."""

    def __init__(self, channels: int, spatial_reduction: int = 2, channel_reduction: int = 16):
        super().__init__()
        self.sa = SpatialAttention(channels, spatial_reduction)
        self.ca = ChannelAttention(channels, channel_reduction)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out")
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
            elif isinstance(m, (nn.BatchNorm2d, nn.BatchNorm1d)):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
            elif isinstance(m, nn.Linear):
                nn.init.normal_(m.weight, std=0.001)
                nn.init.zeros_(m.bias)

    def forward(self, x):
        return self.ca(self.sa(x))  # (B, C)


class AffinityLoss(nn.Module):
    """Affinity loss (Wen et al., Eq. 2): centre loss over the centres' total variance.

    ``forward(feature_map (B, C, h, w) or features (B, C), labels (B,))``; centres (K, C) are
    learnable, initialised from N(0, 1) as in the reference code."""

    def __init__(self, num_classes: int, feat_dim: int):
        super().__init__()
        self.centers = nn.Parameter(torch.randn(num_classes, feat_dim))

    def forward(self, feats, labels):
        if feats.ndim == 4:
            feats = feats.mean(dim=(2, 3))                                # (B, C)
        if feats.shape[1] != self.centers.shape[1]:
            raise ValueError(f"AffinityLoss: features have {feats.shape[1]} channels, centres {self.centers.shape[1]}")
        c = self.centers[labels].to(feats.dtype)                          # (B, C)
        dist = (feats - c).pow(2).sum(dim=1)                              # (B,)
        return dist.sum() / feats.shape[0] / self.centers.var(dim=0).sum().to(feats.dtype)


def partition_loss(heads: torch.Tensor) -> torch.Tensor:
    """Partition loss (Wen et al., Eq. 6): ``log(1 + H / mean variance across heads)`` for
    heads (B, H, C); 0 for a single head."""
    if heads.ndim != 3:
        raise ValueError(f"partition_loss expects heads (B, H, C), got shape {tuple(heads.shape)}")
    H = heads.shape[1]
    if H < 2:
        return heads.new_zeros(())
    var = heads.var(dim=1).mean()                                         # scalar
    return torch.log1p(H / var)


class DAN(nn.Module):
    """DAN on any ferlib backbone (needs ``forward_map`` and ``map_channels``).

    ``forward(x)`` -> logits (B, K) (for ``evaluate``); ``forward_all(x)`` -> :class:`DANOutput`
    for the losses; ``forward_features(x)`` -> fused (B, C) vector before ``fc``.
    """

    def __init__(self, backbone: nn.Module, num_classes: int, num_heads: int = 4,
                 spatial_reduction: int = 2, channel_reduction: int = 16):
        super().__init__()
        if not hasattr(backbone, "forward_map") or not hasattr(backbone, "map_channels"):
            raise TypeError("DAN needs a backbone with forward_map() and map_channels "
                            "(ferlib.models.build_backbone)")
        if num_heads < 1:
            raise ValueError(f"num_heads must be >= 1, got {num_heads}")
        C = int(backbone.map_channels)
        self.backbone = backbone
        self.num_heads = num_heads
        self.heads = nn.ModuleList(CrossAttentionHead(C, spatial_reduction, channel_reduction)
                                   for _ in range(num_heads))
        self.fc = nn.Linear(C, num_classes)
        self.bn = nn.BatchNorm1d(num_classes)
        self.affinity = AffinityLoss(num_classes, C)
        self.feature_dim = C
        self.map_channels = C
        self.num_classes = num_classes

    def _fuse(self, fmap):
        heads = torch.stack([h(fmap) for h in self.heads], dim=1)        # (B, H, C)
        if self.num_heads > 1:
            heads = F.log_softmax(heads, dim=1)                           # across heads
        return heads

    def forward_all(self, x) -> DANOutput:
        fmap = self.backbone.forward_map(x)                               # (B, C, h, w)
        heads = self._fuse(fmap)                                          # (B, H, C)
        logits = self.bn(self.fc(heads.sum(dim=1)))                       # (B, K)
        return DANOutput(logits, fmap, heads)

    def forward_map(self, x):
        return self.backbone.forward_map(x)

    def forward_features(self, x):
        return self._fuse(self.backbone.forward_map(x)).sum(dim=1)        # (B, C)

    def forward(self, x):
        return self.forward_all(x).logits

    def attention_maps(self, x) -> torch.Tensor:
        """Spatial attention map of each head, (B, H, h, w) (for the chapter's figures)."""
        self.forward_all(x)
        return torch.cat([h.sa.last_map for h in self.heads], dim=1)


def build_dan(num_classes: int = 7, backbone: str = "resnet18", *, in_channels: int = 1,
              width: int = 16, image_size: int = 48, num_heads: int = 4, **kw) -> DAN:
    """DAN on ``ferlib.models.backbones.build_backbone(backbone, ...)``."""
    from ferlib.models.backbones import build_backbone

    cfg = DANConfig(num_classes=num_classes, backbone=backbone, in_channels=in_channels, width=width,
                    image_size=image_size, num_heads=num_heads)
    net = build_backbone(cfg.backbone, cfg.num_classes, in_channels=cfg.in_channels, width=cfg.width,
                         image_size=cfg.image_size)
    model = DAN(net, cfg.num_classes, cfg.num_heads, **kw)
    model.config = cfg
    return model


class DANLoss:
    """``loss_fn(model, x, y, epoch, **kw) -> (loss, logits)`` for ``ferlib.train.fit``:
    ``CE + affinity_weight * L_af + partition_weight * L_pt``. Keeps the last parts in
    ``self.last`` (a dict of detached scalar tensors) for inspection."""

    def __init__(self, affinity_weight: float = 1.0, partition_weight: float = 1.0):
        self.affinity_weight = float(affinity_weight)
        self.partition_weight = float(partition_weight)
        self.last: dict[str, float] = {}
        self.__name__ = "dan_loss"

    def __call__(self, model, x, y, epoch, **kw):
        dan = model.module if hasattr(model, "module") else model
        if not isinstance(dan, DAN):
            raise TypeError(f"dan_loss_fn needs a DAN model, got {type(dan).__name__}")
        out = dan.forward_all(x)
        ce = F.cross_entropy(out.logits, y)
        af = dan.affinity(out.feature_map.float(), y)
        pt = partition_loss(out.heads.float())
        self.last = {"ce": ce.detach(), "affinity": af.detach(), "partition": pt.detach()}
        return ce + self.affinity_weight * af + self.partition_weight * pt, out.logits


#: the default DAN loss (weights 1 and 1, as the reference training script)
dan_loss_fn = DANLoss()
