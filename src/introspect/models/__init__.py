"""Model registry: ``MODELS.build(name, in_channels, image_size, num_classes, dropout=...)``.

Every module of this package is imported here, in name order, so that its ``@MODELS.register``
decorators run: a new model is a new file in this folder and nothing else. What a model must
provide (``forward_features``, ``conv_layer``, ``stage_channels``, ``gap_fc``) is written once, in
:class:`introspect.models.layers.Net`; ``tests/test_models.py`` checks every registered model
against it, and the method and explainer tests run every registered model.
"""
import importlib
import pkgutil

from .layers import Net, count_parameters, enable_guided, guided_backward
from .registry import MODELS

for _module in sorted(m.name for m in pkgutil.iter_modules(__path__)):
    importlib.import_module(f"{__name__}.{_module}")

__all__ = ["MODELS", "Net", "count_parameters", "enable_guided", "guided_backward"]
