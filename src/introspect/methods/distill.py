"""Learning from a frozen teacher: Hinton's KD and the ablations of the LE paper's Sec. 3 (Table 1),
and Born-Again Networks (Table 4). Notation of METHODS.md: student logits a, p = softmax(a),
teacher probabilities q, temperature tau, x^tau = softmax(logits / tau),
KL_tau(q || p) = sum_k q_k^tau (log q_k^tau - log p_k^tau).

The teacher is a finished run folder (``method.teacher``; the workflow fills it in and adds the
edge). It is loaded by ``setup`` in eval mode with no gradient and held with ``Method.hold``:
outside the method's parameters and state (so it is never optimized, switched to train mode or
checkpointed twice) yet moved with the method; its outputs are computed under ``torch.no_grad``.
"""
from __future__ import annotations

from pathlib import Path

import torch
from torch.nn import functional as F

from ..registry import ConfigError
from .base import METHODS, Method, require
from .runs import load_method


def kl_tau(teacher_logits: torch.Tensor, student_logits: torch.Tensor, tau: float, per_sample: bool = False) -> torch.Tensor:
    """KL_tau(q || p) over the last dimension, averaged over the batch (``per_sample``: one per sample)."""
    q = F.softmax(teacher_logits / tau, dim=-1)
    kl = (q * (F.log_softmax(teacher_logits / tau, dim=-1) - F.log_softmax(student_logits / tau, dim=-1))).sum(-1)
    return kl if per_sample else kl.mean()


def permute_non_argmax(logits: torch.Tensor) -> torch.Tensor:
    """DKPP's target: each row's entries other than its argmax permuted at random (the argmax stays)."""
    b, c = logits.shape
    top = logits.argmax(1)
    others = torch.argsort(F.one_hot(top, c), dim=1, stable=True)[:, : c - 1]
    shuffle = torch.argsort(torch.rand(b, c - 1, device=logits.device), dim=1)
    return logits.scatter(1, others, logits.gather(1, others.gather(1, shuffle)))


class FromTeacher(Method):
    """Base of every method that learns from a frozen teacher run (``teacher``: its folder)."""

    needs_teacher = True
    teacher_method = "ce"  # what the teacher run was trained with (a row's teacher: {method: ...})

    def __init__(self, model, num_classes, *, teacher: str = ""):
        super().__init__(model, num_classes)
        require(bool(teacher), "method.teacher", "the folder of a finished teacher run", teacher)
        self.teacher_path = Path(teacher)

    def setup(self, device) -> None:
        self.learn_from(self.load_teacher(device))

    def learn_from(self, stage: Method) -> None:
        """Take what this method needs from the teacher run's trained method (most: its model)."""
        self.use_teacher(stage.model)

    def load_teacher(self, device) -> Method:
        """The teacher run's trained method (its model, and what else it learned), frozen, on ``device``."""
        if not (self.teacher_path / "metrics.json").exists():
            raise ConfigError(f"method.teacher: {self.teacher_path} is not a finished run (no metrics.json)")
        return load_method(self.teacher_path, device)[1].requires_grad_(False)

    def use_teacher(self, net: torch.nn.Module) -> None:
        """Teach with ``net``, frozen: eval mode, no gradient (``setup`` passes the loaded run)."""
        self.hold("teacher", net)

    @property
    def teacher(self) -> torch.nn.Module:
        return self.held("teacher")

    def teacher_logits(self, x: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            return self.teacher(x).float()  # fp32 targets under bf16 autocast too

    def teacher_features(self, x: torch.Tensor):
        """The teacher's (logits, [stage outputs], last conv map), without gradient, in fp32."""
        with torch.no_grad():
            logits, feats, conv = self.teacher.forward_features(x)
            return logits.float(), [f.float() for f in feats], None if conv is None else conv.float()


@METHODS.register("kd")
class KD(FromTeacher):
    """Knowledge distillation (Hinton et al. 2015) as the LE paper uses it (Sec. 5.3):
    loss = tau^2 KL_tau(q || p) + lambda CE(p, y), tau = 4, lambda = 0.1."""

    def __init__(self, model, num_classes, *, teacher: str = "", tau: float = 4.0, lam: float = 0.1):
        super().__init__(model, num_classes, teacher=teacher)
        require(tau > 0, "method.tau", "a number > 0", tau)
        require(lam >= 0, "method.lam", "a number >= 0", lam)
        self.tau, self.lam = tau, lam

    def target_logits(self, x: torch.Tensor) -> torch.Tensor:
        return self.teacher_logits(x)

    def kd_loss(self, teacher_logits: torch.Tensor, logits: torch.Tensor, y: torch.Tensor, per_sample: bool = False) -> torch.Tensor:
        loss = self.tau ** 2 * kl_tau(teacher_logits, logits, self.tau, per_sample)
        if not self.lam:
            return loss
        return loss + self.lam * F.cross_entropy(logits, y, reduction="none" if per_sample else "mean")

    def loss(self, x, y, epoch):
        t = self.target_logits(x)
        logits = self.model(x)
        return self.kd_loss(t, logits, y), logits


@METHODS.register("dkpp")
class DKPP(KD):
    """DKPP (LE paper, Sec. 3): KD towards the teacher's distribution with its non-argmax entries
    permuted per sample, so it keeps "dark knowledge" mass but loses class similarity. BAN keeps the
    teacher's argmax (some public code keeps the ground truth instead); we keep the argmax."""

    def target_logits(self, x):
        return permute_non_argmax(self.teacher_logits(x))


@METHODS.register("ban")
class BAN(KD):
    """Born-Again Networks (Furlanello et al. 2018), LE paper Sec. 5.2: a second network identical
    to a CE-trained first one learns from its outputs only: tau^2 KL_tau(q || p); tau swept."""

    def __init__(self, model, num_classes, *, teacher: str = "", tau: float = 1.0, lam: float = 0.0):
        super().__init__(model, num_classes, teacher=teacher, tau=tau, lam=lam)


@METHODS.register("ban_l")
class BANL(KD):
    """BAN+L (LE paper Sec. 5.2): BAN plus lambda CE(p, y), lambda = 0.1."""

    def __init__(self, model, num_classes, *, teacher: str = "", tau: float = 1.0, lam: float = 0.1):
        super().__init__(model, num_classes, teacher=teacher, tau=tau, lam=lam)


def weighted_ce(logits: torch.Tensor, y: torch.Tensor, confidence: torch.Tensor) -> torch.Tensor:
    """sum_i w_i CE(p_i, y_i) with w_i = confidence_i / sum_j confidence_j over the batch."""
    return (confidence / confidence.sum() * F.cross_entropy(logits, y, reduction="none")).sum()


@METHODS.register("cwtm")
class CWTM(FromTeacher):
    """Confidence-weighted by teacher max (BAN, Furlanello et al. 2018; LE paper Sec. 3):
    loss = sum_i w_i CE(p_i, y_i), w_i = q_i^max / sum_j q_j^max over the batch."""

    def confidences(self, x: torch.Tensor) -> torch.Tensor:
        return F.softmax(self.teacher_logits(x), dim=1).amax(1)

    def loss(self, x, y, epoch):
        conf = self.confidences(x)
        logits = self.model(x)
        return weighted_ce(logits, y, conf), logits


@METHODS.register("cwtm_permut")
class CWTMPermut(CWTM):
    """CWTM-Permut (LE paper Sec. 3): the teacher's weights permuted among the samples of the batch."""

    def confidences(self, x):
        conf = super().confidences(x)
        return conf[torch.randperm(len(conf), device=conf.device)]


@METHODS.register("cwtm_random")
class CWTMRandom(Method):
    """CWTM-Random (LE paper Sec. 3): CWTM with q_i^max replaced by a draw from U[beta, 1),
    beta = 0.5 (so it could be a maximal probability). No teacher is used."""

    def __init__(self, model, num_classes, *, beta: float = 0.5):
        super().__init__(model, num_classes)
        require(0 <= beta < 1, "method.beta", "a number in [0, 1)", beta)
        self.beta = beta

    def loss(self, x, y, epoch):
        conf = self.beta + (1 - self.beta) * torch.rand(len(x), device=x.device)
        logits = self.model(x)
        return weighted_ce(logits, y, conf), logits
