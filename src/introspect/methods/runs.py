"""A run rebuilt from its resolved config: ``build`` makes its model and method (the training loop
starts every run with it); ``load_method`` also loads a finished run's checkpoint (distillation
methods take their teacher this way). Both use only the registries below the training loop
(datasets, models, methods), so a method that learns from another run imports nothing above it."""
from __future__ import annotations

import contextlib
import json
from pathlib import Path

import torch

from ..checkpoint import NAME, read_checkpoint
from ..data import DATASETS
from ..models import MODELS
from ..registry import ConfigError
from .base import METHODS, Method


def build(cfg: dict) -> tuple[torch.nn.Module, Method]:
    """The trained model and the method of a resolved config (ConfigError for impossible combinations)."""
    src = DATASETS.get(cfg["dataset"]["name"])
    m = cfg["model"]
    try:
        model = MODELS.build(m["name"], src.channels, src.size, len(src.classes), dropout=m["dropout"])
    except ValueError as exc:  # e.g. CNN-10's four max-pools on 8x8 images
        raise ConfigError(f"model.name: {m['name']} cannot read {cfg['dataset']['name']}'s {src.channels}x{src.size}x"
                          f"{src.size} images ({exc})") from None
    opts = {k: v for k, v in cfg["method"].items() if k != "name"}
    with refusals(cfg, keys=("method", "method.name", "model")):
        method = METHODS.build(cfg["method"]["name"], model, len(src.classes), **opts)
    return method.model, method  # a method may train another form of the configured model (KED)


@contextlib.contextmanager
def refusals(cfg: dict, keys: tuple[str, ...] | None = None):
    """A ConfigError inside says which method and model it refuses: one line ending ``(method m,
    model n)``. ``keys``: only errors of these keys (what a method says of a model it cannot
    use: no conv map, no stages) and an explainer's refusal; an option's bad value stays as it is.
    None: every error (``Method.setup``: a teacher the model cannot be matched with)."""
    try:
        yield
    except ConfigError as exc:
        key, _, why = str(exc).partition(": ")
        if keys is None or key in keys or (key == "method.explainer" and " needs " in why):
            raise ConfigError(f"{exc} (method {cfg['method']['name']}, model {cfg['model']['name']})") from None
        raise


def load_method(run: Path, device: torch.device) -> tuple[dict, Method]:
    """(config, trained method) of a run folder (config.json + checkpoint.pt) on ``device``, in eval mode."""
    cfg = json.loads((Path(run) / "config.json").read_text())
    _, method = build(cfg)
    method.load_state_dict(read_checkpoint(Path(run) / NAME)["method"])
    return cfg, method.to(device).eval()
