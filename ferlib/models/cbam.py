"""CBAM: Convolutional Block Attention Module (Woo, Park, Lee & Kweon, ECCV 2018).

Explained in the book chapter notebooks/06_uncertainty_and_imbalance ("The paper's idea, in equations"), where the CUCN
model (Fan et al.) places it inside every ResNet-18 BasicBlock. The module follows the
authors' reference code (Jongchan/attention-module, ``cbam.py``):

* **channel gate** (paper Eq. 2):
  ``M_c(F) = sigmoid(MLP(AvgPool(F)) + MLP(MaxPool(F)))``, one MLP ``C -> C/r -> C`` (ReLU in
  between) shared by the average- and max-pooled (B, C) vectors; ``F' = M_c(F) * F``.
* **spatial gate** (paper Eq. 3):
  ``M_s(F') = sigmoid(BN(conv7x7([MaxPool_c(F'); AvgPool_c(F')])))``, max and mean over the
  channels stacked to a (B, 2, H, W) map, one 7x7 convolution (no bias) to one channel,
  BatchNorm; ``F'' = M_s(F') * F'``.  (The paper's Eq. 3 has no BN; the reference code has it.)

Initialisation of the spatial BN, as in the reference ResNet (``SpatialGate.spatial.bn.weight``
set to 0): with the BN scale gamma = 0 the BN output is its shift beta (0 at start) for every
pixel, so the spatial gate starts as the constant ``sigmoid(beta) = sigmoid(0) = 0.5``: no
spatial preference, the gated branch is uniformly halved, and the gate learns its spatial
shape as gamma moves away from 0 (gamma still receives a gradient, the conv weights get one
through gamma once it is non-zero). ``CBAM(..., zero_init_spatial=False)`` gives the usual
gamma = 1 start instead. Because torchvision's ``ResNet.__init__`` sets every BatchNorm weight
to 1, :func:`ferlib.models.backbones.build_backbone` calls :meth:`CBAM.reset_parameters`
after building the network.

The hidden width of the channel MLP is ``max(channels // reduction, min(channels, min_hidden))``:
the paper's reduction 16 for ResNet widths (64 -> 4, 512 -> 32), with a floor so that narrow
layers of the small CNN (8 channels: 8 // 16 = 0) still have a working bottleneck.

After each forward the gates are kept (detached) for plots and tests:
``last_channel_att`` (B, C, 1, 1) and ``last_spatial_att`` (B, 1, H, W), both in [0, 1].
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["CBAM", "ChannelGate", "SpatialGate"]


class ChannelGate(nn.Module):
    """Channel attention ``M_c`` (Woo et al. 2018, Eq. 2): returns the gate (B, C, 1, 1)."""

    def __init__(self, channels: int, reduction: int = 16, min_hidden: int = 4):
        super().__init__()
        hidden = max(channels // reduction, min(channels, min_hidden))
        self.hidden = hidden
        self.mlp = nn.Sequential(nn.Linear(channels, hidden), nn.ReLU(inplace=True),
                                 nn.Linear(hidden, channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        avg = self.mlp(x.mean(dim=(2, 3)))                          # (B, C)
        # max-pool with indices: its backward scatters to one argmax (on a tie, to one of them:
        # another valid subgradient); amax's compares and counts ties over the whole map (same
        # values, slower on a CPU)
        mx = self.mlp(F.adaptive_max_pool2d(x, 1).flatten(1))       # (B, C)
        return torch.sigmoid(avg + mx)[:, :, None, None]  # (B, C, 1, 1)


class SpatialGate(nn.Module):
    """Spatial attention ``M_s`` (Woo et al. 2018, Eq. 3, with the reference code's BN):
    returns the gate (B, 1, H, W)."""

    def __init__(self, kernel_size: int = 7, zero_init: bool = True):
        super().__init__()
        if kernel_size < 1 or kernel_size % 2 == 0:
            raise ValueError(f"CBAM kernel_size must be a positive odd integer, got {kernel_size}")
        self.zero_init = zero_init
        self.conv = nn.Conv2d(2, 1, kernel_size, padding=kernel_size // 2, bias=False)
        # eps / momentum as in the reference BasicConv
        self.bn = nn.BatchNorm2d(1, eps=1e-5, momentum=0.01)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        self.bn.reset_parameters()
        if self.zero_init:
            nn.init.zeros_(self.bn.weight)  # gate starts at sigmoid(beta) = 0.5 everywhere

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pooled = torch.cat([x.max(dim=1, keepdim=True).values, x.mean(dim=1, keepdim=True)],
                           dim=1)  # (B, 2, H, W)
        # channels-last: oneDNN's 2-in, 1-out 7x7 convolution (and its backward) is faster in
        # NHWC on a CPU; with the max-pools above, a CBAM network's training step takes 0.81 of
        # the textbook form's (tests/benchmarks/results/cbam_cpu.md). The gate is returned in
        # the standard layout
        pooled = pooled.contiguous(memory_format=torch.channels_last)
        return torch.sigmoid(self.bn(self.conv(pooled))).contiguous()  # (B, 1, H, W)


class CBAM(nn.Module):
    """Channel gate then spatial gate (Woo et al., ECCV 2018, Eqs. 1-3); output has the input's
    shape. See notebooks/06_uncertainty_and_imbalance, "The paper's idea, in equations", and the module docstring.

    Args:
        channels: C of the (B, C, H, W) input.
        reduction: r of the channel MLP C -> C/r -> C (16 in the paper).
        kernel_size: side of the spatial convolution (7 in the paper).
        min_hidden: floor of the MLP hidden width (see the module docstring).
        zero_init_spatial: start the spatial BN scale at 0 (reference code) -> gate 0.5.
    """

    def __init__(self, channels: int, reduction: int = 16, kernel_size: int = 7,
                 min_hidden: int = 4, zero_init_spatial: bool = True):
        super().__init__()
        if int(channels) < 1:
            raise ValueError(f"CBAM channels must be >= 1, got {channels}")
        if int(reduction) < 1:
            raise ValueError(f"CBAM reduction must be >= 1, got {reduction}")
        self.channels = int(channels)
        self.channel_gate = ChannelGate(self.channels, int(reduction), int(min_hidden))
        self.spatial_gate = SpatialGate(kernel_size, zero_init=zero_init_spatial)
        self.last_channel_att: torch.Tensor | None = None  # (B, C, 1, 1) after forward
        self.last_spatial_att: torch.Tensor | None = None  # (B, 1, H, W) after forward

    def reset_parameters(self) -> None:
        """Re-apply the reference initialisation of the spatial BN (after a network-wide init)."""
        self.spatial_gate.reset_parameters()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.ndim != 4 or x.shape[1] != self.channels:
            raise ValueError(f"CBAM({self.channels}) expects (B, {self.channels}, H, W), "
                             f"got {tuple(x.shape)}")
        ca = self.channel_gate(x)       # (B, C, 1, 1)
        x = x * ca                      # (B, C, H, W)
        sa = self.spatial_gate(x)       # (B, 1, H, W)
        self.last_channel_att = ca.detach()
        self.last_spatial_att = sa.detach()
        return x * sa                   # (B, C, H, W)

    def extra_repr(self) -> str:
        return f"channels={self.channels}, hidden={self.channel_gate.hidden}"
