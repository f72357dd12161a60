"""Atomic writes: a reader (or a rerun after a crash) never sees half a file.

Each writer goes to a temp file in the destination folder, is fsync'ed, then renamed over the
destination, and the folder is fsync'ed so the rename itself survives a power cut.

A write that fails for want of space (ENOSPC, EDQUOT) or permission (EROFS, EACCES) leaves the
previous file whole and no temp file behind, and raises :class:`WriteError`: one line saying which
file, why, what is kept and what to do (the CLI prints it as its error; the training loop first
says which epoch's checkpoint is kept). :func:`writing` is the one place that makes that call.

Fault injection (tests only): with ``$INTROSPECT_FAIL_WRITE=n`` the n-th :func:`atomic_write` of
the process fails with ENOSPC after writing part of its temp file, as a full disk would
(tests/test_disk_full.py). Writes are counted per process in ``_writes`` (a forked child starts from
0; a test running several commands in one process resets it with monkeypatch).
"""
from __future__ import annotations

import contextlib
import errno
import json
import os
import tempfile
from pathlib import Path
from typing import Callable, IO

_UMASK = os.umask(0)
os.umask(_UMASK)

FREE = "free space, then rerun the same command"
# errno -> (why, in words; what to do): the failures a user fixes outside the program
TROUBLE = {errno.ENOSPC: ("no space left on device", FREE),
           errno.EDQUOT: ("disk quota exceeded: no space left in the quota", FREE),
           errno.EROFS: ("read-only file system", "make it writable, then rerun the same command"),
           errno.EACCES: ("permission denied", "fix its permissions, then rerun the same command")}
FAIL_WRITE = "INTROSPECT_FAIL_WRITE"  # fault injection (tests only): see the module's docstring
_writes = {"pid": 0, "n": 0}


class WriteError(OSError):
    """``path`` cannot be written (an errno of TROUBLE); ``kept``: what is kept instead, in words.
    An OSError (errno, strerror, filename), so that code which survives a failed write (the run
    cache's store) still catches it; its text is the one line the user sees."""

    def __init__(self, path: Path, cause: OSError, kept: str):
        super().__init__(cause.errno, cause.strerror, str(path))
        self.path, self.kept = Path(path), kept

    def __str__(self) -> str:
        why, todo = TROUBLE[self.errno]
        return f"{self.path}: cannot be written ({why}); {self.kept}; {todo}"


def trouble(exc: BaseException) -> tuple[str, str] | None:
    """(why, what to do) when ``exc`` is a failure a user fixes outside the program (no space, no
    permission: an OSError of TROUBLE), else None."""
    return TROUBLE.get(exc.errno) if isinstance(exc, OSError) else None


@contextlib.contextmanager
def writing(path: Path, kept: str | None = None):
    """Turn a failure to write ``path`` for want of space or permission into a WriteError saying
    ``kept``; default: the previous file (when there is one) is kept, else no part of it is left."""
    try:
        yield
    except WriteError:
        raise
    except OSError as exc:
        if trouble(exc) is None:
            raise
        path = Path(path)
        if kept is None:
            kept = f"the previous {path.name} is kept" if path.exists() else "no part of it is left"
        raise WriteError(path, exc, kept) from None


def _count() -> bool:
    """One more atomic write in this process; whether $INTROSPECT_FAIL_WRITE says it must fail."""
    if _writes["pid"] != os.getpid():
        _writes.update(pid=os.getpid(), n=0)
    _writes["n"] += 1
    return os.environ.get(FAIL_WRITE) == str(_writes["n"])


class _Sink:
    """The temp file as a writer sees it. Keeps the first OSError of a write or flush (torch.save
    turns it into a RuntimeError of its own) and injects the test fault (see the module's docstring)."""

    def __init__(self, f: IO[bytes], fail: bool):
        self.f, self.fail, self.error = f, fail, None

    def write(self, data) -> int:
        try:
            if self.fail:  # part of it reaches the disk, then the disk is full
                self.fail = False
                self.f.write(bytes(data)[: len(data) // 2])
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
            return self.f.write(data)
        except OSError as exc:
            self.error = self.error or exc
            raise

    def flush(self) -> None:
        try:
            self.f.flush()
        except OSError as exc:
            self.error = self.error or exc
            raise

    def __getattr__(self, name):
        return getattr(self.f, name)


def atomic_write(path: Path, write: Callable[[IO[bytes]], None]) -> None:
    """Write ``path`` whole with ``write(file)``, or not at all (see the module's docstring)."""
    path = Path(path)
    with writing(path):
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        try:
            os.fchmod(fd, 0o666 & ~_UMASK)  # mkstemp makes 0600; give the file the usual permissions
            with os.fdopen(fd, "wb") as f:
                sink = _Sink(f, _count())
                try:
                    write(sink)
                    if sink.fail:  # the writer wrote nothing: the fault strikes now
                        sink.write(b"")
                except Exception as exc:
                    if sink.error is not None and sink.error is not exc:
                        raise sink.error from exc  # the OSError behind a writer's own error
                    raise
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, path)
        except BaseException:
            with contextlib.suppress(OSError):
                Path(tmp).unlink(missing_ok=True)
            raise
    with writing(path, f"{path.name} is written whole, but its folder could not be synced"):
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
