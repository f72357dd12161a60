"""Run checkpoints that detect their own damage, and the previous one to fall back on.

``checkpoint.pt`` is one line, ``introspect-checkpoint sha256=<hex>``, then the torch payload the
hash covers. Writing one first renames the current file to ``checkpoint.prev.pt`` (the previous
epoch), then writes the new one atomically. Reading checks the hash: a truncated or altered file is
refused with the reason, and :func:`load_latest` falls back to the previous checkpoint, or to
nothing (start over), saying which in one line.
"""
from __future__ import annotations

import hashlib
import io
import os
from pathlib import Path

import torch

from .fileio import atomic_write, writing
from .runfolder import NAME, PREVIOUS

MAGIC = b"introspect-checkpoint sha256="


class CheckpointError(RuntimeError):
    """A checkpoint file that cannot be trusted (truncated, altered, not a checkpoint)."""


def save_checkpoint(state: dict, folder: Path) -> None:
    buf = io.BytesIO()
    torch.save(state, buf)
    payload = buf.getvalue()
    header = MAGIC + hashlib.sha256(payload).hexdigest().encode() + b"\n"
    path = Path(folder) / NAME
    if path.exists() and _verifies(path):  # a damaged current file never replaces a good previous one
        with writing(path.with_name(PREVIOUS), f"{NAME} is kept"):  # a rename that no space or permission allows
            os.replace(path, path.with_name(PREVIOUS))
    atomic_write(path, lambda f: (f.write(header), f.write(payload)))


def _verifies(path: Path) -> bool:
    return _checked_payload(Path(path).read_bytes()) is not None


def _checked_payload(data: bytes) -> bytes | None:
    """The torch payload of a checkpoint file's bytes if its checksum line matches, else None."""
    head, _, payload = data.partition(b"\n")
    ok = head.startswith(MAGIC) and hashlib.sha256(payload).hexdigest().encode() == head[len(MAGIC):]
    return payload if ok else None


def read_checkpoint(path: Path) -> dict:
    """The state in ``path``; CheckpointError with the reason when it does not verify."""
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise CheckpointError(f"{path}: cannot be read ({exc.strerror})") from None
    if not data.startswith(MAGIC):
        return _legacy(path, data)
    payload = _checked_payload(data)
    if payload is None:
        raise CheckpointError(f"{path}: checksum mismatch (truncated or altered)")
    try:
        return torch.load(io.BytesIO(payload), map_location="cpu", weights_only=True)
    except Exception as exc:  # verified bytes that still do not load: a foreign or future format
        raise CheckpointError(f"{path}: does not load ({type(exc).__name__})") from None


def _legacy(path: Path, data: bytes) -> dict:
    """A checkpoint written before checksums (a plain torch file holding a run state): it cannot be
    verified, only loaded; a run whose config differs then moves it aside (``--supersede``)."""
    try:
        state = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    except Exception:
        raise CheckpointError(f"{path}: not an introspect checkpoint (no checksum line)") from None
    if not isinstance(state, dict) or "history" not in state:
        raise CheckpointError(f"{path}: not an introspect checkpoint (no checksum line)")
    return state


def model_weights(method_state: dict) -> dict:
    """The model's part of a method's state dict (keys ``model.*``, prefix removed): what a run's
    network is, without what its method's ``setup`` adds (FitNets' regressor, IE-KD's explorer)."""
    return {k.removeprefix("model."): v for k, v in method_state.items() if k.startswith("model.")}


def load_latest(folder: Path) -> tuple[dict | None, str | None]:
    """(state, note): the newest checkpoint of ``folder`` that verifies, or None to start over.
    ``note`` is one line saying what was damaged and what is used instead; None when all is well."""
    folder = Path(folder)
    latest, previous = folder / NAME, folder / PREVIOUS
    if not latest.exists() and not previous.exists():
        return None, None
    problems = [] if latest.exists() else [f"{latest}: missing"]
    for path in (latest, previous):
        if not path.exists():
            continue
        try:
            state = read_checkpoint(path)
        except CheckpointError as exc:
            problems.append(str(exc))
            continue
        if not problems:
            return state, None
        return state, f"{'; '.join(problems)}: resuming from {path.name} (epoch {len(state.get('history', []))})"
    return None, f"{'; '.join(problems)}: no good checkpoint left, starting over"
