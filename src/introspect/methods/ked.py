"""KED: knowledge explaining distillation (Chowdhury et al. 2023, "Improving Knowledge Distillation
with Teacher's Explanation"), for the ResNet family.

Both teacher and student are superfeature-explaining networks (:mod:`introspect.models.branches`):
M branches over groups of the trunk's features, prediction softmax(sum_m log p_m). The explaining
teacher is trained with CE on that prediction (``ked_teacher``); the KED student, the explaining
form of the configured ResNet with its parameter count matched to the plain one, learns from the
teacher's prediction and from each branch's distribution (its explanation over superfeature m).
The superfeature construction by Hessian + Louvain and the chimeric sets serve MLP / tabular data
and are not used for CNNs, where the groups are the channel groups of the 1x1 split.
"""
from __future__ import annotations

import torch
from torch.nn import functional as F

from ..models.branches import ExplainingResNet, explaining
from ..registry import ConfigError
from .base import METHODS, Method, require
from .distill import FromTeacher, kl_tau


@METHODS.register("ked_teacher")
class KEDTeacher(Method):
    """The explaining teacher: the explaining form (M branches) of the configured ResNet, trained
    with CE(y, softmax(sum_m log p_m))."""

    def __init__(self, model, num_classes, *, branches: int = 4):
        require(branches >= 2, "method.branches", "an integer >= 2", branches)
        super().__init__(explaining(model, branches), num_classes)

    def loss(self, x, y, epoch):
        logits = self.model(x)
        return F.cross_entropy(logits, y), logits


def ked_loss(s_logits, s_branches, t_logits, t_branches, y, lam: float, mu: float, T: float, tau: float):
    """KED's loss (Chowdhury et al. 2023):
    (1 - lam) CE(y, p_S) + lam (1 - mu) T^2 KL(p_T^T || p_S^T) + sum_m (lam mu tau^2 / M) KL(p_{T,m}^tau || p_{S,m}^tau),
    p = softmax of the combined logits, p_m = softmax(z_m), x^T = softmax(. / T). Branch logits are [M, b, c]."""
    M = s_branches.shape[0]
    branch_kl = kl_tau(t_branches, s_branches, tau, per_sample=True).mean(1).sum()  # sum over m of the batch mean
    return ((1 - lam) * F.cross_entropy(s_logits, y) + lam * (1 - mu) * T ** 2 * kl_tau(t_logits, s_logits, T)
            + lam * mu * tau ** 2 / M * branch_kl)


@METHODS.register("ked")
class KED(FromTeacher):
    """The KED student: the explaining form of the configured ResNet (its parameter count matched to
    the plain net's), taught by a ``ked_teacher`` run with the same number of branches; loss
    :func:`ked_loss` with T = tau = 10, lambda = 0.7, mu = 0.7 (the authors' values)."""

    teacher_method = "ked_teacher"

    def __init__(self, model, num_classes, *, teacher: str = "", branches: int = 4, lam: float = 0.7, mu: float = 0.7,
                 T: float = 10.0, tau: float = 10.0):
        require(branches >= 2, "method.branches", "an integer >= 2", branches)
        super().__init__(explaining(model, branches), num_classes, teacher=teacher)
        require(0 <= lam <= 1, "method.lam", "a number in [0, 1]", lam)
        require(0 <= mu <= 1, "method.mu", "a number in [0, 1]", mu)
        require(T > 0, "method.T", "a number > 0", T)
        require(tau > 0, "method.tau", "a number > 0", tau)
        self.branches, self.lam, self.mu, self.T, self.tau = branches, lam, mu, T, tau

    def use_teacher(self, net):
        if not isinstance(net, ExplainingResNet) or net.branches != self.branches:
            got = f"{net.branches} branches" if isinstance(net, ExplainingResNet) else f"a plain {type(net).__name__}"
            raise ConfigError(f"method.teacher: KED learns from a ked_teacher run with {self.branches} branches, got {got}")
        super().use_teacher(net)

    def loss(self, x, y, epoch):
        with torch.no_grad():
            t_logits, t_branches, _ = self.teacher.forward_branches(x)
        logits, branches, _ = self.model.forward_branches(x)
        return ked_loss(logits, branches, t_logits.float(), t_branches.float(), y, self.lam, self.mu, self.T, self.tau), logits
