"""The one interface the training loop knows: a Method owns a step's forward and returns its loss.

A method is an ``nn.Module`` holding the model it trains (``self.model``) and any trainable
parts of its own; the loop optimizes ``trainable_parameters()``, checkpoints ``state_dict()``
and evaluates ``self.model``. Options are keyword-only ``__init__`` arguments with type hints:
the registry validates user options against them, so a new method is one registered class.

Device placement: every tensor a method keeps must follow ``method.to(device)`` and land on the
method's device when a checkpoint (read on the CPU) is loaded, or the method fails on an
accelerator only. Hence, in every method:

- state that belongs in the checkpoint (per-sample counts) is a persistent buffer, and state
  derived from elsewhere (a teacher's significance) a non-persistent one;
- a frozen network taken from another run (a teacher, its encoder) is held with :meth:`Method.hold`:
  outside ``parameters()``, ``state_dict()`` and ``train()``, but moved (and cast) with the method,
  through the :meth:`Method._apply` that every ``to``/``cuda``/``half`` goes through;
- no plain tensor attributes.

``tests/test_device_safety.py`` checks every registered method for it.
"""
from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from ..models.layers import count_parameters
from ..registry import ConfigError, Registry

METHODS = Registry("method")


def soft_cross_entropy(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """CE(p, t) = -sum_k t_k log p_k with p = softmax(logits), averaged over the batch; t may be soft."""
    return -(target * F.log_softmax(logits, dim=1)).sum(1).mean()


def require(ok: bool, key: str, expected: str, value) -> None:
    if not ok:
        raise ConfigError(f"{key}: expected {expected}, got {value!r}")


class Method(nn.Module):
    needs_teacher = False  # True: option ``teacher`` names a finished run the workflow trains first
    uses_index = False  # True: ``loss`` also gets ``index``, the training-split positions of the batch

    def __init__(self, model: nn.Module, num_classes: int):
        super().__init__()
        self.model = model
        self.num_classes = num_classes
        self._held: dict[str, nn.Module] = {}  # a plain dict: outside parameters(), state_dict(), train()

    def hold(self, name: str, net: nn.Module) -> nn.Module:
        """Keep ``net`` frozen (eval mode, no gradient) under ``name``: not trained, not checkpointed,
        not switched to train mode, but moved with the method (see :meth:`_apply`)."""
        self._held[name] = net.requires_grad_(False).eval()
        return net

    def held(self, name: str) -> nn.Module:
        if name not in self._held:
            raise RuntimeError(f"the {name} is loaded by setup(device) before training")
        return self._held[name]

    def _apply(self, fn, recurse=True):
        """What ``to``, ``cuda``, ``half``... apply to the method's own tensors, applied to the
        networks it holds too."""
        super()._apply(fn, recurse)
        for net in self._held.values():
            net._apply(fn, recurse)
        return self

    def setup(self, device) -> None:
        """Load what the method needs besides its model (a frozen teacher), once it is on ``device``."""

    def bind_data(self, train_size: int) -> None:
        """Told the training split's size (in samples) before any state is loaded: per-sample bookkeeping."""

    def run_metrics(self) -> dict[str, float]:
        """What metrics.json records besides accuracy: the share (%) of training samples that ever
        contributed to the loss, and the parameter count of the trained model."""
        return {"samples_used": 100.0, "params": float(count_parameters(self.model))}

    def networks(self) -> dict[str, nn.Module]:
        """The networks the loop evaluates, by metric prefix: the model ("") and any trained peer."""
        return {"": self.model}

    def trainable_parameters(self) -> list[nn.Parameter]:
        return [p for p in self.parameters() if p.requires_grad]

    def loss(self, x: torch.Tensor, y: torch.Tensor, epoch: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Return (loss, logits) for a training batch at 0-based ``epoch`` (``uses_index``: and ``index``)."""
        raise NotImplementedError
