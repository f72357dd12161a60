"""The model registry. An entry is a builder ``(in_channels, image_size, num_classes, *, dropout:
float = 0.0) -> Net`` (see :class:`introspect.models.layers.Net` for the contract); its registered
name's prefix (resnet, cnn, mlp; otherwise the whole name) is its family, which picks the
dataset's training recipe."""
from ..registry import Registry

MODELS = Registry("model")
