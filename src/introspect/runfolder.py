"""A run folder, as the training loop, the run cache, `introspect status` and the report read it.

The names of its files, the settings that say how (not which) a run is computed, whether two
resolved configs name one run, where a run in training stands (``progress.json``) and moving a
superseded run aside whole. No torch here: `introspect status` and `introspect cache` start in a
fraction of a second, and every layer above may import it.
"""
from __future__ import annotations

import contextlib
import json
import os
import socket
import time
from pathlib import Path

from .fileio import save_json, writing

CONFIG, HISTORY, METRICS = "config.json", "history.parquet", "metrics.json"
NAME, PREVIOUS = "checkpoint.pt", "checkpoint.prev.pt"  # a run's checkpoint and the one before it (introspect.checkpoint)
RECEIPT = "provenance.json"  # written last: the workflow's sign that a run finished (introspect.provenance)
PROGRESS = "progress.json"  # where a run in training stands (introspect.status)
SUPERSEDED = "superseded"
# What a run folder holds, by the training loop, `introspect explain` and `introspect evaluate`.
RUN_FILES = (CONFIG, NAME, PREVIOUS, HISTORY, METRICS, "explanations.pt", "evaluation.json", RECEIPT)
MACHINE_KEYS = ("device", "precision", "channels_last", "compile")  # how a run is computed, not which run


def read_json(path: Path) -> dict | None:
    """A JSON object from ``path``; None when it is missing, unreadable or not an object."""
    try:
        value = json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return None
    return value if isinstance(value, dict) else None


def same_config(a: dict, b: dict) -> bool:
    """Whether two resolved configs name the same run (machine settings and provenance aside)."""
    strip = lambda c: {k: v for k, v in c.items() if k not in (*MACHINE_KEYS, "provenance")}  # noqa: E731
    return strip(a) == strip(b)


def write_progress(out: Path, seconds: list[float], epochs: int) -> None:
    """Atomically record the epochs done (their seconds) of ``epochs``, and who trains (host,
    process): at the start and after every epoch."""
    save_json({"epoch": len(seconds), "epochs": epochs, "seconds": [round(s, 3) for s in seconds],
               "updated": time.time(), "host": socket.gethostname(), "pid": os.getpid()}, Path(out) / PROGRESS)


def move_aside(out: Path, reason: str) -> Path:
    """Keep a superseded run whole: every file of it goes to ``out/superseded/<UTC time>/`` with
    ``superseded.json`` saying when and why; nothing is deleted."""
    out = Path(out)
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    dest = out / SUPERSEDED / stamp
    for n in range(1, 1000):  # two supersessions within one second keep both
        if not dest.exists():
            break
        dest = out / SUPERSEDED / f"{stamp}-{n}"
    with writing(dest, "the run is left where it was"):
        dest.mkdir(parents=True)
    try:  # the note first: a copy never lacks it, and a full disk leaves the run where it was
        save_json({"superseded_at": stamp, "reason": reason}, dest / "superseded.json")
    except OSError:
        with contextlib.suppress(OSError):
            dest.rmdir()
        raise
    for name in RUN_FILES:
        if (out / name).exists():
            (out / name).rename(dest / name)
    return dest
