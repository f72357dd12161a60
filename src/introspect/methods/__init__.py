"""Method registry: ``METHODS.build(name, model, num_classes, **options)``; one file per family."""
from . import distill, explained, features, iekd, ked, le, peers, regularizers, self_regulated  # noqa: F401  (registers)
from .base import METHODS, Method, soft_cross_entropy

__all__ = ["METHODS", "Method", "soft_cross_entropy"]
