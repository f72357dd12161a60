"""Method registry: ``METHODS.build(name, model, num_classes, **options)``; one file per family.

Every module of this package is imported here, in name order, so that its ``@METHODS.register``
decorators run: a new method is a new file in this folder and nothing else.
"""
import importlib
import pkgutil

from .base import METHODS, Method, soft_cross_entropy

for _module in sorted(m.name for m in pkgutil.iter_modules(__path__)):
    importlib.import_module(f"{__name__}.{_module}")

__all__ = ["METHODS", "Method", "soft_cross_entropy"]
