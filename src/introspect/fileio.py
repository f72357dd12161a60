"""Atomic writes: a reader (or a rerun after a crash) never sees half a file.

Each writer goes to a temp file in the destination folder, is fsync'ed, then renamed over the
destination, and the folder is fsync'ed so the rename itself survives a power cut.
"""
from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Callable, IO

_UMASK = os.umask(0)
os.umask(_UMASK)


def atomic_write(path: Path, write: Callable[[IO[bytes]], None]) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, 0o666 & ~_UMASK)  # mkstemp makes 0600; give the file the usual permissions
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    dirfd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dirfd)
    finally:
        os.close(dirfd)


def save_torch(obj, path: Path) -> None:
    import torch  # here: the JSON writers serve modules that never load torch

    atomic_write(path, lambda f: torch.save(obj, f))


def json_bytes(obj) -> bytes:
    """The bytes of a JSON file of ours: indented, keys sorted, a final newline."""
    return (json.dumps(obj, indent=2, sort_keys=True) + "\n").encode()


def save_json(obj, path: Path) -> None:
    atomic_write(path, lambda f: f.write(json_bytes(obj)))


def save_parquet(rows: list[dict], path: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    atomic_write(path, lambda f: pq.write_table(pa.Table.from_pylist(rows), f))
