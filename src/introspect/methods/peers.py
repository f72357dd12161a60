"""Learning from a peer trained at the same time: Deep Mutual Learning (LE paper Sec. 5.2, Table 4).

BAN, the other peer method of Table 4, learns from a finished first generation and lives with
the KD family (distill.py).
"""
from __future__ import annotations

import copy

from torch import nn
from torch.nn import functional as F

from .base import METHODS, Method, require
from .distill import kl_tau


def fresh_copy(model: nn.Module) -> nn.Module:
    """The same architecture with new random weights (every layer's ``reset_parameters``)."""
    twin = copy.deepcopy(model)
    for m in twin.modules():
        if hasattr(m, "reset_parameters"):
            m.reset_parameters()
    return twin


@METHODS.register("dml")
class DML(Method):
    """Deep Mutual Learning (Zhang et al. 2018, Eq. 1-2), two networks of the same architecture
    trained together in one run from different random initializations:
    L_1 = CE(p_1, y) + lambda KL(p_2 || p_1),  L_2 = CE(p_2, y) + lambda KL(p_1 || p_2),
    each peer's distribution detached in the other's loss, lambda = 0.1 (the LE paper's setting;
    Zhang et al. use 1). One optimizer step on L_1 + L_2 updates both, since neither loss reaches
    the other network. The run's model is network 1; network 2 (``peer``) is evaluated and
    reported too (metrics ``peer_*``)."""

    def __init__(self, model, num_classes, *, lam: float = 0.1):
        super().__init__(model, num_classes)
        require(lam >= 0, "method.lam", "a number >= 0", lam)
        self.lam = lam
        self.peer = fresh_copy(model)

    def networks(self):
        return {"": self.model, "peer_": self.peer}

    def mutual_loss(self, a1, a2, y):
        """L_1 + L_2 of two networks' logits."""
        l1 = F.cross_entropy(a1, y) + self.lam * kl_tau(a2.detach(), a1, 1.0)
        l2 = F.cross_entropy(a2, y) + self.lam * kl_tau(a1.detach(), a2, 1.0)
        return l1 + l2

    def loss(self, x, y, epoch):
        a1 = self.model(x)
        return self.mutual_loss(a1, self.peer(x), y), a1
