"""The plain CNNs of TAKD / the LE paper's Table 1: CNN-6, CNN-8 (students) and CNN-10 (teacher).

Each conv is 3x3, padding 1, with bias, + BN + ReLU; every group ends in a 2x2 max-pool. The LE
paper says the CNNs "end with a fully connected layer"; TAKD's CNN-8 and CNN-10 have a hidden FC
layer before it (FC64, FC128), and we follow TAKD so the parameter counts are theirs
(82,778 / 327,962 / 2,487,850 on CIFAR10).
"""
from __future__ import annotations

from torch import nn

from .layers import Net, ReLU, dropout
from .registry import MODELS

LAYOUTS = {
    "cnn6": ([[16, 16], [32, 32], [64, 64]], []),
    "cnn8": ([[16, 16], [32, 32], [64, 64], [128, 128]], [64]),
    "cnn10": ([[32, 32], [64, 64], [128, 128], [256, 256, 256, 256]], [128]),
}


class PlainCNN(Net):
    def __init__(self, groups, hidden, in_channels: int, image_size: int, num_classes: int, dropout_p: float):
        super().__init__()
        blocks, cin, size = [], in_channels, image_size
        for widths in groups:
            layers = []
            for w in widths:
                layers += [nn.Conv2d(cin, w, 3, padding=1), nn.BatchNorm2d(w), ReLU()]
                cin = w
            blocks.append(nn.Sequential(*layers))
            size //= 2
        if size < 1:
            raise ValueError(f"{len(groups)} max-pools need an image of at least {2 ** len(groups)} pixels")
        self.blocks = nn.ModuleList(blocks)
        self.pool = nn.MaxPool2d(2)
        self.drops = nn.ModuleList(dropout(dropout_p) for _ in groups)
        head, width = [nn.Flatten()], cin * size * size
        for h in hidden:
            head += [nn.Linear(width, h), ReLU()]
            width = h
        head.append(nn.Linear(width, num_classes))
        self.head = nn.Sequential(*head)

    @property
    def conv_layer(self):
        return self.blocks[-1][-1]

    @property
    def stage_channels(self):
        return [block[-2].num_features for block in self.blocks]

    def forward_features(self, x):
        h, feats, conv = x, [], None
        for block, drop in zip(self.blocks, self.drops):
            conv = block(h)
            h = self.pool(conv)
            feats.append(h)
            h = drop(h)
        return self.head(h), feats, conv


def _register(name: str) -> None:
    groups, hidden = LAYOUTS[name]

    @MODELS.register(name)
    def build(in_channels: int, image_size: int, num_classes: int, *, dropout: float = 0.0) -> PlainCNN:
        return PlainCNN(groups, hidden, in_channels, image_size, num_classes, dropout)

    build.__doc__ = f"{name}: conv groups {groups}, hidden FC {hidden} (TAKD's plain CNNs)."


for _name in LAYOUTS:
    _register(_name)
