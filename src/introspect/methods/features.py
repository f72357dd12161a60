"""Learning from a frozen teacher's intermediate features (LE paper Sec. 5.3, Table 5).

Stage outputs are what each model's ``forward_features`` returns (a ResNet's three BasicBlock
stages). When a student's and a teacher's maps differ in height and width, the larger is
average-pooled to the smaller. FitNets and FSP train their feature loss as a stage of its own and
then distil: here a stage is a run of its own (``hint_stage``, ``fsp_stage``) whose weights start
the KD student (the student's config key ``init``); params.yaml chains them (a row's ``stage``).
AT adds its loss to KD throughout.
"""
from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from ..registry import ConfigError
from .base import METHODS, require
from .distill import KD, FromTeacher


def match_size(a: torch.Tensor, b: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Average-pool the larger of two [b, c, h, w] maps to the other's h x w."""
    if a.shape[-2:] == b.shape[-2:]:
        return a, b
    if a.shape[-1] > b.shape[-1]:
        return F.adaptive_avg_pool2d(a, b.shape[-2:]), b
    return a, F.adaptive_avg_pool2d(b, a.shape[-2:])


def attention_map(f: torch.Tensor) -> torch.Tensor:
    """AT's spatial attention (Zagoruyko & Komodakis 2017, Eq. 2 with p = 2): Q = mean over
    channels of A^2, flattened and L2-normalized per sample. [b, c, h, w] -> [b, h*w]."""
    return F.normalize(f.pow(2).mean(1).flatten(1), dim=1)


def at_loss(student: list[torch.Tensor], teacher: list[torch.Tensor]) -> torch.Tensor:
    """sum over stages of mean((Q_s - Q_t)^2), the mean over batch and h*w positions of the squared
    difference of the normalized maps, as the AT authors' public code computes it (a squared
    difference, not the norm of the difference). Per sample a stage adds ||Q_s - Q_t||^2 / (h w):
    the same difference weighs 4x as much on a map of half the height and width (16x16 digits'
    stages against 32x32 CIFAR10's)."""
    return sum((attention_map(s) - attention_map(t)).pow(2).mean() for s, t in (match_size(*p) for p in zip(student, teacher)))


def fsp_matrix(f1: torch.Tensor, f2: torch.Tensor) -> torch.Tensor:
    """FSP's flow matrix (Yim et al. 2017, Eq. 1): G_ij = (1/(h w)) sum_{h,w} F1_{i,h,w} F2_{j,h,w}
    between two stage outputs, the larger map pooled to the smaller size. [b, c1, c2]."""
    f1, f2 = match_size(f1, f2)
    return torch.einsum("bihw,bjhw->bij", f1, f2) / (f1.shape[-1] * f1.shape[-2])


def fsp_loss(student: list[torch.Tensor], teacher: list[torch.Tensor]) -> torch.Tensor:
    """FSP (Yim et al. 2017, Eq. 2 with equal weights): sum over consecutive stage pairs
    (1->2, 2->3, ...) of mean((G_s - G_t)^2)."""
    pairs = range(len(student) - 1)
    return sum((fsp_matrix(student[i], student[i + 1]) - fsp_matrix(teacher[i], teacher[i + 1])).pow(2).mean() for i in pairs)


def _stages(model: nn.Module, who: str) -> list[int]:
    channels = getattr(model, "stage_channels", None)
    if channels is None:
        raise ConfigError(f"method: the {who} has no convolutional stages to match (an MLP); use a ResNet or CNN")
    return channels


def _same_depth(student: nn.Module, teacher: nn.Module) -> None:
    """Stage i of the student is matched with stage i of the teacher: both need as many stages."""
    mine, theirs = _stages(student, "student"), _stages(teacher, "teacher")
    if len(mine) != len(theirs):
        raise ConfigError(f"method.teacher: the student has {len(mine)} stages, the teacher {len(theirs)}; "
                          "stage-wise matching needs the same number")


@METHODS.register("hint_stage")
class HintStage(FromTeacher):
    """FitNets' first stage (Romero et al. 2015, Eq. 3): a regressor r maps the student's guided
    layer (the output of its stage ``layer``, 1-based; the LE paper uses the 2nd) to the teacher's
    hint (the teacher's stage ``layer``): L_HT = mean((u_h - r(v_g))^2). FitNets writes
    1/2 ||u_h - r(v_g)||^2; we average over elements (a constant factor). r is FitNets'
    convolutional regressor, here a 3x3 conv + BN, built once the teacher is known. Only the
    student's layers up to the guided layer and r receive a gradient. Its run's weights then start
    a KD student (the row ``hint`` of Table 5)."""

    def __init__(self, model, num_classes, *, teacher: str = "", layer: int = 2):
        super().__init__(model, num_classes, teacher=teacher)
        stages = _stages(model, "student")
        require(1 <= layer <= len(stages), "method.layer", f"a stage number in 1..{len(stages)}", layer)
        self.layer = layer

    def use_teacher(self, net):
        _same_depth(self.model, net)
        super().use_teacher(net)
        cin, cout = _stages(self.model, "student")[self.layer - 1], _stages(net, "teacher")[self.layer - 1]
        device = next(self.model.parameters()).device
        self.regressor = nn.Sequential(nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout)).to(device)

    def loss(self, x, y, epoch):
        hint = self.teacher_features(x)[1][self.layer - 1]
        logits, feats, _ = self.model.forward_features(x)
        guided, hint = match_size(self.regressor(feats[self.layer - 1]), hint)
        return F.mse_loss(guided, hint), logits


@METHODS.register("at_kd")
class ATKD(KD):
    """Attention transfer (Zagoruyko & Komodakis 2017) plus KD, as in the LE paper's Table 5:
    loss = tau^2 KL_tau(q || p) + lambda CE(p, y) + beta * sum_stages mean((Q_s - Q_t)^2),
    Q of :func:`attention_map`, beta = 1000. The paper's Eq. 2 writes beta/2 times a p-norm of the
    difference (p = 2) and, for CIFAR, sets beta to 10^3 divided by the number of elements of the
    map and the batch size; the authors' code (which gives their results) adds 1000 times the
    batch-and-position mean of the squared difference per stage, with no 1/2: what we do."""

    def __init__(self, model, num_classes, *, teacher: str = "", tau: float = 4.0, lam: float = 0.1, beta: float = 1000.0):
        super().__init__(model, num_classes, teacher=teacher, tau=tau, lam=lam)
        _stages(model, "student")
        require(beta >= 0, "method.beta", "a number >= 0", beta)
        self.beta = beta

    def use_teacher(self, net):
        _same_depth(self.model, net)
        super().use_teacher(net)

    def loss(self, x, y, epoch):
        t_logits, t_feats, _ = self.teacher_features(x)
        logits, feats, _ = self.model.forward_features(x)
        return self.kd_loss(t_logits, logits, y) + self.beta * at_loss(feats, t_feats), logits


@METHODS.register("fsp_stage")
class FSPStage(FromTeacher):
    """FSP's first stage (Yim et al. 2017, Sec. 3.3): the student learns only to match the
    teacher's flow matrices, loss = :func:`fsp_loss`. Student and teacher stages must have the
    same channels (true across the ResNet family). Its run's weights then start a KD student (the
    row ``fsp_kd`` of Table 5; Yim et al. train the task loss after it, the LE paper adds KD)."""

    def __init__(self, model, num_classes, *, teacher: str = ""):
        super().__init__(model, num_classes, teacher=teacher)
        _stages(model, "student")

    def use_teacher(self, net):
        mine, theirs = _stages(self.model, "student"), _stages(net, "teacher")
        if mine != theirs:
            raise ConfigError(f"method.teacher: FSP needs the same stage channels; student {mine}, teacher {theirs}")
        super().use_teacher(net)

    def loss(self, x, y, epoch):
        t_feats = self.teacher_features(x)[1]
        logits, feats, _ = self.model.forward_features(x)
        return fsp_loss(feats, t_feats), logits
