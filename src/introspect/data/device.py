"""Training keeps a whole split on the training device and augments each batch there, vectorized:
4-px zero padding + random crop + horizontal flip (the paper's CIFAR10 recipe) or nothing (MNIST).
No per-sample Python, no DataLoader workers. Which device a run (or an evaluation, an explanation,
the bench) computes on, and with which speed settings, is picked here too.
"""
from __future__ import annotations

from typing import Iterator

import torch
from torch.nn import functional as F

from ..registry import ConfigError


def pick_device(name: str) -> torch.device:
    """The device ``name`` ("auto": CUDA when visible, else the CPU); CUDA asked for and not visible
    is a config error."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise ConfigError("device: cuda asked for but no CUDA device is visible; choices here: auto, cpu")
    return torch.device(name)


def speed_settings(cfg: dict, device: torch.device) -> tuple[bool, bool]:
    """(bf16 autocast, channels_last) for the resolved config ``cfg`` on ``device``: "auto" means on
    with CUDA."""
    cuda = device.type == "cuda"
    bf16 = cfg["precision"] == "bf16" or (cfg["precision"] == "auto" and cuda and torch.cuda.is_bf16_supported())
    return bf16, cfg["channels_last"] == "on" or (cfg["channels_last"] == "auto" and cuda)


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
