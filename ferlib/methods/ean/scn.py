"""SCN: Self-Cure Network (Wang et al., "Suppressing Uncertainties for Large-Scale Facial
Expression Recognition", CVPR 2020), the noisy-label baseline EAN compares against.

Three parts (paper Sec. 3; defaults from its public reference code, see
the shared reference facts):

1. **Self-attention importance weighting**: ``alpha_i = sigmoid(w^T h_i + b)`` scales the logits,
   ``logits_i = alpha_i * fc(h_i)``; cross-entropy on the scaled logits (the paper's
   "logit-weighted" CE) lets a low-importance sample contribute a flatter softmax.
2. **Rank regularisation**: sort the batch by alpha, split it at the high-importance share
   ``beta = 0.7`` (the top ``int(beta * B)`` samples), and ask the group means to differ by a
   margin: ``L_RR = max(0, margin - (mean_H - mean_L))`` with margin 0.15 (0.07 advised at
   batch 64 by the reference code).
3. **Relabelling**: from ``relabel_epoch`` on, a sample whose top softmax probability beats the
   probability of its (current) label by more than ``relabel_margin = 0.2`` gets the argmax
   class as its new label. The reference code applies this to every sample of the batch (the
   paper says: to the low-importance group); ``relabel_low_only=True`` follows the paper.
   Relabelling needs each sample's dataset index: wrap the training set in
   ``ferlib.train.IndexedDataset`` so the engine passes ``idx=``; :class:`SCNLoss` keeps the
   relabel table.

The chapter is notebooks/05_adjacency_threshold_tuning, "The noisy-label experiment".
Epochs are numbered from 1 (as in ``ferlib.train.fit`` and the reference code), so
``relabel_epoch=10`` relabels from the 10th epoch on.
"""
from __future__ import annotations

import warnings
from dataclasses import asdict, dataclass

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

__all__ = ["SCNConfig", "SCN", "build_scn", "rank_regularization", "relabel",
           "SCNLoss", "scn_loss_fn", "scn_predict", "RANK_MARGIN", "RANK_MARGIN_SMALL_BATCH",
           "rank_margin_for"]

#: the rank-regularisation margin (margin_1) of the reference code, and the smaller one it
#: advises for batches of 64 or fewer (:func:`rank_margin_for` picks between them)
RANK_MARGIN = 0.15
#: the smaller margin for batches of 64 or fewer
RANK_MARGIN_SMALL_BATCH = 0.07


def rank_margin_for(batch_size: int) -> float:
    """margin_1 for a training batch: :data:`RANK_MARGIN_SMALL_BATCH` up to 64 images (the
    reference code advises 0.07 at batch 64), else :data:`RANK_MARGIN`."""
    if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) \
            or batch_size < 1:
        raise ValueError(f"batch_size must be a positive int, got {batch_size!r}")
    return RANK_MARGIN_SMALL_BATCH if batch_size <= 64 else RANK_MARGIN


@dataclass
class SCNConfig:
    """SCN hyperparameters: ``beta`` high-importance share, ``rank_margin`` (margin_1),
    ``relabel_margin`` (margin_2), ``relabel_epoch`` (first epoch that relabels),
    ``dropout`` before the attention and classifier (reference 0.5 on ResNet-18; 0 here).
    Epochs are numbered from 1: ``relabel_epoch=10`` relabels in epochs 10, 11, ..."""

    beta: float = 0.7
    rank_margin: float = RANK_MARGIN
    relabel_margin: float = 0.2
    relabel_epoch: int = 10
    relabel_low_only: bool = False
    dropout: float = 0.0

    def __post_init__(self):
        if not 0.0 < self.beta < 1.0:
            raise ValueError(f"SCNConfig.beta must be in (0, 1), got {self.beta}")
        if self.rank_margin < 0:
            raise ValueError(f"SCNConfig.rank_margin must be >= 0, got {self.rank_margin}")
        if not 0.0 <= self.relabel_margin < 1.0:
            raise ValueError(f"SCNConfig.relabel_margin must be in [0, 1), got {self.relabel_margin}")
        if self.relabel_epoch < 1:
            raise ValueError(f"SCNConfig.relabel_epoch must be >= 1, got {self.relabel_epoch}")

    def to_dict(self) -> dict:
        return asdict(self)


class SCN(nn.Module):
    """A ferlib backbone (``forward_features`` -> (B, D)) with SCN's attention and classifier.

    ``forward(x)`` returns the weighted logits ``alpha * fc(h)`` (B, K) (argmax = argmax of
    ``fc(h)``, since alpha > 0); ``forward_train(x)`` returns ``(alpha (B,), logits (B, K))``.
    """

    def __init__(self, backbone: nn.Module, num_classes: int, config: SCNConfig | None = None):
        super().__init__()
        if not hasattr(backbone, "forward_features") or not hasattr(backbone, "feature_dim"):
            raise TypeError(f"backbone {type(backbone).__name__} needs forward_features(x) "
                            "and feature_dim")
        self.config = config or SCNConfig()
        self.backbone = backbone
        dim = backbone.feature_dim
        self.dropout = nn.Dropout(self.config.dropout)
        self.attention = nn.Sequential(nn.Linear(dim, 1), nn.Sigmoid())   # D -> 1
        self.fc = nn.Linear(dim, num_classes)
        self.num_classes = num_classes

    def forward_train(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.dropout(self.backbone.forward_features(x))         # (B, D)
        alpha = self.attention(h).squeeze(1)                        # (B,)
        return alpha, alpha[:, None] * self.fc(h)                   # (B,), (B, K)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_train(x)[1]


def build_scn(backbone: str | nn.Module = "smallcnn", num_classes: int = 7, *,
              in_channels: int = 1, width: int = 16, image_size: int = 48,
              config: SCNConfig | None = None, **config_kw) -> SCN:
    """SCN on a ferlib backbone given by name (``ferlib.models.build_backbone``) or module."""
    if config is not None and config_kw:
        raise TypeError("pass either config= or SCNConfig keyword arguments, not both")
    config = config or SCNConfig(**config_kw)
    if isinstance(backbone, str):
        from ferlib.models.backbones import build_backbone
        backbone = build_backbone(backbone, num_classes, in_channels=in_channels, width=width,
                                  image_size=image_size)
    return SCN(backbone, num_classes, config)


def rank_regularization(alpha: torch.Tensor, beta: float = 0.7,
                        margin: float = RANK_MARGIN) -> torch.Tensor:
    """``L_RR = max(0, margin - (mean(alpha_H) - mean(alpha_L)))`` (SCN Eq. 3).

    The high group is the ``k = int(beta * B)`` largest weights (clipped to 1..B-1 so both
    groups are non-empty); a batch of one has no ranking and gives 0.
    """
    if alpha.ndim != 1:
        raise ValueError(f"alpha must be 1-D (B,), got shape {tuple(alpha.shape)}")
    b = alpha.shape[0]
    if b < 2:
        return alpha.sum() * 0.0
    k = min(max(int(beta * b), 1), b - 1)
    ordered = torch.sort(alpha, descending=True).values              # (B,)
    diff = ordered[:k].mean() - ordered[k:].mean()
    return F.relu(margin - diff)


def relabel(logits: torch.Tensor, labels: torch.Tensor, margin: float = 0.2,
            candidates: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """SCN's relabelling rule: ``p_max - p[label] > margin`` -> new label ``argmax p``.

    Returns ``(new_labels (B,), changed (B,) bool)``. ``candidates`` (bool (B,)) restricts the
    rule to some samples (the low-importance group in the paper).
    """
    p = torch.softmax(logits.detach().float(), dim=1)               # (B, K)
    p_max, pred = p.max(dim=1)                                      # (B,), (B,)
    p_label = p.gather(1, labels[:, None]).squeeze(1)               # (B,)
    changed = (p_max - p_label) > margin                           # (B,)
    if candidates is not None:
        changed = changed & candidates
    return torch.where(changed, pred, labels), changed


class SCNLoss:
    """SCN's training loss for ``ferlib.train.fit``: ``CE(alpha * fc(h), y') + L_RR`` where
    ``y'`` is the current (possibly relabelled) label. Callable as
    ``loss_fn(model, x, y, epoch, idx=None) -> (loss, logits)``.

    ``table`` maps dataset index -> current label (-1: keep the given label). Relabelling
    starts at ``config.relabel_epoch`` and needs ``idx`` (``ferlib.train.IndexedDataset``);
    without it SCN trains without relabelling and warns once. ``relabel_log`` counts changes
    per epoch.
    """

    def __init__(self, config: SCNConfig | None = None, num_samples: int | None = None):
        self.config = config
        self.table = torch.full((num_samples or 0,), -1, dtype=torch.long)
        self.relabel_log: dict[int, int] = {}
        self._warned = False

    def state_dict(self) -> dict:
        """For the engine's checkpoint/resume: the relabel table and log."""
        return {"table": self.table.clone(), "relabel_log": dict(self.relabel_log)}

    def load_state_dict(self, state: dict) -> None:
        self.table = state["table"].clone().long()
        self.relabel_log = {int(k): int(v) for k, v in state["relabel_log"].items()}

    @property
    def num_relabelled(self) -> int:
        return int((self.table >= 0).sum())

    def _grow(self, n: int) -> None:
        if n > len(self.table):
            extra = torch.full((n - len(self.table),), -1, dtype=torch.long)
            self.table = torch.cat([self.table, extra])

    def current_labels(self, y: torch.Tensor, idx: torch.Tensor | None) -> torch.Tensor:
        if idx is None:
            return y
        idx = idx.long().cpu()
        self._grow(int(idx.max()) + 1)
        t = self.table[idx].to(y.device)                            # (B,)
        return torch.where(t >= 0, t, y)

    def labels_for(self, given: np.ndarray) -> np.ndarray:
        """The labels SCN trains with now, for a dataset whose given labels are ``given``."""
        out = np.asarray(given).copy()
        t = self.table[: len(out)].numpy()
        out[: len(t)][t >= 0] = t[t >= 0]
        return out

    def __call__(self, model, x, y, epoch=None, idx=None, **kw):
        net = getattr(model, "module", model)
        cfg = self.config or net.config
        y_cur = self.current_labels(y, idx)                         # (B,)
        if not hasattr(net, "forward_train"):
            raise TypeError(f"SCNLoss needs an SCN model, got {type(net).__name__}")
        alpha, logits = net.forward_train(x)                        # (B,), (B, K)
        loss = F.cross_entropy(logits, y_cur) + rank_regularization(alpha, cfg.beta,
                                                                    cfg.rank_margin)
        if epoch is not None and epoch >= cfg.relabel_epoch:
            if idx is None:
                if not self._warned:
                    warnings.warn("SCN relabelling needs sample indices: wrap the training set "
                                  "in ferlib.train.IndexedDataset; training without relabelling",
                                  stacklevel=2)
                    self._warned = True
            else:
                cand = None
                if cfg.relabel_low_only and len(alpha) > 1:
                    k = min(max(int(cfg.beta * len(alpha)), 1), len(alpha) - 1)
                    order = torch.argsort(alpha.detach(), descending=True)
                    cand = torch.zeros_like(y_cur, dtype=torch.bool)
                    cand[order[k:]] = True
                new, changed = relabel(logits, y_cur, cfg.relabel_margin, cand)
                if changed.any():
                    sel = idx.long().cpu()[changed.cpu()]
                    self.table[sel] = new[changed].cpu()
                    self.relabel_log[int(epoch)] = (self.relabel_log.get(int(epoch), 0)
                                                    + int(changed.sum()))
        return loss, logits


def scn_loss_fn(model, x, y, epoch=None, **kw):
    """Stateless SCN loss (weighted CE + rank regularisation, no relabelling). For relabelling
    pass an :class:`SCNLoss` instance, which keeps the table."""
    net = getattr(model, "module", model)
    alpha, logits = net.forward_train(x)
    return F.cross_entropy(logits, y) + rank_regularization(alpha, net.config.beta,
                                                            net.config.rank_margin), logits


def scn_predict(model, x):
    """Evaluation logits (the weighted logits; same argmax as the unweighted ones)."""
    return model(x)
