"""Shared test helpers. pytest puts this folder on sys.path, so tests import them with
``from conftest import TinyBackbone``."""
import torch
from torch import nn


class TinyBackbone(nn.Module):
    """Stand-in for a ferlib backbone (same interface: forward_features, feature_dim, fc):
    flatten -> linear -> relu."""

    def __init__(self, in_dim=16, dim=8, num_classes=3):
        super().__init__()
        self.body = nn.Sequential(nn.Flatten(), nn.Linear(in_dim, dim), nn.ReLU())
        self.feature_dim = dim
        self.fc = nn.Linear(dim, num_classes)

    def forward_features(self, x):
        return self.body(x)

    def forward(self, x):
        return self.fc(self.forward_features(x))


class ConstantVAE(nn.Module):
    """Stand-in for a VAE-GAN (the plumbing of latent augmentation, not a generator):
    mu(x) = the first 2 pixels, log-variance 0; G(z) is a constant 0.5 image of 1 x 4 x 4."""

    latent_dim = 2

    def __init__(self):
        super().__init__()
        self.p = nn.Parameter(torch.zeros(()))

    def encode(self, x):
        f = x.flatten(1)[:, :2]
        return f, torch.zeros_like(f)

    def decode(self, z):
        return torch.full((len(z), 1, 4, 4), 0.5) + 0 * z.sum()
