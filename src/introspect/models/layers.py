"""Building blocks shared by every model family.

``ReLU`` is an ``nn.ReLU`` that can switch on Guided Backpropagation (Springenberg et al. 2014)
for one backward pass without a second forward: when a model is prepared for it
(:func:`enable_guided`), each ReLU puts a hook on its output that, only while the model's
:class:`GuidedSwitch` is on, keeps the positive part of the incoming gradient. The ordinary ReLU
backward then masks by the positive input, giving relu(grad_out) * (input > 0).

Where the switch lives, and why: on CUDA, autograd runs a backward pass, and the tensor hooks it
calls, on a worker thread of its own, not on the thread that asked for it. So the switch is not
thread-local or global state but one plain object owned by the model's ReLU modules (every ReLU
of a model shares it), read by the hook when it runs, from whatever thread that is.
:func:`guided_backward` turns it on only around the explainer's own backward (which blocks until
it is done), so the loss backward of the same forward, run after it, sees the plain gradient:
LE explains the very forward it trains on. A prepared ReLU is left out of ``torch.compile``
graphs (a graph break each), since a compiled graph would fix the switch's value when traced.
"""
from __future__ import annotations

import contextlib
import functools

import torch
from torch import nn
from torch.nn import functional as F


class GuidedSwitch:
    """Whether the backward running now uses the guided ReLU rule; one per prepared model."""

    def __init__(self):
        self.on = False


def _guided_hook(switch: GuidedSwitch, grad: torch.Tensor) -> torch.Tensor | None:
    return grad.clamp(min=0) if switch.on else None


@contextlib.contextmanager
def guided_backward(model: nn.Module):
    """Backward passes through ``model`` run inside this block (on any thread) use the guided
    ReLU rule; ``model`` must have been prepared with :func:`enable_guided`."""
    switches = {id(m.switch): m.switch for m in model.modules() if isinstance(m, ReLU) and m.switch is not None}
    if not switches:
        raise RuntimeError("guided_backward: the model was not prepared with enable_guided()")
    previous = {k: s.on for k, s in switches.items()}
    for s in switches.values():
        s.on = True
    try:
        yield
    finally:
        for k, s in switches.items():
            s.on = previous[k]


class ReLU(nn.ReLU):
    switch: GuidedSwitch | None = None  # set per instance by enable_guided()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(x) if self.switch is None else self._hooked_forward(x)

    @torch.compiler.disable  # traced by torch.compile, the hook would read the switch once, at trace time
    def _hooked_forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.relu(x)
        if y.requires_grad:
            y.register_hook(functools.partial(_guided_hook, self.switch))
        return y


def enable_guided(model: nn.Module, on: bool = True) -> None:
    """Prepare every ReLU of ``model`` for guided backward passes (one switch shared by all of
    them, off until :func:`guided_backward`), or with ``on=False`` remove the hooks."""
    switch = GuidedSwitch() if on else None
    for m in model.modules():
        if isinstance(m, ReLU):
            m.switch = switch


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def dropout(p: float) -> nn.Module:
    return nn.Dropout(p) if p > 0 else nn.Identity()


class Net(nn.Module):
    """Base of every model, and the whole contract a model file meets (checked for every registered
    model by tests/test_models.py; the method and explainer tests then run it with every method).

    A model file in ``introspect/models/`` defines a ``Net`` subclass and registers a builder::

        @MODELS.register("mynet")
        def mynet(in_channels: int, image_size: int, num_classes: int, *, dropout: float = 0.0) -> Net

    (its keyword-only options, with type hints, become ``model.<option>`` config keys; ``dropout``
    is expected by every model: 0 adds no module at all).

    - ``forward_features(x)`` returns ``(logits [b, num_classes], stages, conv)``: ``stages`` is
      the list of at least two hidden outputs, in order (each [b, c, h, w] for a conv net, what
      FitNets' hint, AT, FSP and IE-KD match; [b, units] for an MLP), and ``conv`` the last
      convolutional feature map [b, c, h, w] that the logits are computed from (Grad-CAM's map),
      or None. ``forward(x)`` is ``forward_features(x)[0]``. Use this package's :class:`ReLU`
      (each ReLU its own module, not a functional call) so that Guided Backpropagation works.
    - ``conv_layer``: the module whose output is that ``conv`` map (a forward hook on it sees the
      very tensor), or None; Grad-CAM, e2KD and LE's Grad-CAM need it.
    - ``stage_channels``: the channels of each of ``stages`` when they are conv maps, else None;
      Hint, AT and FSP need it (and as many stages as the teacher's), IE-KD an even last entry.
    - ``gap_fc`` (optional): the Linear layer, when ``conv`` feeds global average pooling and
      then this layer directly: Grad-CAM then uses its closed form.

    A method or explainer that needs what a model does not provide refuses it in one line naming
    both (a ConfigError, before anything is written).
    """

    @property
    def conv_layer(self) -> nn.Module | None:
        return None

    @property
    def gap_fc(self) -> nn.Linear | None:
        return None

    @property
    def stage_channels(self) -> list[int] | None:
        """Channels of each convolutional stage output (what Hint, AT and FSP match); None for an MLP."""
        return None

    def forward_features(self, x: torch.Tensor):
        """Return (logits, [stage outputs], last conv feature map or None)."""
        raise NotImplementedError

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_features(x)[0]
