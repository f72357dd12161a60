"""MLP1024 of Pereyra et al. 2017 / the LE paper's Table 3: 784-1024-1024-10 with ReLU.

The input size is taken from the dataset (784 on MNIST). Dropout, when asked for, follows each
hidden layer.
"""
from __future__ import annotations

from torch import nn

from .layers import Net, ReLU, dropout
from .registry import MODELS


class MLP(Net):
    def __init__(self, in_features: int, hidden: list[int], num_classes: int, dropout_p: float):
        super().__init__()
        layers, width = [], in_features
        for h in hidden:
            layers.append(nn.Sequential(nn.Linear(width, h), ReLU()))
            width = h
        self.hidden = nn.ModuleList(layers)
        self.drops = nn.ModuleList(dropout(dropout_p) for _ in hidden)
        self.fc = nn.Linear(width, num_classes)

    def forward_features(self, x):
        h, feats = x.flatten(1), []
        for layer, drop in zip(self.hidden, self.drops):
            h = layer(h)
            feats.append(h)
            h = drop(h)
        return self.fc(h), feats, None


@MODELS.register("mlp1024")
def mlp1024(in_channels: int, image_size: int, num_classes: int, *, dropout: float = 0.0) -> MLP:
    """mlp1024: two hidden layers of 1024 units with ReLU."""
    return MLP(in_channels * image_size * image_size, [1024, 1024], num_classes, dropout)
