"""A fixed-size image dataset (CIFAR10, CIFAR-100) read from whichever copy of it a user holds, offline.

Three layouts are read from a dataset's raw folder (``data/raw/<name>``, or ``--raw``):

- **torchvision's files** (``cifar-10-batches-py/`` ...), as torchvision downloads them;
- **a folder of images per class**, ``train/<class>/*.png`` and ``test/<class>/*.png`` (as fast.ai
  and many mirrors ship CIFAR10), class folders named as the source's ``classes``;
- **a parquet export**, ``train-*.parquet`` and ``test-*.parquet`` anywhere below the folder (Hugging
  Face's, e.g. ``plain_text/train-00000-of-00001.parquet``): one row per image, an encoded image
  (a column ``img`` or ``image``: a struct with ``bytes``, or bytes) and an integer label column
  (CIFAR10 ``label``, CIFAR-100 ``fine_label``).

A folder listing or an export has no official order, so every layout's images are put in one
canonical order, by label and then by the SHA-256 of the pixels, before ``prepare`` carves the
validation split: the same images give the same prepared file whatever the layout. A damaged or
partial layout (a missing class or split, an image of another size or mode, a label outside the
classes, a truncated file) is one DataError line naming the file, and nothing is written. When none
is there, torchvision's download is tried once; offline, the error names the layouts read.
"""
from __future__ import annotations

import hashlib
import io
from pathlib import Path

import numpy as np
import torch

from .base import DataError
from .download import torchvision_split
from .folder import Folder

SPLITS = ("train", "test")
IMAGE_COLUMNS = ("img", "image")


def canonical(x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The images sorted by (label, SHA-256 of their pixels): an order that does not depend on the layout."""
    digests = [hashlib.sha256(img.numpy().tobytes()).hexdigest() for img in x]
    order = sorted(range(len(y)), key=lambda i: (int(y[i]), digests[i]))
    idx = torch.tensor(order, dtype=torch.int64)
    return x[idx].contiguous(), y[idx].contiguous()


class _Reader(Folder):
    """An image reader for a fixed-size dataset: exact size, declared mode, one DataError line per bad file."""

    exact_size = True

    def __init__(self, channels: int, size: int, classes: tuple[str, ...]):
        self.channels, self.size, self.classes = channels, size, tuple(classes)
        self._first_size = None


def parquet_files(raw: Path, split: str) -> list[Path]:
    return sorted(p for p in Path(raw).rglob(f"{split}-*.parquet") if p.is_file())


def read_parquet(files: list[Path], reader: _Reader, label_column: str) -> tuple[torch.Tensor, torch.Tensor]:
    """Every row of ``files``: its encoded image decoded and checked, its label within the classes."""
    import pyarrow.parquet as pq

    images, labels = [], []
    for path in files:
        try:
            table = pq.read_table(path)
        except Exception as exc:  # truncated or not parquet
            raise DataError(f"{path}: unreadable parquet file ({type(exc).__name__})") from None
        column = next((c for c in IMAGE_COLUMNS if c in table.column_names), None)
        if column is None or label_column not in table.column_names:
            raise DataError(f"{path}: expected an image column ({' or '.join(IMAGE_COLUMNS)}) and a {label_column!r} "
                            f"column; it has {', '.join(table.column_names)}")
        for row, (cell, label) in enumerate(zip(table.column(column).to_pylist(), table.column(label_column).to_pylist())):
            data = cell.get("bytes") if isinstance(cell, dict) else cell
            where = f"{path}: row {row}"
            if not isinstance(data, (bytes, bytearray)):
                raise DataError(f"{where}: no encoded image in column {column!r}")
            if not isinstance(label, int) or not 0 <= label < len(reader.classes):
                raise DataError(f"{where}: label {label!r} outside 0..{len(reader.classes) - 1} (the classes)")
            images.append(reader.read_image(io.BytesIO(data), name=where))
            labels.append(label)
    if not images:
        raise DataError(f"{files[0].parent}: no rows in {', '.join(p.name for p in files)}")
    return torch.from_numpy(np.stack(images)), torch.tensor(labels, dtype=torch.int64)


def check_classes(y: torch.Tensor, classes: tuple[str, ...], where: str) -> None:
    missing = [classes[k] for k in range(len(classes)) if not bool((y == k).any())]
    if missing:
        raise DataError(f"{where}: no images of class{'es' * (len(missing) > 1)} {', '.join(missing[:5])}"
                        + (f" and {len(missing) - 5} more" if len(missing) > 5 else ""))


def read_fixed_size(raw: Path, name: str, tv_class: str, classes: tuple[str, ...], channels: int, size: int,
                    label_column: str) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """The train and test splits of a torchvision dataset ``tv_class`` from whichever layout ``raw`` holds
    (see the module's docstring), in canonical order."""
    import torchvision

    raw = Path(raw)
    reader = _Reader(channels, size, classes)
    if _torchvision_present(torchvision, tv_class, raw):
        splits = {s: _torchvision_split(tv_class, raw, name, s == "train") for s in SPLITS}
    elif any((raw / s).is_dir() for s in SPLITS):
        for s in SPLITS:
            if not (raw / s).is_dir():
                raise DataError(f"{raw / s}: missing; a class-folder layout holds train/<class>/ and test/<class>/")
        splits = {s: reader.read_split(raw / s) for s in SPLITS}
    elif any(parquet_files(raw, s) for s in SPLITS):
        for s in SPLITS:
            if not parquet_files(raw, s):
                raise DataError(f"{raw}: no {s}-*.parquet beside the other split's files (a parquet export has both)")
        splits = {s: read_parquet(parquet_files(raw, s), reader, label_column) for s in SPLITS}
    else:
        try:
            splits = {s: _torchvision_split(tv_class, raw, name, s == "train") for s in SPLITS}
        except DataError:
            raise DataError(f"{raw}: no {tv_class} there in any layout read (torchvision's files; train/<class>/*.png "
                            f"and test/<class>/*.png; train-*.parquet and test-*.parquet) and no download; copy one "
                            f"into {raw}, or on a machine with internet run `introspect prepare --dataset {name} "
                            f"--raw {raw.parent}`") from None
    for s, (x, y) in splits.items():
        check_classes(y, classes, f"{raw} ({s})")
    return {s: canonical(x, y) for s, (x, y) in splits.items()}


def layout_present(raw: Path, tv_class: str) -> bool:
    """Whether ``raw`` holds one of the layouts read (whole or not: reading it says what is wrong)."""
    import torchvision

    raw = Path(raw)
    return (_torchvision_present(torchvision, tv_class, raw) or any((raw / s).is_dir() for s in SPLITS)
            or any(parquet_files(raw, s) for s in SPLITS))


def how_to_get(raw: Path, name: str, tv_class: str) -> str:
    """One line: where a fixed-size dataset's files go and in which layouts."""
    return (f"{name}: no {tv_class} in {raw}; put one of torchvision's files, train/<class>/*.png + test/<class>/*.png, "
            f"or a parquet export (train-*.parquet, test-*.parquet) there, or on a machine with internet run "
            f"`introspect prepare --dataset {name} --raw {Path(raw).parent}` (docs/scales.md)")


def _torchvision_present(torchvision, tv_class: str, raw: Path) -> bool:
    try:
        for train in (True, False):
            getattr(torchvision.datasets, tv_class)(str(raw), train=train, download=False)
    except RuntimeError:
        return False
    return True


def _torchvision_split(tv_class: str, raw: Path, name: str, train: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """(x uint8 [N, 3, H, W], y int64) of a torchvision reader holding HWC uint8 ``data`` and ``targets``."""
    ds = torchvision_split(tv_class, raw, name, train=train)
    x = torch.from_numpy(np.asarray(ds.data)).permute(0, 3, 1, 2).contiguous()
    return x, torch.as_tensor(ds.targets, dtype=torch.int64)
