"""KED's superfeature-explaining CNN (Chowdhury et al. 2023, "Improving Knowledge Distillation with
Teacher's Explanation"), built from a plain ResNet of TAKD's family.

The plain net's stem and stages 1-2 are a shared trunk; a 1x1 conv + BN + ReLU widens the trunk's
output to M*w channels, split into M groups (the superfeatures); each group goes through its own
stage-3 branch of width w (as many BasicBlocks as the plain stage 3, the first with stride 2),
global average pooling and a linear head giving branch logits z_m. The prediction is
softmax(sum_m log softmax(z_m)), the normalized product of the branch distributions: the model's
logits are sum_m log softmax(z_m). w is chosen so the whole net has the parameter count nearest
to the plain net's (``match_width``), so a KED student is compared with a plain student of the
same size.
"""
from __future__ import annotations

import copy

import torch
from torch import nn
from torch.nn import functional as F

from ..registry import ConfigError
from .layers import Net, ReLU, count_parameters
from .resnet import BasicBlock, ResNet, run_stages


class ExplainingResNet(Net):
    def __init__(self, plain: ResNet, branches: int, width: int):
        super().__init__()
        self.branches, self.width = branches, width
        self.stem = plain.stem
        self.trunk = nn.ModuleList(plain.stages[:-1])
        self.drops = nn.ModuleList(plain.drops[:-1])
        cin = plain.stage_channels[-2]
        blocks = len(plain.stages[-1])
        self.split = nn.Sequential(nn.Conv2d(cin, branches * width, 1, bias=False), nn.BatchNorm2d(branches * width), ReLU())
        self.branch = nn.ModuleList(
            nn.Sequential(*(BasicBlock(width, width, 2 if i == 0 else 1) for i in range(blocks))) for _ in range(branches))
        self.heads = nn.ModuleList(nn.Linear(width, plain.fc.out_features) for _ in range(branches))
        self.joined = nn.Identity()  # its output is the last conv feature map: the branches' maps side by side

    @property
    def conv_layer(self) -> nn.Module:
        return self.joined

    @property
    def stage_channels(self):
        return [*(stage[-1].conv2.out_channels for stage in self.trunk), self.branches * self.width]

    def forward_branches(self, x: torch.Tensor):
        """(logits = sum_m log softmax(z_m) [b, c], branch logits z [M, b, c], [stage outputs])."""
        h, feats = run_stages(self.stem(x), self.trunk, self.drops)
        groups = self.split(h).chunk(self.branches, dim=1)
        # the heads read the joined map, so that it is the conv feature map the logits come from (Grad-CAM)
        joined = self.joined(torch.cat([branch(g) for branch, g in zip(self.branch, groups)], dim=1))
        z = torch.stack([head(m.mean((2, 3))) for head, m in zip(self.heads, joined.chunk(self.branches, dim=1))])
        feats.append(joined)
        return F.log_softmax(z, dim=2).sum(0), z, feats

    def forward_features(self, x):
        logits, _, feats = self.forward_branches(x)
        return logits, feats, feats[-1]


def match_width(plain: ResNet, branches: int) -> int:
    """The branch width w whose explaining net has the parameter count nearest to ``plain``'s."""
    target = count_parameters(plain)

    def size(w: int) -> int:
        return count_parameters(ExplainingResNet(copy.deepcopy(plain), branches, w))

    lo, hi = 1, plain.stage_channels[-1]  # size(w) grows with w; M branches of the plain width overshoot
    while lo < hi:  # the largest w with size(w) <= target
        mid = (lo + hi + 1) // 2
        lo, hi = (mid, hi) if size(mid) <= target else (lo, mid - 1)
    return min((lo, lo + 1), key=lambda w: abs(size(w) - target))


def explaining(plain: nn.Module, branches: int = 4) -> ExplainingResNet:
    """The explaining form of a plain ResNet, parameter-matched (it takes over the plain trunk's modules)."""
    if not isinstance(plain, ResNet):
        raise ConfigError(f"model: KED's explaining network is built from a ResNet, not {type(plain).__name__}")
    return ExplainingResNet(plain, branches, match_width(plain, branches))
