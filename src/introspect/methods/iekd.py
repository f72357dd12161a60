"""IE-KD: inheritance and exploration (Huang et al., CVPR 2021, "Revisiting Knowledge Distillation:
An Inheritance and Exploration Framework"), and IE-DML for two networks.

Stage 1 (``iekd_ae``, a run of its own): an auto-encoder learns to compress the frozen teacher's
last-stage feature map F_T (ResNet: 64x8x8) into a factor of half the channels (L1
reconstruction). Stage 2 (``iekd``): the student's last-stage channels are split in half; the
inheritance half and the exploration half each go through an encoder of their own (trained with
the student) to the factor's size, and with N(F) = F / ||F||_2 per sample

    L_inh = mean |N(F_inh) - N(E(F_T))|,    L_exp = -mean |N(F_exp) - N(E(F_T))|
    (or, ``exploration: cos``, L_exp = mean |cos(F_exp, E(F_T))|),
    loss = CE + lambda_inh L_inh + lambda_exp L_exp   (``kd: true``: KD's loss in place of CE).

The encoders follow the authors' (Factor Transfer's) paraphraser: LeakyReLU(0.1), then three
3x3 conv + BN + LeakyReLU(0.1) layers c -> c -> f -> f; the decoder mirrors them with transposed
convolutions. The lambdas are not fixed by the paper's abstract or METHODS.md ("the code has 1;
the Factor Transfer configs use 500"): we take 500 for both, since with unit-norm factors of
thousands of entries a weight of 1 leaves the terms at ~1e-2 of CE.
"""
from __future__ import annotations

from typing import Literal

import torch
from torch import nn
from torch.nn import functional as F

from ..registry import ConfigError
from .base import METHODS, require
from .distill import KD, FromTeacher
from .features import _stages, match_size
from .peers import DML


def _layer(cin: int, cout: int, transposed: bool = False) -> list[nn.Module]:
    conv = nn.ConvTranspose2d if transposed else nn.Conv2d
    return [conv(cin, cout, 3, padding=1), nn.BatchNorm2d(cout), nn.LeakyReLU(0.1)]


def encoder(cin: int, factor: int) -> nn.Sequential:
    """LeakyReLU(0.1); 3x3 conv + BN + LeakyReLU(0.1): cin -> cin -> factor -> factor."""
    return nn.Sequential(nn.LeakyReLU(0.1), *_layer(cin, cin), *_layer(cin, factor), *_layer(factor, factor))


def decoder(factor: int, cout: int) -> nn.Sequential:
    """The encoder mirrored with transposed 3x3 convs: factor -> factor -> cout -> cout."""
    return nn.Sequential(*_layer(factor, factor, True), *_layer(factor, cout, True), *_layer(cout, cout, True))


def unit(f: torch.Tensor) -> torch.Tensor:
    """N(F) = F / ||F||_2 per sample, flattened."""
    return F.normalize(f.flatten(1), dim=1)


def inheritance_loss(f_inh: torch.Tensor, factor: torch.Tensor) -> torch.Tensor:
    """L_inh = mean |N(F_inh) - N(F_T)|."""
    return (unit(f_inh) - unit(factor)).abs().mean()


def exploration_loss(f_exp: torch.Tensor, factor: torch.Tensor, form: str = "l1") -> torch.Tensor:
    """L_exp = -mean |N(F_exp) - N(F_T)| ("l1") or mean |cos(F_exp, F_T)| ("cos")."""
    if form == "cos":
        return F.cosine_similarity(f_exp.flatten(1), factor.flatten(1), dim=1).abs().mean()
    return -(unit(f_exp) - unit(factor)).abs().mean()


def last_stage(model: nn.Module, who: str) -> int:
    channels = _stages(model, who)[-1]
    if channels % 2:
        raise ConfigError(f"method: IE-KD splits the {who}'s last stage in half; it has an odd {channels} channels")
    return channels


class Explorer(nn.Module):
    """The inheritance / exploration split of one network's last stage, with an encoder per half."""

    def __init__(self, channels: int, factor: int, lam_inh: float, lam_exp: float, form: str):
        super().__init__()
        self.inherit, self.explore = encoder(channels // 2, factor), encoder(channels // 2, factor)
        self.lam_inh, self.lam_exp, self.form = lam_inh, lam_exp, form

    def loss(self, last: torch.Tensor, factor: torch.Tensor) -> torch.Tensor:
        """lambda_inh L_inh + lambda_exp L_exp of a last-stage map against a (detached) factor."""
        inh, exp = last.chunk(2, dim=1)
        f_inh, factor_i = match_size(self.inherit(inh), factor)
        f_exp, factor_e = match_size(self.explore(exp), factor)
        return self.lam_inh * inheritance_loss(f_inh, factor_i) + self.lam_exp * exploration_loss(f_exp, factor_e, self.form)


def _check_lambdas(lam_inh: float, lam_exp: float) -> None:
    require(lam_inh >= 0, "method.lam_inh", "a number >= 0", lam_inh)
    require(lam_exp >= 0, "method.lam_exp", "a number >= 0", lam_exp)


@METHODS.register("iekd_ae")
class IEAutoEncoder(FromTeacher):
    """IE-KD's first stage: an auto-encoder on the frozen teacher's last-stage features,
    loss = mean |D(E(F_T)) - F_T| (L1), factor = ``rate`` x the teacher's channels (0.5). The run's
    model is the teacher itself (the config's model must be the teacher's architecture), frozen, so
    the run's accuracy is the teacher's and its checkpoint holds both the teacher and the encoder
    an ``iekd`` student learns from."""

    def __init__(self, model, num_classes, *, teacher: str = "", rate: float = 0.5):
        super().__init__(model, num_classes, teacher=teacher)
        require(0 < rate <= 1, "method.rate", "a number in (0, 1]", rate)
        c = last_stage(model, "teacher")
        self.factor = max(1, round(c * rate))
        self.encoder, self.decoder = encoder(c, self.factor), decoder(self.factor, c)

    def use_teacher(self, net):
        try:
            self.model.load_state_dict(net.state_dict())
        except RuntimeError:
            raise ConfigError("model: iekd_ae's model must be its teacher's architecture") from None
        super().use_teacher(net)
        self.model.requires_grad_(False)

    def train(self, mode: bool = True):
        super().train(mode)
        self.model.eval()  # the teacher stays frozen, BN statistics included
        return self

    def loss(self, x, y, epoch):
        logits, feats, _ = self.teacher_features(x)
        return F.l1_loss(self.decoder(self.encoder(feats[-1])), feats[-1]), logits


@METHODS.register("iekd")
class IEKD(KD):
    """The IE-KD student (module docstring): CE (or, with ``kd``, KD's tau^2 KL_tau + lambda CE)
    + lambda_inh L_inh + lambda_exp L_exp against the factor E(F_T) of an ``iekd_ae`` run (its
    ``teacher``). ``exploration``: "l1" (the paper's dis-similarity) or "cos" (the code's option)."""

    teacher_method = "iekd_ae"

    def __init__(self, model, num_classes, *, teacher: str = "", lam_inh: float = 500.0, lam_exp: float = 500.0,
                 exploration: Literal["l1", "cos"] = "l1", kd: bool = False, tau: float = 4.0, lam: float = 0.1):
        super().__init__(model, num_classes, teacher=teacher, tau=tau, lam=lam)
        _check_lambdas(lam_inh, lam_exp)
        self.channels, self.lam_inh, self.lam_exp, self.form, self.with_kd = last_stage(model, "student"), lam_inh, lam_exp, exploration, kd

    def learn_from(self, stage):
        if not isinstance(stage, IEAutoEncoder):
            raise ConfigError(f"method.teacher: IE-KD learns from an iekd_ae run (the teacher's auto-encoder), got {type(stage).__name__}")
        self.use_teacher(stage.model)
        self.hold("encoder", stage.encoder)  # the teacher's, frozen
        device = next(self.model.parameters()).device
        self.explorer = Explorer(self.channels, stage.factor, self.lam_inh, self.lam_exp, self.form).to(device)

    def factor(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(teacher logits, E(F_T)), without gradient, fp32."""
        logits, feats, _ = self.teacher_features(x)
        with torch.no_grad():
            return logits, self.held("encoder")(feats[-1]).float()

    def loss(self, x, y, epoch):
        t_logits, factor = self.factor(x)
        logits, feats, _ = self.model.forward_features(x)
        task = self.kd_loss(t_logits, logits, y) if self.with_kd else F.cross_entropy(logits, y)
        return task + self.explorer.loss(feats[-1], factor), logits


@METHODS.register("ie_dml")
class IEDML(DML):
    """IE-DML, a reconstruction (the authors did not release it): DML's two networks (Zhang et al.
    2018; lambda KL of the detached peer) where each network also splits its last stage into
    inheritance / exploration halves against the other's factor. Each network has an auto-encoder
    trained online on its own detached last-stage map (L1 reconstruction, so it never shapes the
    network); network k's factor target is the other's encoding, detached:
    L_k = CE_k + lambda KL(p_other || p_k) + lambda_inh L_inh + lambda_exp L_exp, plus both
    reconstruction losses."""

    def __init__(self, model, num_classes, *, lam: float = 0.1, lam_inh: float = 500.0, lam_exp: float = 500.0,
                 exploration: Literal["l1", "cos"] = "l1", rate: float = 0.5):
        super().__init__(model, num_classes, lam=lam)
        _check_lambdas(lam_inh, lam_exp)
        require(0 < rate <= 1, "method.rate", "a number in (0, 1]", rate)
        c = last_stage(model, "student")
        factor = max(1, round(c * rate))
        self.autoencoders = nn.ModuleList(nn.Sequential(encoder(c, factor), decoder(factor, c)) for _ in range(2))
        self.explorers = nn.ModuleList(Explorer(c, factor, lam_inh, lam_exp, exploration) for _ in range(2))

    def loss(self, x, y, epoch):
        (a1, f1, _), (a2, f2, _) = self.model.forward_features(x), self.peer.forward_features(x)
        loss = self.mutual_loss(a1, a2, y)
        factors = []
        for last, ae in zip((f1[-1], f2[-1]), self.autoencoders):
            code = ae[0](last.detach())
            loss = loss + F.l1_loss(ae[1](code), last.detach())
            factors.append(code.detach())
        loss = loss + self.explorers[0].loss(f1[-1], factors[1]) + self.explorers[1].loss(f2[-1], factors[0])
        return loss, a1
