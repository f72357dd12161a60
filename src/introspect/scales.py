"""The scales of an experiment and how a per-scale value is picked (torch-free: the CLI's choices).

Any value of params.yaml may be given per scale, ``{quick: a, laptop: b, paper: c}``; ``scale``
picks one. A scale is one entry of :data:`SCALES`: its name and the scale whose value it takes where
a mapping does not name it (``None``: none, so every per-scale mapping must give it: quick and
paper). Adding a scale is adding an entry here; the config schema's per-scale mappings take their
keys from this table (introspect.pipeline.check_schema), and params.yaml gives the new scale's
values where they differ from its fallback's. A scale's name is never a dataset's: a mapping whose
keys are all scale names is read as a per-scale value, so a scale called ``mnist`` would swallow
``explanations: {mnist: ...}``.
"""
from __future__ import annotations

from .registry import ConfigError

# scale -> the scale it falls back to (None: required in every per-scale mapping)
SCALES: dict[str, str | None] = {
    "quick": None,            # offline, every table, minutes: a smoke test
    "laptop": "quick",        # the MNIST tables on mnist5k (reduced data), about an hour on 2 cores
    "mnist_full": "laptop",   # the MNIST tables on the full MNIST, a night on 2 cores
    "mnist_cut": "mnist_full",  # CE and LE on the full MNIST, 3 seeds, about 2 hours on 2 cores
    "cifar_cut": "paper",     # ResNet8 CE, LE and LE-Permut on a part of real CIFAR10, under 2 hours on 2 cores
    "paper": None,            # every table at the paper's recipes, GPUs
}
REQUIRED = tuple(s for s, fallback in SCALES.items() if fallback is None)
FALLBACK = {s: fallback for s, fallback in SCALES.items() if fallback is not None}


def at_scale(value, scale: str, key: str = ""):
    """Resolve every ``{quick: a, laptop: b, paper: c}`` mapping inside ``value`` to the one for
    ``scale``; a mapping without ``scale`` gives its FALLBACK's value (mnist_cut: mnist_full's, else
    laptop's, else quick's; cifar_cut: paper's)."""
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
