"""Method registry: ``METHODS.build(name, model, num_classes, **options)``; one file per family."""
from . import distill, explained, features, le, peers, regularizers  # noqa: F401  (registers the methods)
from .base import METHODS, Method, soft_cross_entropy

__all__ = ["METHODS", "Method", "soft_cross_entropy"]
