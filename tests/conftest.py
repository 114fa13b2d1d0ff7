"""Shared test helpers. pytest puts this folder on sys.path, so tests import them with
``from conftest import TinyBackbone``."""
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
