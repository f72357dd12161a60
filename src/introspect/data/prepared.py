"""``prepare``: a dataset source turned into one checksummed tensor file; ``load_prepared`` reads it back.

A prepared dataset is one ``torch.save`` file holding uint8 images [N, C, H, W] and int64 labels
for the train / val / test splits (val is carved from train, stratified, so sweeps are chosen
without the test set), the train split's per-channel mean and std, and a SHA-256 of the tensors.
"""
from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import torch

from ..fileio import save_torch
from ..registry import ConfigError
from .base import DATASETS, SPLITS, DataError, Source


def checksum(tensors: dict[str, torch.Tensor]) -> str:
    h = hashlib.sha256()
    for key in sorted(tensors):
        h.update(key.encode())
        h.update(tensors[key].contiguous().numpy().tobytes())
    return h.hexdigest()


def stratified_split(y: torch.Tensor, fraction: float, seed: int, what: str,
                     classes: tuple[str, ...] | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Sorted indices (kept, held out) of a stratified split holding out ``fraction`` of ``y``;
    a DataError naming ``what`` and the smallest class when there are too few images for it."""
    from sklearn.model_selection import train_test_split

    try:
        kept, held = train_test_split(np.arange(len(y)), test_size=fraction, stratify=y.numpy(), random_state=seed)
    except ValueError:  # a class with one image, or fewer held-out images than classes
        counts = torch.bincount(y)
        k = int(torch.where(counts > 0, counts, counts.max() + 1).argmin())
        name = classes[k] if classes and k < len(classes) else str(k)
        raise DataError(f"{what}: too few images for a stratified {fraction:g} split: {len(y)} images, class "
                        f"{name!r} has {int(counts[k])}; each class needs at least 2, and the split one per class") from None
    return torch.from_numpy(np.sort(kept)), torch.from_numpy(np.sort(held))


def check_splits(name: str, src: Source, splits: dict) -> None:
    """What ``fetch`` returned matches what the source declares: one DataError line otherwise."""
    for split in ("train", "test"):
        if split not in splits:
            raise DataError(f"{name}: the source gave no {split} split")
        x, y = splits[split]
        shape = (src.channels, src.size, src.size)
        if x.dtype != torch.uint8 or x.dim() != 4 or tuple(x.shape[1:]) != shape:
            raise DataError(f"{name}: {split} images are {x.dtype} {tuple(x.shape)}, the source declares uint8 [N, *{shape}]")
        if len(y) != len(x) or (len(y) and (int(y.min()) < 0 or int(y.max()) >= len(src.classes))):
            raise DataError(f"{name}: {split} labels outside 0..{len(src.classes) - 1} (the declared classes)")


def prepare(name: str, out: Path, raw: Path = Path("data/raw"), val_fraction: float = 0.1, seed: int = 0) -> dict:
    """Turn dataset ``name`` into one tensor file at ``out``; return its summary. Nothing is written
    unless every image is read and checked."""
    src = DATASETS.get(name, "dataset")()
    if not 0 < val_fraction < 1:
        raise ConfigError(f"val_fraction: expected a number in (0, 1), got {val_fraction!r}")
    splits = src.fetch(Path(raw) / name)
    check_splits(name, src, splits)
    x, y = splits["train"]
    tr, va = stratified_split(y, val_fraction, seed, f"{name}: validation split of train", src.classes)
    splits = {"train": (x[tr], y[tr]), "val": (x[va], y[va]), "test": splits["test"]}
    tensors = {f"{k}_{s}": t for s, (xs, ys) in splits.items() for k, t in (("x", xs), ("y", ys))}
    pixels = splits["train"][0].double() / 255
    stats = {"mean": pixels.mean((0, 2, 3)).float(), "std": pixels.std((0, 2, 3)).float()}
    payload = {
        "name": name,
        "classes": list(src.classes),
        "augment": src.augment,
        "tensors": tensors,
        **stats,
        "sha256": checksum({**tensors, **stats}),
    }
    save_torch(payload, out)
    return {s: len(splits[s][1]) for s in SPLITS} | {"path": str(out), "sha256": payload["sha256"]}


SCALINGS = ("standardize", "unit")  # dataset.scaling: by the train split's per-channel mean and std, or pixel / 255
SUBSET_SEED = 0  # every run of a subset sees the same images, whatever its own seed: runs pair across methods


def subset_counts(train: int, val: int, subset: int | None) -> tuple[int, int]:
    """(train, val) images a run with ``dataset.subset`` keeps of a prepared (train, val): ``subset``
    training images and the same share of the validation images (at least 1)."""
    if subset is None or subset >= train:
        return train, val
    return subset, max(1, round(val * subset / train))


def take_stratified(y: torch.Tensor, n: int, what: str) -> torch.Tensor:
    """Sorted indices of a seeded (SUBSET_SEED), stratified choice of ``n`` of the labels ``y`` (all when n >= len)."""
    from sklearn.model_selection import train_test_split

    if n >= len(y):
        return torch.arange(len(y))
    try:
        kept = train_test_split(np.arange(len(y)), train_size=n, stratify=y.numpy(), random_state=SUBSET_SEED)[0]
    except ValueError:  # fewer images asked for than classes
        raise DataError(f"{what}: too few for a stratified choice (one image per class at least)") from None
    return torch.from_numpy(np.sort(kept))


def for_run(payload: dict, dataset: dict) -> dict:
    """The prepared data as a run sees it, by its resolved ``dataset`` config: ``subset`` (a number of
    training images, or None: all) keeps a seeded stratified part of the train split and the same
    share of val, the test split whole; ``scaling`` ``standardize`` normalizes by the prepared train
    split's per-channel mean and std (those of the whole split, a property of the dataset), ``unit``
    feeds pixel / 255 in [0, 1] (mean 0, std 1 in the loader). Returns a new payload; the file's
    tensors are not copied."""
    t = dict(payload["tensors"])
    subset = dataset.get("subset")
    if subset is not None:
        n_train, n_val = subset_counts(len(t["y_train"]), len(t["y_val"]), subset)
        for split, n in (("train", n_train), ("val", n_val)):
            keep = take_stratified(t[f"y_{split}"], n, f"dataset.subset: {n} images of the {split} split")
            t[f"x_{split}"], t[f"y_{split}"] = t[f"x_{split}"][keep], t[f"y_{split}"][keep]
    scaling = dataset.get("scaling", "standardize")
    if scaling not in SCALINGS:
        raise ConfigError(f"dataset.scaling: {scaling!r}; choices: {', '.join(SCALINGS)}")
    mean, std = payload["mean"], payload["std"]
    if scaling == "unit":
        mean, std = torch.zeros_like(mean), torch.ones_like(std)
    return {**payload, "tensors": t, "mean": mean, "std": std}


def load_prepared(path: Path, dataset: str | None = None) -> dict:
    """Load a prepared file and verify its checksum; a DataError naming the file otherwise.
    ``dataset``: the name the file is prepared from (default: the file's stem, data/processed/<name>.pt)."""
    path = Path(path)
    if not path.is_file():
        name = dataset or path.stem
        raise DataError(f"{path}: no prepared dataset there; run `introspect prepare --dataset {name} --out {path}`")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
        stored = payload["sha256"]
        actual = checksum({**payload["tensors"], "mean": payload["mean"], "std": payload["std"]})
    except Exception as exc:
        raise DataError(f"{path}: unreadable prepared dataset ({type(exc).__name__}); run `introspect prepare` again") from None
    if stored != actual:
        raise DataError(f"{path}: checksum mismatch (the file is damaged); run `introspect prepare` again")
    return payload
