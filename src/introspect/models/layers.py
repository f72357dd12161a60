"""Building blocks shared by every model family.

``ReLU`` is an ``nn.ReLU`` that can switch on Guided Backpropagation (Springenberg et al. 2014)
for one backward pass without a second forward: when a model is prepared for it, each ReLU puts
a hook on its output that, only while :func:`guided_backward` is active, keeps the positive part
of the incoming gradient. The ordinary ReLU backward then masks by the positive input, giving
relu(grad_out) * (input > 0). The loss backward of the same forward sees the plain gradient.
"""
from __future__ import annotations

import contextlib
import threading

import torch
from torch import nn
from torch.nn import functional as F

_state = threading.local()


def _guided_hook(grad: torch.Tensor) -> torch.Tensor | None:
    return grad.clamp(min=0) if getattr(_state, "guided", False) else None


@contextlib.contextmanager
def guided_backward():
    """Backward passes run inside this block use the guided ReLU rule."""
    prev = getattr(_state, "guided", False)
    _state.guided = True
    try:
        yield
    finally:
        _state.guided = prev


class ReLU(nn.ReLU):
    guided = False  # set per instance by enable_guided()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.relu(x)
        if self.guided and y.requires_grad:
            y.register_hook(_guided_hook)
        return y


def enable_guided(model: nn.Module, on: bool = True) -> None:
    for m in model.modules():
        if isinstance(m, ReLU):
            m.guided = on


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def dropout(p: float) -> nn.Module:
    return nn.Dropout(p) if p > 0 else nn.Identity()


class Net(nn.Module):
    """Base of every model: ``forward_features`` gives logits, stage outputs and the last conv map.

    ``conv_layer`` is the module whose output is the last convolutional feature map (None for
    an MLP); ``gap_fc`` is the Linear layer when that map feeds global-average-pooling then this
    layer directly, which lets Grad-CAM use its closed form.
    """

    @property
    def conv_layer(self) -> nn.Module | None:
        return None

    @property
    def gap_fc(self) -> nn.Linear | None:
        return None

    @property
    def stage_channels(self) -> list[int] | None:
        """Channels of each convolutional stage output (what Hint, AT and FSP match); None for an MLP."""
        return None

    def forward_features(self, x: torch.Tensor):
        """Return (logits, [stage outputs], last conv feature map or None)."""
        raise NotImplementedError

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_features(x)[0]
