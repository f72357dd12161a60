"""Plain training and the output regularizers LE is compared with in Tables 2 and 3.

Dropout (the third regularizer) is a model option (``model.dropout``) trained with ``ce``.
"""
from __future__ import annotations

import torch
from torch.nn import functional as F

from .base import METHODS, Method, require, soft_cross_entropy


@METHODS.register("ce")
class CrossEntropy(Method):
    """Cross-entropy on one-hot labels: CE(p, y)."""

    def loss(self, x, y, epoch):
        logits = self.model(x)
        return F.cross_entropy(logits, y), logits


def smoothed_targets(y: torch.Tensor, num_classes: int, alpha: float) -> torch.Tensor:
    """alpha on the ground truth, (1 - alpha) / (c - 1) on every other class."""
    q = torch.full((len(y), num_classes), (1 - alpha) / (num_classes - 1), device=y.device)
    return q.scatter_(1, y[:, None], alpha)


@METHODS.register("ls")
class LabelSmoothing(Method):
    """Label Smoothing (Szegedy et al. 2016) as the LE paper states it (Sec. 2): CE(p, q) with
    q = alpha on the ground truth and (1 - alpha)/(c - 1) elsewhere; swept alpha in [0.6, 0.9]."""

    def __init__(self, model, num_classes, *, alpha: float = 0.9):
        super().__init__(model, num_classes)
        require(0 < alpha <= 1, "method.alpha", "a number in (0, 1]", alpha)
        self.alpha = alpha

    def loss(self, x, y, epoch):
        logits = self.model(x)
        return soft_cross_entropy(logits, smoothed_targets(y, self.num_classes, self.alpha)), logits


@METHODS.register("cp")
class ConfidencePenalty(Method):
    """Confidence Penalty (Pereyra et al. 2017, Eq. 2): CE(p, y) - beta * H(p), H(p) = -sum p log p."""

    def __init__(self, model, num_classes, *, beta: float = 0.5):
        super().__init__(model, num_classes)
        require(beta >= 0, "method.beta", "a number >= 0", beta)
        self.beta = beta

    def loss(self, x, y, epoch):
        logits = self.model(x)
        logp = F.log_softmax(logits, dim=1)
        entropy = -(logp.exp() * logp).sum(1).mean()
        return F.cross_entropy(logits, y) - self.beta * entropy, logits
