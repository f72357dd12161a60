"""ResNet8/14/20/26 of TAKD (Mirzadeh et al. 2019), the family of the LE paper's Tables 2 and 4-6.

conv3x3->16 + BN + ReLU; three stages of BasicBlocks, widths 16/32/64, strides 1/2/2, n blocks
per stage (n = 1/2/3/4); a 1x1 conv + BN shortcut where the shape changes; GAP; FC 64->c.
"""
from __future__ import annotations

import torch
from torch import nn

from .layers import Net, ReLU, dropout
from .registry import MODELS


def conv3x3(cin: int, cout: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, 3, stride=stride, padding=1, bias=False)


class BasicBlock(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int):
        super().__init__()
        self.conv1 = conv3x3(cin, cout, stride)
        self.bn1 = nn.BatchNorm2d(cout)
        self.relu1 = ReLU()
        self.conv2 = conv3x3(cout, cout)
        self.bn2 = nn.BatchNorm2d(cout)
        self.shortcut = nn.Identity()
        if stride != 1 or cin != cout:
            self.shortcut = nn.Sequential(nn.Conv2d(cin, cout, 1, stride=stride, bias=False), nn.BatchNorm2d(cout))
        self.relu2 = ReLU()  # its own module so hooks (Captum, guided BP) see each ReLU once

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.relu1(self.bn1(self.conv1(x)))
        return self.relu2(self.bn2(self.conv2(out)) + self.shortcut(x))


def run_stages(h: torch.Tensor, stages, drops) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """Each stage in turn, its output kept, dropout between stages: (last hidden map, [stage outputs])."""
    feats = []
    for stage, drop in zip(stages, drops):
        h = stage(h)
        feats.append(h)
        h = drop(h)
    return h, feats


class ResNet(Net):
    def __init__(self, blocks: int, in_channels: int, num_classes: int, dropout_p: float = 0.0):
        super().__init__()
        self.stem = nn.Sequential(conv3x3(in_channels, 16), nn.BatchNorm2d(16), ReLU())
        stages, cin = [], 16
        for width, stride in ((16, 1), (32, 2), (64, 2)):
            layers = [BasicBlock(cin if i == 0 else width, width, stride if i == 0 else 1) for i in range(blocks)]
            stages.append(nn.Sequential(*layers))
            cin = width
        self.stages = nn.ModuleList(stages)
        self.drops = nn.ModuleList(dropout(dropout_p) for _ in stages)
        self.fc = nn.Linear(64, num_classes)

    @property
    def conv_layer(self):
        return self.stages[-1][-1].relu2

    @property
    def gap_fc(self):
        return self.fc

    @property
    def stage_channels(self):
        return [stage[-1].conv2.out_channels for stage in self.stages]

    def forward_features(self, x):
        h, feats = run_stages(self.stem(x), self.stages, self.drops)
        return self.fc(h.mean((2, 3))), feats, feats[-1]


def _register(name: str, blocks: int) -> None:
    @MODELS.register(name)
    def build(in_channels: int, image_size: int, num_classes: int, *, dropout: float = 0.0) -> ResNet:
        return ResNet(blocks, in_channels, num_classes, dropout)

    build.__doc__ = f"{name}: {blocks} BasicBlock(s) per stage (TAKD's ResNet family)."


for _name, _blocks in (("resnet8", 1), ("resnet14", 2), ("resnet20", 3), ("resnet26", 4)):
    _register(_name, _blocks)
