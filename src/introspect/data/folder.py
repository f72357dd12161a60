"""Your own images: a folder of class-per-subfolder images as a dataset source.

Subclass :class:`Folder` in one file of ``introspect/data/sources/`` and register it::

    @DATASETS.register("flowers")
    class Flowers(Folder):
        channels, size = 3, 32
        classes = ("daisy", "rose", "tulip")

The images are read from ``data/raw/<name>/`` (or the class attribute ``root``), laid out either as

- ``<class>/<image>`` for every class: a stratified test split (``test_fraction``, 0.2) is held
  out, fixed by ``split_seed``; or
- ``train/<class>/<image>`` and ``test/<class>/<image>``: the given split is kept.

Every image must be readable by PIL with the declared channels (mode ``L``: 1, ``RGB``: 3) and,
with ``same_size`` (the default), of one size across the folder; each is resized to ``size`` x
``size`` (bilinear, antialiased). Files whose names start with ``.`` are skipped. Anything else
is one :class:`DataError` line naming the file or class, and ``prepare`` writes nothing: an
unreadable file, an image of other channels or another size, a subfolder that is not a declared
class (a label outside the declared classes), a declared class with no images.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from .base import DataError, Source

MODES = {1: "L", 3: "RGB"}


class Folder(Source):
    channels: int = 3
    size: int = 32
    classes: tuple[str, ...] = ()
    augment = "crop_flip"
    root: str | None = None  # the folder of images; default: the raw folder, data/raw/<name>
    test_fraction: float = 0.2  # held out as the test split when the folder gives none
    split_seed: int = 0
    same_size: bool = True  # every image of the folder has one size (a stray thumbnail is an error)
    exact_size: bool = False  # every image is size x size already (a copy of a fixed-size dataset): never resized

    def fetch(self, raw: Path) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
        from .prepared import stratified_split

        root = Path(self.root) if self.root else Path(raw)
        if self.channels not in MODES:
            raise DataError(f"{type(self).__name__}.channels: {self.channels}; an image folder has 1 (L) or 3 (RGB) channels")
        if not self.classes:
            raise DataError(f"{type(self).__name__}.classes: none declared; name the class subfolders of {root}")
        if not root.is_dir():
            raise DataError(f"{root}: no such folder of images (one subfolder per class: {', '.join(self.classes)})")
        self._first_size: tuple[int, int] | None = None
        if (root / "train").is_dir() and (root / "test").is_dir() and "train" not in self.classes:
            return {split: self.read_split(root / split) for split in ("train", "test")}
        x, y = self.read_split(root)
        tr, te = stratified_split(y, self.test_fraction, self.split_seed, f"{root}: test split", self.classes)
        return {"train": (x[tr], y[tr]), "test": (x[te], y[te])}

    def read_split(self, folder: Path) -> tuple[torch.Tensor, torch.Tensor]:
        """Every image of ``folder/<class>/``, resized, as uint8 [N, C, size, size], with its labels."""
        subfolders = sorted(p for p in folder.iterdir() if not p.name.startswith("."))
        for p in subfolders:
            if not p.is_dir():
                raise DataError(f"{p}: not a class folder; {folder} holds one subfolder per class")
            if p.name not in self.classes:
                raise DataError(f"{p}: class {p.name!r} is not one of the declared classes ({', '.join(self.classes)})")
        images, labels = [], []
        for label, name in enumerate(self.classes):
            files = sorted(f for f in (folder / name).glob("*") if not f.name.startswith(".")) if (folder / name).is_dir() else []
            if not files:
                raise DataError(f"{folder / name}: class {name!r} has no images")
            for f in files:
                images.append(self.read_image(f))
                labels.append(label)
        return torch.from_numpy(np.stack(images)), torch.tensor(labels, dtype=torch.int64)

    def read_image(self, source, name: str | None = None) -> np.ndarray:
        """One image as uint8 [C, size, size]; a DataError naming the file when it does not fit.
        ``source``: a file, or a binary stream with ``name`` for the messages (an image stored in a table)."""
        from PIL import Image

        path = name or source
        try:
            with Image.open(source) as img:
                img.load()
                mode, size = img.mode, img.size
                bands = len(img.getbands())
                if mode != MODES[self.channels]:
                    raise DataError(f"{path}: mode {mode} ({bands} channel{'s' * (bands != 1)}); the dataset declares "
                                    f"{self.channels} ({MODES[self.channels]}); convert it, e.g. Image.convert({MODES[self.channels]!r})")
                if self.exact_size and size != (self.size, self.size):
                    raise DataError(f"{path}: {size[0]}x{size[1]} pixels; {type(self).__name__} images are "
                                    f"{self.size}x{self.size}")
                if self.same_size:
                    if self._first_size is None:
                        self._first_size = size
                    elif size != self._first_size:
                        raise DataError(f"{path}: {size[0]}x{size[1]} pixels, the other images {self._first_size[0]}x"
                                        f"{self._first_size[1]} (mixed sizes; set same_size = False to resize each)")
                if size != (self.size, self.size):
                    img = img.resize((self.size, self.size), Image.Resampling.BILINEAR)
                pixels = np.asarray(img, dtype=np.uint8)
        except DataError:
            raise
        except Exception as exc:  # not an image, truncated, unsupported
            raise DataError(f"{path}: unreadable image ({type(exc).__name__})") from None
        return pixels[None] if pixels.ndim == 2 else pixels.transpose(2, 0, 1)
