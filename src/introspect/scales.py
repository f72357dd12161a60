"""The scales of an experiment and how a per-scale value is picked (torch-free: the CLI's choices).

Any value of params.yaml may be given per scale, ``{quick: a, laptop: b, paper: c}``; ``scale``
picks one. quick and paper are required, the others fall back along :data:`FALLBACK`. A scale's name
is never a dataset's: a mapping whose keys are all scale names is read as a per-scale value, so a
scale called ``mnist`` would swallow ``explanations: {mnist: ...}``.
"""
from __future__ import annotations

from .registry import ConfigError

SCALES = ("quick", "laptop", "mnist_full", "mnist_cut", "paper")
# A scale whose value a {quick: ..., paper: ...} mapping does not give takes this scale's value, and
# so on down the chain: mnist_cut runs what it does not say otherwise as mnist_full does, mnist_full as laptop,
# laptop as quick.
FALLBACK = {"laptop": "quick", "mnist_full": "laptop", "mnist_cut": "mnist_full"}


def at_scale(value, scale: str, key: str = ""):
    """Resolve every ``{quick: a, laptop: b, paper: c}`` mapping inside ``value`` to the one for
    ``scale``; a mapping without ``scale`` gives its FALLBACK's value (mnist_cut: mnist_full's, else
    laptop's, else quick's)."""
    if isinstance(value, dict):
        if value and set(value) <= set(SCALES):
            pick = scale
            while pick is not None and pick not in value:
                pick = FALLBACK.get(pick)
            if pick is None:
                raise ConfigError(f"{key}: no value for scale {scale!r}; given: {', '.join(value)}")
            return at_scale(value[pick], scale, key)
        return {k: at_scale(v, scale, f"{key}.{k}" if key else k) for k, v in value.items()}
    if isinstance(value, list):
        return [at_scale(v, scale, key) for v in value]
    return value
