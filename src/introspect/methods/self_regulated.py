"""Self-regulated learning for data-efficient distillation (Mishra and Sundaram 2021). There is no
public code: this is a reconstruction from the abstract and the authors' follow-up, stated in
METHODS.md.

Self-regulation: sample i takes part in a step's loss only if it is misclassified or its
confidence margin p_top1 - p_top2 is below a threshold theta_e,

    m_i = [argmax p_i != y_i  or  p_i^(1) - p_i^(2) < theta_e],   loss = sum_i m_i l_i / max(1, sum_i m_i),

with theta_e fixed (``schedule: fixed``, ``theta``) or growing, theta_e = 1 - exp(-alpha e) at
0-based epoch e (``schedule: growing``, the follow-up's alpha = 0.01). A self-regulated run counts,
per training sample, how many steps it took part in: n_i. The teacher's counts are its samples'
significance and are saved with its checkpoint. Students (KD's per-sample loss
l_i = tau^2 KL_tau(q_i || p_i) + lambda CE(p_i, y_i)):

- ``srl_significance``: l_i weighted by w_i = n_i / mean_j n_j (the teacher's counts, mean 1 over
  the training split); samples the teacher never used (n_i = 0) drop out: loss = mean_i w_i l_i;
- ``srl_regulated``: the student regulates itself like the teacher: sum_i m_i l_i / max(1, sum_i m_i);
- ``srl_hybrid``: both: sum_i m_i w_i l_i / max(1, sum_i m_i).

Every self-regulated run reports ``samples_used``: the share (%) of training samples that carried
a nonzero weight in at least one step. Zero-weight samples still pass through the forward pass
here; the saving the paper counts is in samples, not in our step time.
"""
from __future__ import annotations

import math
from typing import Literal

import torch
from torch.nn import functional as F

from ..registry import ConfigError
from .base import METHODS, Method, require
from .distill import KD


def margin(logits: torch.Tensor) -> torch.Tensor:
    """p^(1) - p^(2): the gap between the two largest class probabilities."""
    top = F.softmax(logits, dim=1).topk(2, dim=1).values
    return top[:, 0] - top[:, 1]


def participates(logits: torch.Tensor, y: torch.Tensor, theta: float) -> torch.Tensor:
    """m_i: misclassified, or margin below theta (bool [b])."""
    return (logits.argmax(1) != y) | (margin(logits) < theta)


def regulated_mean(losses: torch.Tensor, mask: torch.Tensor, weights: torch.Tensor | None = None) -> torch.Tensor:
    """sum_i m_i (w_i) l_i / max(1, sum_i m_i)."""
    m = mask.to(losses.dtype)
    w = m if weights is None else m * weights
    return (w * losses).sum() / m.sum().clamp_min(1)


class Counted:
    """Mixin of a Method that counts, per training sample, the steps in which it carried a nonzero
    loss weight. The counts are a persistent buffer ``counts`` (so they follow ``to(device)`` and are
    part of every checkpoint, key ``counts``); empty until ``bind_data`` or a loaded checkpoint sizes
    them. Checkpoints written before the buffer (counts under ``_extra_state``) still load."""

    uses_index = True

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.register_buffer("counts", torch.zeros(0, dtype=torch.long))

    def bind_data(self, train_size):
        self.counts = torch.zeros(train_size, dtype=torch.long, device=self.counts.device)

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        legacy = state_dict.pop(prefix + "_extra_state", None)
        if legacy is not None:
            state_dict[prefix + "counts"] = legacy["counts"]
        saved = state_dict.get(prefix + "counts")
        if saved is not None and saved.shape != self.counts.shape:  # not bound yet, or another split size
            self.counts = torch.zeros_like(saved, device=self.counts.device)
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    def count(self, index: torch.Tensor, used: torch.Tensor) -> None:
        self.counts.index_add_(0, index, used.long())

    def run_metrics(self):
        used = 100.0 * (self.counts > 0).double().mean().item() if self.counts.numel() else math.nan
        return super().run_metrics() | {"samples_used": used}


class Regulation:
    """The self-regulation rule's options: fixed theta or theta_e = 1 - exp(-alpha e)."""

    def __init__(self, schedule: str, theta: float, alpha: float):
        require(0 <= theta <= 1, "method.theta", "a number in [0, 1]", theta)
        require(alpha >= 0, "method.alpha", "a number >= 0", alpha)
        self.schedule, self.theta, self.alpha = schedule, theta, alpha

    def threshold(self, epoch: int) -> float:
        return self.theta if self.schedule == "fixed" else 1.0 - math.exp(-self.alpha * epoch)


@METHODS.register("srl_teacher")
class SelfRegulatedTeacher(Counted, Method):
    """The self-regulated teacher: CE over the participating samples only,
    sum_i m_i CE_i / max(1, sum_i m_i); its counts n_i are saved with its checkpoint."""

    def __init__(self, model, num_classes, *, schedule: Literal["growing", "fixed"] = "growing", theta: float = 0.5,
                 alpha: float = 0.01):
        super().__init__(model, num_classes)
        self.rule = Regulation(schedule, theta, alpha)

    def loss(self, x, y, epoch, index):
        logits = self.model(x)
        mask = participates(logits.detach(), y, self.rule.threshold(epoch))
        self.count(index, mask)
        return regulated_mean(F.cross_entropy(logits, y, reduction="none"), mask), logits


class SelfRegulatedStudent(Counted, KD):
    """Base of the three students: KD's per-sample loss, the teacher's significance and/or self-regulation."""

    teacher_method = "srl_teacher"
    weighted = False  # use the teacher's significance
    regulated = False  # apply the rule to the student itself

    def __init__(self, model, num_classes, *, teacher: str = "", tau: float = 4.0, lam: float = 0.1,
                 schedule: Literal["growing", "fixed"] = "growing", theta: float = 0.5, alpha: float = 0.01):
        super().__init__(model, num_classes, teacher=teacher, tau=tau, lam=lam)
        self.rule = Regulation(schedule, theta, alpha)
        self.register_buffer("significance", torch.zeros(0), persistent=False)  # derived from the teacher run

    def learn_from(self, stage):
        if not isinstance(stage, SelfRegulatedTeacher):
            raise ConfigError(f"method.teacher: {self.teacher_path} is not an srl_teacher run (it holds no participation counts)")
        self.use_teacher(stage.model)
        n = stage.counts.double()
        self.significance = (n / n.mean().clamp_min(1e-12)).float().to(self.significance.device)

    def loss(self, x, y, epoch, index):
        t = self.teacher_logits(x)
        logits = self.model(x)
        losses = self.kd_loss(t, logits, y, per_sample=True)
        w = self.significance[index] if self.weighted else None
        if self.regulated:
            mask = participates(logits.detach(), y, self.rule.threshold(epoch))
            loss = regulated_mean(losses, mask, w)
        else:
            mask = torch.ones_like(y, dtype=torch.bool)
            loss = (losses * w).mean()
        self.count(index, mask & (w > 0) if w is not None else mask)
        return loss, logits


@METHODS.register("srl_significance")
class SignificanceDistillation(SelfRegulatedStudent):
    """Significance-based distillation: mean_i w_i l_i, w_i = n_i / mean n (the teacher's counts)."""

    weighted = True


@METHODS.register("srl_regulated")
class RegulatedDistillation(SelfRegulatedStudent):
    """Regulated distillation: the student's own self-regulation, sum_i m_i l_i / max(1, sum_i m_i)."""

    regulated = True


@METHODS.register("srl_hybrid")
class HybridDistillation(SelfRegulatedStudent):
    """Hybrid distillation: sum_i m_i w_i l_i / max(1, sum_i m_i)."""

    weighted = regulated = True
