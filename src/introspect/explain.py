"""Explainer registry: all c class maps for a batch in one call, shape [b, c, *map].

The explanation of class k is taken w.r.t. the logit a^k (LE paper, Sec. 2). Every explainer
works on a forward pass that already happened (so LE explains the very forward it trains on):
``maps(model, x, logits, conv)`` needs ``x`` to require grad and ``conv`` to be the model's last
conv feature map from that forward. Maps are detached unless ``create_graph`` is set (e2KD needs
the student's map to keep its graph).

Per-sample exactness: in training mode BatchNorm normalizes with batch statistics, so the
gradient of the batch-summed logit a^k w.r.t. x_i picks up a small term from the other samples
of the batch. We keep it (it is the gradient of the function the network computes at that
step); in eval mode the maps are exactly per-sample, and the tests compare them with Captum.
"""
from __future__ import annotations

import contextlib

import torch
from torch import nn

from .models import enable_guided, guided_backward
from .registry import ConfigError, Registry

EXPLAINERS = Registry("explainer")


def class_vjps(logits: torch.Tensor, wrt: torch.Tensor, create_graph: bool = False, batched: bool = False) -> torch.Tensor:
    """d a^k / d wrt for every class k: c vector-Jacobian products -> [b, c, ...].

    ``batched``: the c products as one vmapped call (``is_grads_batched``), right for models
    without convolutions (matrix products batch well: 4.2x the CE step vs 4.7x looped for the
    MLP on the CPU). Convolutional models loop over the c classes: the vmapped convolution
    backward falls back to a slower path (ResNet8 on the CPU: 9x the CE step vs 5x looped).
    """
    b, c = logits.shape
    if batched:
        basis = torch.eye(c, dtype=logits.dtype, device=logits.device).unsqueeze(1).expand(c, b, c)
        (grads,) = torch.autograd.grad(
            logits, wrt, grad_outputs=basis, is_grads_batched=True, retain_graph=True, create_graph=create_graph
        )
        return grads.transpose(0, 1)
    grads = [
        torch.autograd.grad(logits[:, k].sum(), wrt, retain_graph=True, create_graph=create_graph)[0] for k in range(c)
    ]
    return torch.stack(grads, 1)


def full_precision(device: torch.device):
    """A block where autocast is off on ``device`` (a no-op where it has no autocast, e.g. meta)."""
    if torch.amp.is_autocast_available(device.type):
        return torch.autocast(device.type, enabled=False)
    return contextlib.nullcontext()


class Explainer:
    needs_conv = False  # True: the model must have a convolutional feature map

    def prepare(self, model: nn.Module) -> None:
        """One-time model setup before the first forward that will be explained."""

    def maps(self, model, x, logits, conv, create_graph: bool = False) -> torch.Tensor:
        raise NotImplementedError


@EXPLAINERS.register("grad")
class Grad(Explainer):
    """Gradient saliency (Simonyan et al. 2013): e^k = d a^k / d x (signed, not its absolute value)."""

    def maps(self, model, x, logits, conv, create_graph=False):
        return class_vjps(logits, x, create_graph, batched=model.conv_layer is None)


@EXPLAINERS.register("grad_input")
class GradInput(Explainer):
    """Gradient * Input (Shrikumar et al. 2017): e^k = x * d a^k / d x."""

    def maps(self, model, x, logits, conv, create_graph=False):
        xx = x if create_graph else x.detach()
        return class_vjps(logits, x, create_graph, batched=model.conv_layer is None) * xx.unsqueeze(1)


@EXPLAINERS.register("guided_bp")
class GuidedBP(Explainer):
    """Guided Backpropagation (Springenberg et al. 2014): every ReLU passes back only positive
    gradients, and only where its input was positive."""

    def prepare(self, model):
        enable_guided(model)

    def maps(self, model, x, logits, conv, create_graph=False):
        with guided_backward(model):
            return class_vjps(logits, x, create_graph, batched=model.conv_layer is None)


def gradcam_weights(model: nn.Module, logits: torch.Tensor, conv: torch.Tensor, classes: torch.Tensor,
                    create_graph: bool = False) -> torch.Tensor:
    """Grad-CAM's alpha_j^k = mean_{h,w} d a^k / d A_{j,h,w} for the classes ``classes`` [b, n]
    of each sample: [b, n, channels].

    When A feeds only global-average-pooling then a Linear layer (the ResNets), alpha_j^k =
    W_{k,j} / (H W), read off the weights with no backward (dropout between A and the pooling is
    taken at its expectation, the identity). Other heads (max-pool, hidden FC layers: the plain
    CNNs) take one backward per column of ``classes``, each summing the picked logits over the batch
    (per-sample exact in eval mode).
    """
    if model.gap_fc is not None:
        weights = model.gap_fc.weight if create_graph else model.gap_fc.weight.detach()
        return weights[classes] / (conv.shape[-1] * conv.shape[-2])
    grads = [torch.autograd.grad(logits.gather(1, classes[:, i:i + 1]).sum(), conv, retain_graph=True,
                                 create_graph=create_graph)[0] for i in range(classes.shape[1])]
    return torch.stack(grads, 1).mean((3, 4))


def gradcam(model: nn.Module, logits: torch.Tensor, conv: torch.Tensor, classes: torch.Tensor,
            create_graph: bool = False) -> torch.Tensor:
    """Grad-CAM maps e^k = ReLU(sum_j alpha_j^k A_j) of the classes ``classes`` [b, n] of each
    sample, from a forward that happened: [b, n, h, w]. The weighted sum runs in fp32 (outside
    bf16 autocast), whatever precision the forward used."""
    alpha = gradcam_weights(model, logits, conv, classes, create_graph)
    a = conv if create_graph else conv.detach()
    with full_precision(a.device):
        return torch.relu(torch.einsum("bkj,bjhw->bkhw", alpha.float(), a.float()))


@EXPLAINERS.register("gradcam")
class GradCAM(Explainer):
    """Grad-CAM (Selvaraju et al. 2017) at the last conv feature map A:
    alpha_j^k = mean_{h,w} d a^k / d A_{j,h,w};  e^k = ReLU(sum_j alpha_j^k A_j), for every class k
    (:func:`gradcam` with all classes; closed form on GAP->FC heads, see :func:`gradcam_weights`)."""

    needs_conv = True

    def maps(self, model, x, logits, conv, create_graph=False):
        b, c = logits.shape
        every_class = torch.arange(c, device=logits.device).expand(b, c)
        return gradcam(model, logits, conv, every_class, create_graph)


def gradcam_of_class(model: nn.Module, logits: torch.Tensor, conv: torch.Tensor, classes: torch.Tensor,
                     create_graph: bool = False) -> torch.Tensor:
    """Grad-CAM of one class per sample (``classes`` [b]) from a forward that happened: [b, h, w].
    The same map as :class:`GradCAM` gives for that class, with one backward (or none, GAP->FC)."""
    return gradcam(model, logits, conv, classes[:, None], create_graph)[:, 0]


def build_explainer(name: str, model: nn.Module, key: str = "explainer") -> Explainer:
    """The explainer ``name`` prepared for ``model``; a ConfigError if the model cannot use it."""
    explainer = EXPLAINERS.get(name, key)()
    if explainer.needs_conv and getattr(model, "conv_layer", None) is None:
        usable = [n for n in EXPLAINERS.names() if not EXPLAINERS.get(n).needs_conv]
        raise ConfigError(f"{key}: {name} needs a convolutional model; choices for this model: {', '.join(usable)}")
    explainer.prepare(model)
    return explainer


def explain(model: nn.Module, x: torch.Tensor, name: str) -> torch.Tensor:
    """All class maps of ``x`` under ``model`` as it is (train or eval mode), detached: [b, c, *map]."""
    explainer = build_explainer(name, model)
    x = x.detach().requires_grad_(True)
    with torch.enable_grad():
        logits, _, conv = model.forward_features(x)
        return explainer.maps(model, x, logits, conv).detach()


def cosine_to_class(maps: torch.Tensor, y: torch.Tensor, eps: float = 1e-12) -> torch.Tensor:
    """cos(e^k, e^y) for every class k: [b, c]. Maps are flattened; a zero map gives 0, never NaN."""
    flat = maps.flatten(2)
    ref = flat[torch.arange(flat.shape[0], device=flat.device), y]  # [b, d]
    dots = torch.einsum("bkd,bd->bk", flat, ref)
    norms = flat.norm(dim=2) * ref.norm(dim=1, keepdim=True)
    return dots / norms.clamp_min(eps)


def class_similarity(maps: torch.Tensor, eps: float = 1e-12) -> torch.Tensor:
    """cos(e^k, e^m) for every pair of classes: [b, c, c] (Figure 2 averages it over a test set)."""
    flat = maps.flatten(2)
    unit = flat / flat.norm(dim=2, keepdim=True).clamp_min(eps)
    return unit @ unit.transpose(1, 2)

