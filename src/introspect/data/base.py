"""The dataset registry and what a dataset source declares.

A source is one class registered in :data:`DATASETS`, in one file of ``introspect/data/sources/``
(every file there is imported, so a new dataset is a new file and nothing else). It declares:

- ``channels``, ``size`` (images are square, ``size`` x ``size``) and ``classes`` (the names, in
  label order): the shape facts every model is built from, known before any image is read, so the
  workflow checks every run before it prepares anything;
- ``augment``: the training augmentation, one of :data:`introspect.data.AUGMENTATIONS`
  (``crop_flip``: 4-px zero padding + random crop + horizontal flip, the paper's CIFAR10 recipe;
  ``crop``, ``flip`` or ``none``);
- ``recipes`` (optional): the training recipe per model family, ``{family: {epochs, batch_size,
  optim: {lr, milestones, weight_decay}}}``; a family is a model's name prefix (``resnet``,
  ``cnn``, ``mlp``) or, for any other model, its registered name; ``"*"`` stands for every family.
  A model whose family has no recipe uses the dataset's first one (said in the run's config and
  log); a dataset with no recipe at all needs ``recipes.<dataset>`` in params.yaml (or ``--set``);
- ``fetch(raw)``: the train and test images as uint8 tensors.
"""
from __future__ import annotations

from pathlib import Path

import torch

from ..registry import Registry

DATASETS = Registry("dataset")
SPLITS = ("train", "val", "test")


class DataError(RuntimeError):
    """A dataset file or source that is missing or damaged: one line naming the path."""


class Source:
    """A dataset source. Subclasses set the shape facts and implement ``fetch``."""

    channels: int
    size: int
    classes: tuple[str, ...]
    augment: str = "none"  # the paper's augmentation for this dataset: "crop_flip" or "none"
    real_subset_of: str | None = None  # the dataset whose real images this one is a part of (mnist5k: mnist)
    recipes: dict[str, dict] = {}  # model family (or "*") -> {epochs, batch_size, optim: {...}}

    def missing(self, raw: Path) -> str | None:
        """Why ``fetch(raw)`` would need files that are not in ``raw``, and how to get them, in one line;
        None when it can read offline (a dataset shipped by a package, or files that are there)."""
        return None

    def fetch(self, raw: Path) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
        """Return {"train": (x, y), "test": (x, y)}, x uint8 [N, C, H, W], y int64 [N]. ``raw`` is
        this dataset's own folder of raw files (``data/raw/<name>`` in the workflow)."""
        raise NotImplementedError
