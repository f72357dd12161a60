"""LE: learning with online self-explanations (Gu, Wu, Tresp 2020, Sec. 4, Algorithm 1).

Stage 1 (epochs < warmup): CE on one-hot labels. Stage 2: for each training batch, explain every
class of the very forward pass being trained on, build targets q from the explanations (Eq. 6),
and minimize CE(p, q) + lambda * CE(p, y). q is a label: no gradient flows through it.
"""
from __future__ import annotations

import torch
from torch.nn import functional as F

from ..explain import build_explainer, cosine_to_class
from .base import METHODS, Method, require, soft_cross_entropy


def le_targets(cos: torch.Tensor, y: torch.Tensor, alpha: float) -> torch.Tensor:
    """Eq. 6: q^y = alpha and, for k != y,
    q^k = (1 - alpha) (cos(e^k, e^y) + 1) / sum_{m != y} (cos(e^m, e^y) + 1).

    ``cos`` is [b, c] (cos(e^k, e^y) for every k). If every other class has cos = -1 the
    denominator is 0; the (1 - alpha) mass is then spread evenly instead of dividing by zero.
    """
    b, c = cos.shape
    gt = F.one_hot(y, c).bool()
    share = (cos + 1).masked_fill(gt, 0)
    total = share.sum(1, keepdim=True)
    share = torch.where(total > 0, share / total.clamp_min(1e-12), (~gt).float() / (c - 1))
    return ((1 - alpha) * share).masked_fill(gt, alpha).detach()


def permute_non_target(q: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """LE-Permut (Sec. 5.4.1): permute each row's non-ground-truth entries at random, keep q^y."""
    b, c = q.shape
    others = torch.argsort(F.one_hot(y, c), dim=1, stable=True)[:, : c - 1]  # non-gt columns, in order
    shuffle = torch.argsort(torch.rand(b, c - 1, device=q.device), dim=1)
    return q.scatter(1, others, q.gather(1, others.gather(1, shuffle)))


@METHODS.register("le")
class LE(Method):
    """LE (Algorithm 1) with explainer ``explainer`` ("auto": Grad-CAM on CNNs, Grad on the MLP, as
    in the paper), smoothing factor alpha = 0.9, CE weight lambda = 0.1 (Sec. 5), and ``warmup``
    epochs of plain CE first (the paper uses 10 of 50 for the MLP and does not state CIFAR's)."""

    def __init__(self, model, num_classes, *, explainer: str = "auto", alpha: float = 0.9, lam: float = 0.1, warmup: int = 10):
        super().__init__(model, num_classes)
        if explainer == "auto":
            explainer = "gradcam" if model.conv_layer is not None else "grad"
        require(0 < alpha <= 1, "method.alpha", "a number in (0, 1]", alpha)
        require(lam >= 0, "method.lam", "a number >= 0", lam)
        require(warmup >= 0, "method.warmup", "an integer >= 0", warmup)
        self.explainer_name = explainer
        self.explainer = build_explainer(explainer, model, key="method.explainer")
        self.alpha, self.lam, self.warmup = alpha, lam, warmup

    def targets(self, maps: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return le_targets(cosine_to_class(maps.float(), y), y, self.alpha)  # fp32 under bf16 autocast too

    def loss(self, x, y, epoch):
        if epoch < self.warmup:
            logits = self.model(x)
            return F.cross_entropy(logits, y), logits
        x = x.detach().requires_grad_(True)
        logits, _, conv = self.model.forward_features(x)
        q = self.targets(self.explainer.maps(self.model, x, logits, conv), y)
        return soft_cross_entropy(logits, q) + self.lam * F.cross_entropy(logits, y), logits


@METHODS.register("le_permut")
class LEPermut(LE):
    """LE-Permut (Sec. 5.4.1): LE's targets with the non-ground-truth entries permuted per sample,
    removing the class similarity while keeping the non-ground-truth mass."""

    def targets(self, maps, y):
        return permute_non_target(super().targets(maps, y), y)

