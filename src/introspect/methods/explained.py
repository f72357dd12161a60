"""Distillation that also transfers the teacher's explanation: e2KD (Parchami-Araghi et al. 2024,
"Good Teachers Explain: Explanation-Enhanced Knowledge Distillation"), the nearest published
relative of LE (LE explains the student to itself; e2KD makes the student explain like a teacher).
"""
from __future__ import annotations

import torch
from torch.nn import functional as F

from ..explain import gradcam_of_class
from .base import METHODS, require
from .distill import KD
from .features import match_size


@METHODS.register("e2kd")
class E2KD(KD):
    """e2KD: loss = tau^2 KL_tau(q || p) + lambda_cam (1 - cos(GradCAM_T(x, y_T), GradCAM_S(x, y_T)))
    (+ lambda CE(p, y), 0 by default), both Grad-CAM maps at each network's last conv map for the
    teacher's top-1 class y_T, cosine over the flattened maps, averaged over the batch. The student's
    map keeps its graph (closed form on GAP->FC heads, double backward otherwise); the teacher's is
    computed without gradient to its weights. Maps of different sizes: the larger is average-pooled.
    tau = 4 as KD in the LE paper; lambda_cam = 1 is our default (the e2KD authors tune it)."""

    def __init__(self, model, num_classes, *, teacher: str = "", tau: float = 4.0, lam: float = 0.0, lam_cam: float = 1.0):
        super().__init__(model, num_classes, teacher=teacher, tau=tau, lam=lam)
        require(model.conv_layer is not None, "method.name", "a convolutional student for e2kd (Grad-CAM)", "e2kd")
        require(lam_cam >= 0, "method.lam_cam", "a number >= 0", lam_cam)
        self.lam_cam = lam_cam

    def teacher_map(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """The teacher's (logits, top-1 classes, Grad-CAM of them), with no gradient to the teacher."""
        closed_form = self.teacher.gap_fc is not None
        with torch.enable_grad():  # frozen weights: only an input that requires grad gives the VJP a graph
            logits, _, conv = self.teacher.forward_features(x if closed_form else x.detach().requires_grad_(True))
            top = logits.argmax(1)
            cam = gradcam_of_class(self.teacher, logits, conv, top)
        return logits.detach().float(), top, cam.detach().float()  # fp32 under bf16 autocast too

    def loss(self, x, y, epoch):
        t_logits, top, t_cam = self.teacher_map(x)
        logits, _, conv = self.model.forward_features(x)
        s_cam = gradcam_of_class(self.model, logits, conv, top, create_graph=True)
        s_cam, t_cam = match_size(s_cam.unsqueeze(1), t_cam.unsqueeze(1))
        cos = F.cosine_similarity(s_cam.flatten(1), t_cam.flatten(1), dim=1, eps=1e-12)
        return self.kd_loss(t_logits, logits, y) + self.lam_cam * (1 - cos).mean(), logits
