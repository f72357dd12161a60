"""Model registry: ``MODELS.build(name, in_channels, image_size, num_classes, dropout=...)``."""
from . import cnn, mlp, resnet  # noqa: F401  (registers the families)
from .layers import Net, count_parameters, enable_guided, guided_backward
from .registry import MODELS


__all__ = ["MODELS", "Net", "count_parameters", "enable_guided", "guided_backward"]
