"""Train once, reuse everywhere: a content-addressed cache of finished runs.

A finished run's *identity* is one SHA-256 of what determines what it computes (:func:`identity`):
its resolved config without the machine settings (:data:`introspect.runfolder.MACHINE_KEYS`) and
without the folders it names (``dataset.path``, ``method.teacher``, ``init``: they differ between
clones), the digest of its code, of its data, and of the final checkpoint of every run it learned
from, by role (``teacher``, ``init``), not by folder. Where it was trained (device, precision, torch)
is recorded with it and shown by ``introspect cache``, not part of the identity.

Before a run trains, :func:`lookup` looks its identity up in the run folder's own ``superseded/``
copies, then in the cache folder; a verified hit is restored (hard links, a copy across file
systems) with this clone's ``config.json`` and a ``restored_from`` note in its provenance: every
file is first staged in ``<run>/.restoring.tmp/``, then renamed into the run folder, the receipt
last. A run that finished training (or is found finished and not yet stored) is stored
(:func:`store`): a temp folder inside the cache root is filled with hard links and an
``entry.json`` manifest (every file's SHA-256), then renamed into place in one step; when the
identity is already there the loser discards its temp folder. Readers only open folders named by
a full identity, so they never see half an entry.

A kill at any moment (SIGKILL: no cleanup runs) loses nothing. The next run in that folder takes
back an interrupted restore (:func:`resumable`) and restores again; the next store, and ``introspect
cache prune``, remove the temp folders of writers that are gone (:func:`dead`); the next run of a
finished identity the cache lacks stores it. ``tests/test_runcache_kills.py`` kills a store and a
restore after each of their file operations (:func:`_done`).

Nothing here may stop a run: a damaged entry, an unreadable or unwritable cache folder, an entry
of another layout is one line on the log, and the run trains (or is not stored).
"""
from __future__ import annotations

import copy
import errno
import hashlib
import json
import os
import platform
import re
import shutil
import signal
import tempfile
import time
from pathlib import Path

# checkpoint and provenance import torch: imported where used, so that `introspect cache list` and
# `prune` start in a fraction of a second
from .runfolder import CONFIG, HISTORY, METRICS, NAME, PREVIOUS, PROGRESS, RECEIPT, SUPERSEDED
from .runfolder import MACHINE_KEYS as MACHINE

LAYOUT = 1  # entry.json's "layout"; an entry of another layout is ignored (listed as such)
ENV = "INTROSPECT_CACHE"  # the cache folder; "off" turns restoring and storing off
DEFAULT = ".introspect/cache"  # params.yaml's cache.dir (relative to the working directory)
ENTRY = "entry.json"
FILES = (NAME, HISTORY, METRICS)  # what a restored run needs besides its config
ID = re.compile(r"^[0-9a-f]{64}$")
STAGING = ".restoring.tmp"  # inside a run folder: a restore's files before they are renamed into place
COMMIT = (*FILES, CONFIG, RECEIPT)  # a restore's files, in the order they are renamed: the receipt last
# What a run writes into its folder (runfolder.RUN_FILES less explanations and evaluation, and progress):
# a temp file of one of these (".<name>.*.tmp") at the start of a run was left by a killed writer.
WRITTEN = (CONFIG, NAME, HISTORY, METRICS, RECEIPT, PROGRESS)
TEMP = ".tmp-"  # the cache root's temp folders: .tmp-<pid>@<host>+<what>
OWNER = re.compile(r"^\.tmp-(\d+)@([^+]*)\+")
DEAD_AFTER = 3600.0  # seconds without a change after which a temp folder's writer is taken to be gone (any host)
KILL_AFTER = "INTROSPECT_KILL_AFTER"  # fault injection (tests only): see _done


class CacheError(Exception):
    """The cache folder itself cannot be used (a file in its place, unreadable): one line naming it."""


def settings(given: str | os.PathLike | None = None) -> tuple[Path | None, bool]:
    """(cache folder or None, restore at all): ``given`` (a --cache option), else $INTROSPECT_CACHE,
    else no cache folder (a run is still restored from its own superseded/ copies); "off": neither
    the cache nor superseded/ copies are used (every run trains)."""
    value = os.fspath(given) if given is not None else os.environ.get(ENV)
    if value is None or not value.strip():
        return None, True
    return (None, False) if value.strip() == "off" else (Path(value), True)


def _canonical(obj) -> bytes:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode()


def identity(cfg: dict) -> str:
    """The identity of the resolved config ``cfg``, which carries its ``provenance``."""
    body = {k: copy.deepcopy(v) for k, v in cfg.items() if k not in (*MACHINE, "provenance", "init")}
    body.get("dataset", {}).pop("path", None)
    body.get("method", {}).pop("teacher", None)
    prov = cfg.get("provenance") or {}
    learned = prov.get("learned_from") or {}
    roles = {role: learned.get(cfg[sec].get(key) if sec else cfg.get(key))
             for role, sec, key in (("teacher", "method", "teacher"), ("init", None, "init"))
             if (cfg[sec].get(key) if sec else cfg.get(key))}
    doc = {"layout": LAYOUT, "config": body, "code": prov.get("code"), "data": prov.get("data"), "learned_from": roles}
    return hashlib.sha256(_canonical(doc)).hexdigest()


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


_ops = {"pid": 0, "n": 0}


def _done() -> None:
    """One file operation of a store or a restore is done. Fault injection: with
    ``$INTROSPECT_KILL_AFTER=n`` the process kills itself (SIGKILL: no ``finally``, no cleanup) right
    after its n-th operation, so that tests/test_runcache_kills.py can stop a writer between any two
    of them. Counted per process (a forked child starts from 0)."""
    if _ops["pid"] != os.getpid():
        _ops.update(pid=os.getpid(), n=0)
    _ops["n"] += 1
    if os.environ.get(KILL_AFTER) == str(_ops["n"]):
        os.kill(os.getpid(), signal.SIGKILL)


def _save_json(obj, path: Path) -> None:
    """fileio.save_json's file, with a kill point once its temp file is written and once it is renamed."""
    from .fileio import atomic_write, json_bytes

    text = json_bytes(obj)
    atomic_write(path, lambda f: (f.write(text), _done()))
    _done()


def _link(src: Path, dest: Path) -> None:
    """``dest`` becomes a hard link to ``src`` (a copy where links cannot be made), replacing any
    file there in one rename: nothing ever writes through a link."""
    tmp = dest.with_name(f".{dest.name}.{os.getpid()}.link.tmp")
    tmp.unlink(missing_ok=True)
    try:
        os.link(src, tmp)
    except OSError as exc:
        if exc.errno not in (errno.EXDEV, errno.EPERM, errno.EMLINK, errno.ENOTSUP, errno.EACCES):
            raise
        shutil.copyfile(src, tmp)
    _done()
    os.replace(tmp, dest)
    _done()


def machine(device: str, bf16: bool | None) -> dict:
    """Where a run was trained: recorded with its entry, shown by ``introspect cache``."""
    import torch

    name = device
    if device == "cuda" and torch.cuda.is_available():
        name = torch.cuda.get_device_name()
    elif device == "cpu":
        name = platform.processor() or platform.machine() or "cpu"
    precision = "unknown" if bf16 is None else ("bf16" if bf16 else "fp32")
    return {"device": device, "device_name": name, "precision": precision, "torch": torch.__version__,
            "host": platform.node()}


# --------------------------------------------------------------------------------------------- reading
def _entry(path: Path) -> dict:
    """An entry's manifest, checked: ValueError with the reason when it cannot be used."""
    try:
        meta = json.loads((path / ENTRY).read_text())
    except FileNotFoundError:
        raise ValueError(f"no {ENTRY}") from None
    except (OSError, ValueError) as exc:
        raise ValueError(f"{ENTRY} unreadable ({type(exc).__name__})") from None
    if not isinstance(meta, dict) or meta.get("layout") != LAYOUT:
        raise LookupError(f"layout {meta.get('layout') if isinstance(meta, dict) else '?'!r}, not {LAYOUT}")
    return meta


def verify(path: Path) -> dict:
    """An entry's manifest after every file was checked against it (size and SHA-256) and its
    checkpoint's own checksum; ValueError (damaged) or LookupError (another layout) otherwise."""
    meta = _entry(path)
    if meta.get("identity") != path.name:
        raise ValueError(f"{ENTRY} names identity {str(meta.get('identity'))[:12]}")
    files = meta.get("files") or {}
    for name in FILES:
        want = files.get(name) or {}
        try:
            size = (path / name).stat().st_size
        except OSError:
            raise ValueError(f"{name} missing") from None
        if size != want.get("bytes"):
            raise ValueError(f"{name} has {size} bytes, not {want.get('bytes')} (truncated or altered)")
        if _sha256(path / name) != want.get("sha256"):
            raise ValueError(f"{name}: SHA-256 mismatch (altered)")
    from .checkpoint import CheckpointError, read_checkpoint

    try:
        read_checkpoint(path / NAME)
    except CheckpointError as exc:
        raise ValueError(str(exc)) from None
    return meta


def _superseded_hit(out: Path, ident: str, log, name: str) -> Path | None:
    """The newest whole copy of this identity in ``out/superseded/`` whose checkpoint verifies."""
    from .checkpoint import CheckpointError, read_checkpoint

    try:
        copies = sorted((p for p in (out / SUPERSEDED).iterdir() if p.is_dir()), reverse=True)
    except OSError:
        return None
    for copy_ in copies:
        if not all((copy_ / f).is_file() for f in (*FILES, "config.json")):
            continue
        try:
            if identity(json.loads((copy_ / "config.json").read_text())) != ident:
                continue
        except (OSError, ValueError, KeyError, AttributeError, TypeError):
            continue
        try:
            read_checkpoint(copy_ / NAME)
        except CheckpointError as exc:
            print(f"[{name}] run cache: {exc}: that copy is skipped", file=log, flush=True)
            continue
        return copy_
    return None


def lookup(cfg: dict, out: Path, root: Path | None, log, name: str, enabled: bool = True) -> dict | None:
    """Restore the run ``cfg`` (resolved, with provenance) into ``out`` from a verified copy of its
    identity and return its metrics; None (the run trains) when there is none."""
    if not enabled:
        return None
    ident = identity(cfg)
    source, meta = _superseded_hit(out, ident, log, name), None
    if source is None and root is not None:
        path = root / ident
        try:
            present = path.is_dir()
        except OSError as exc:
            print(f"[{name}] run cache {root}: cannot be read ({exc.strerror}); training without it", file=log, flush=True)
            return None
        if present:
            try:
                meta = verify(path)
                source = path
            except LookupError as exc:
                print(f"[{name}] run cache: entry {ident[:12]} has another {exc}: ignored, training", file=log, flush=True)
            except ValueError as exc:
                gone = _discard(root, path)  # so that this run's own entry can take its place
                print(f"[{name}] run cache: entry {ident[:12]} is damaged ({exc}): {'removed' if gone else 'skipped'}, "
                      "training", file=log, flush=True)
    if source is None:
        return None
    try:
        return _restore(cfg, out, source, ident, meta, log, name)
    except OSError as exc:  # e.g. an entry pruned while we linked it: train instead
        print(f"[{name}] run cache: restoring from {source} failed ({getattr(exc, 'strerror', None) or exc}): training", file=log, flush=True)
        _undo(out)
        return None


def _temp_name(what: str) -> str:
    """A temp folder's name in the cache root, naming its writer (process and host) for :func:`dead`."""
    return f"{TEMP}{os.getpid()}@{platform.node()}+{what}"


def _discard(root: Path, path: Path) -> bool:
    """Take an entry out of the cache in one step (renamed to a temp name), then delete it."""
    doomed = root / _temp_name(f"discard-{path.name}")
    try:
        os.rename(path, doomed)
    except OSError:
        return False
    _done()
    shutil.rmtree(doomed, ignore_errors=True)
    _done()
    return True


def _restore(cfg: dict, out: Path, source: Path, ident: str, meta: dict | None, log, name: str) -> dict:
    """Stage every file of the run in ``out/.restoring.tmp/``, then rename them into ``out``, the
    receipt last; a kill midway leaves the staging folder, which :func:`resumable` then takes back
    with whatever the renames had moved."""
    from .provenance import checkpoint_digest

    stage = out / STAGING
    out.mkdir(parents=True, exist_ok=True)
    shutil.rmtree(stage, ignore_errors=True)  # one left by a process that died (resumable() took it back)
    stage.mkdir()
    _done()
    for f in FILES:
        _link(source / f, stage / f)
    where = (meta or {}).get("trained") or {}
    note = {"path": str(source), "identity": ident, "checkpoint": checkpoint_digest(stage),
            "kind": "cache" if meta is not None else "superseded", "trained": where}
    cfg["provenance"] = {**cfg["provenance"], "restored_from": note}
    _save_json(cfg, stage / "config.json")
    _save_json(cfg["provenance"], stage / RECEIPT)
    metrics = json.loads((stage / "metrics.json").read_text())
    if (out / PREVIOUS).exists():  # a previous epoch of some other run: never a fallback for this one
        (out / PREVIOUS).unlink()
        _done()
    for f in COMMIT:
        os.replace(stage / f, out / f)
        (stage / f).unlink(missing_ok=True)  # still there when out / f was a link to the same file: rename() left both
        _done()
    stage.rmdir()
    _done()
    on = f", trained on {where.get('device_name', where.get('device'))} {where.get('precision', '')}".rstrip() if where else ""
    print(f"[{name}] restored, not trained: identity {ident[:12]} from {source}{on}", file=log, flush=True)
    return metrics


def _undo(out: Path) -> bool:
    """Take back a restore into ``out`` that stopped midway: its staging folder and what its renames
    had already moved into ``out`` (the staging folder still holds the receipt, renamed last, while
    they run). True when files of a half run were taken out of ``out``."""
    stage = Path(out) / STAGING
    try:
        staged = set(os.listdir(stage))
    except OSError:
        return False
    moved = [f for f in COMMIT if f not in staged] if RECEIPT in staged else []
    if moved:
        for f in (*moved, PREVIOUS):
            (Path(out) / f).unlink(missing_ok=True)
    shutil.rmtree(stage, ignore_errors=True)
    return bool(moved)


def _tidy(out: Path) -> list[str]:
    """Delete the temp files that writers killed in ``out`` left (``.history.parquet.*.tmp``, a
    restore's ``.checkpoint.pt.<pid>.link.tmp``): a run starting in its folder is the only writer
    there. Returns their names."""
    try:
        names = os.listdir(out)
    except OSError:
        return []
    stray = sorted(n for n in names if n.endswith(".tmp") and n.startswith(tuple(f".{w}." for w in WRITTEN)))
    for n in stray:
        Path(out, n).unlink(missing_ok=True)
    return stray


def resumable(state: dict | None, out: Path, log, name: str) -> dict | None:
    """What a run starting in ``out`` may resume from, given ``state``, its newest checkpoint that
    verifies (:func:`introspect.checkpoint.load_latest`); first the leftovers of killed writers are
    removed. None when ``out`` holds half a restore: its files are taken out and the run is
    restored (or trained) again. A folder with a checkpoint and no config.json is such a half too
    (a restore of an earlier version, which wrote config.json after the checkpoint; a run that
    trains writes config.json first). A restored run's checkpoint holds the config of the clone
    that trained it (its folders); this clone's is its ``config.json``: ``state`` is returned with
    that config when the checkpoint is the one restored, so that the run is seen as this clone's
    own (and not moved aside)."""
    from .provenance import checkpoint_digest

    out = Path(out)
    stray = _tidy(out)
    if stray:
        print(f"[{name}] removed {', '.join(stray)}: left in {out} by a killed writer", file=log, flush=True)
    staged = (out / STAGING).is_dir()
    if _undo(out):
        print(f"[{name}] a restore into {out} was interrupted: the files it had moved there are taken back, "
              "the run is restored (or trained) again", file=log, flush=True)
        return None
    if staged:
        print(f"[{name}] removed the staging folder of an interrupted restore in {out}", file=log, flush=True)
    if state is None:
        return None
    try:
        cfg = json.loads((out / "config.json").read_text())
    except FileNotFoundError:
        print(f"[{name}] {out} holds a checkpoint without config.json (an interrupted restore): not resumed, "
              "the run is restored (or trained) again", file=log, flush=True)
        return None
    except (OSError, ValueError):
        return state
    note = (cfg.get("provenance") or {}).get("restored_from") if isinstance(cfg, dict) else None
    if not note or note.get("checkpoint") != checkpoint_digest(out):
        return state
    return {**state, "config": cfg}


# --------------------------------------------------------------------------------------------- writing
def store(cfg: dict, out: Path, root: Path | None, log, name: str, where: dict) -> Path | None:
    """Store the finished run in ``out`` as its identity's entry (hard links), unless it is there;
    first remove the temp folders of writers that are gone (:func:`dead`). ``where`` it was trained
    (:func:`machine`); a restored run's own note says where, when it has one."""
    from .provenance import checkpoint_digest

    if root is None:
        return None
    ident = identity(cfg)
    final = root / ident
    try:
        swept = sweep(root)
        if swept:
            print(f"[{name}] run cache: removed {len(swept)} temp folder(s) of writers that are gone "
                  f"({', '.join(swept)})", file=log, flush=True)
        if final.is_dir():
            return final
        root.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(dir=root, prefix=_temp_name("store-")))
        _done()
    except CacheError as exc:
        print(f"[{name}] {exc}; the run is not stored", file=log, flush=True)
        return None
    except OSError as exc:
        print(f"[{name}] run cache {root}: cannot be written ({exc.strerror or exc}); the run is not stored", file=log, flush=True)
        return None
    try:
        note = (json.loads((out / "config.json").read_text()).get("provenance") or {}).get("restored_from") or {}
    except (OSError, ValueError, AttributeError):
        note = {}
    where = note.get("trained") or where
    try:
        files = {}
        for f in FILES:
            _link(out / f, tmp / f)
            files[f] = {"bytes": (tmp / f).stat().st_size, "sha256": _sha256(tmp / f)}
        meta = {"layout": LAYOUT, "identity": ident, "files": files, "config": cfg,
                "checkpoint": checkpoint_digest(tmp), "run": run_name(cfg), "trained": where,
                "stored_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "stored_from": str(Path(out).resolve())}
        _save_json(meta, tmp / ENTRY)
        os.chmod(tmp, 0o777 & ~_umask())
        _done()
        try:
            os.rename(tmp, final)  # one step: a reader sees no entry or a whole one
        except OSError as exc:
            if exc.errno not in (errno.EEXIST, errno.ENOTEMPTY):
                raise
            shutil.rmtree(tmp, ignore_errors=True)  # another job stored this identity first: keep theirs
            _done()
            return final
        _done()
        print(f"[{name}] stored in the run cache as {ident[:12]}", file=log, flush=True)
        return final
    except OSError as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        print(f"[{name}] run cache {root}: cannot be written ({exc.strerror or exc}); the run is not stored", file=log, flush=True)
        return None


def add(run: Path, root: Path, log) -> Path | None:
    """Store a run folder finished before (by an earlier version, or with the cache off) under the
    identity its config.json records; the device it was trained on is read from its checkpoint,
    its precision is unknown. None (one line on ``log``) when it is not a whole finished run."""
    from .checkpoint import CheckpointError, read_checkpoint

    run = Path(run)
    try:
        missing = [f for f in COMMIT if not (run / f).is_file()]
        if missing or (run / STAGING).exists():
            why = f"no {', '.join(missing)}" if missing else "a restore into it was interrupted"
            raise ValueError(f"not a whole finished run: {why}; run `introspect train` on it again")
        cfg = json.loads((run / "config.json").read_text())
        device = read_checkpoint(run / NAME).get("rng", {}).get("device", "cpu")
        name = " ".join(f"{k}={v}" for k, v in run_name(cfg).items())
    except (OSError, ValueError, KeyError, TypeError, AttributeError, CheckpointError) as exc:
        print(f"{run}: not added ({exc})", file=log, flush=True)
        return None
    return store(cfg, run, root, log, name, machine(device, None) | {"device_name": device})


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def run_name(cfg: dict) -> dict:
    return {"method": cfg["method"]["name"], "dataset": cfg["dataset"]["name"], "model": cfg["model"]["name"],
            "seed": cfg["seed"], "epochs": cfg["epochs"]}


# --------------------------------------------------------------------------------------------- managing
def _folders(root: Path) -> list[Path]:
    """The folders directly in the cache folder ``root``, sorted ([] when it does not exist yet);
    CacheError, one line naming it, when it cannot be used."""
    try:
        with os.scandir(root) as found:
            return sorted(Path(e.path) for e in found if e.is_dir())
    except FileNotFoundError:
        return []
    except NotADirectoryError:
        raise CacheError(f"run cache {root}: not a folder (a file is in its place, or in its path)") from None
    except OSError as exc:
        raise CacheError(f"run cache {root}: cannot be read ({exc.strerror or exc})") from None


def check(root: Path) -> None:
    """CacheError when the cache folder ``root`` cannot be used (a missing one is made by the first store)."""
    _folders(root)


def _size(path: Path) -> int:
    return sum(f.stat().st_size for f in path.iterdir())


def dead(path: Path, now: float | None = None) -> bool:
    """Whether the writer of the cache's temp folder ``path`` is gone: a process of this host that no
    longer runs, or (a writer on another host, or a folder named by an earlier version) nothing in
    the folder changed for DEAD_AFTER seconds, an hour, far longer than a store of any run takes."""
    m = OWNER.match(path.name)
    if m and m.group(2) == platform.node():
        try:
            os.kill(int(m.group(1)), 0)
        except ProcessLookupError:
            return True
        except PermissionError:  # alive, another user's
            pass
    try:
        newest = max([path.stat().st_mtime, *(f.stat().st_mtime for f in path.iterdir())])
    except OSError:  # removed meanwhile (another sweep): nothing to do
        return False
    return (time.time() if now is None else now) - newest > DEAD_AFTER


def temp_folders(root: Path) -> list[Path]:
    """The temp folders in the cache folder ``root``: stores and removals under way or killed."""
    return [p for p in _folders(root) if p.name.startswith(TEMP)]


def sweep(root: Path, dry_run: bool = False, now: float | None = None) -> list[str]:
    """Delete the temp folders of writers that are gone (:func:`dead`); return their names."""
    gone = [p for p in temp_folders(root) if dead(p, now)]
    for p in [] if dry_run else gone:
        shutil.rmtree(p, ignore_errors=True)
        _done()
    return [p.name for p in gone]


def entries(root: Path) -> tuple[list[dict], list[str]]:
    """(entries, notes): every whole entry of ``root`` (its manifest, plus ``path``, ``bytes`` and
    ``mtime``), and a line for each folder that is not one (another layout, no manifest, unreadable).
    CacheError when ``root`` itself cannot be read."""
    found, notes = [], []
    for path in (p for p in _folders(root) if ID.match(p.name)):
        try:
            meta = _entry(path)
            found.append({**meta, "path": path, "bytes": _size(path), "mtime": (path / ENTRY).stat().st_mtime})
        except (ValueError, LookupError) as exc:
            notes.append(f"{path.name[:12]}: ignored ({exc})")
        except OSError as exc:  # unreadable, or pruned while we looked
            notes.append(f"{path.name[:12]}: ignored (cannot be read: {exc.strerror or exc})")
    return found, notes


def referenced(entry: dict, restored: set[str]) -> bool:
    """Whether a run folder may use ``entry``: one of its files has another hard link (a run folder,
    a superseded copy, DVC's cache: anywhere on this file system), or its identity is in
    ``restored`` (:func:`restored_identities`: run folders that record it, restored by a copy
    across file systems)."""
    for f in FILES:
        try:
            if (entry["path"] / f).stat().st_nlink > 1:
                return True
        except OSError:
            pass
    return entry["identity"] in restored


def restored_identities(results: list[Path]) -> set[str]:
    """The identities that run folders (and their superseded copies) under ``results`` record in
    their config.json's ``restored_from``."""
    found = set()
    for top in results:
        for cfg_path in Path(top).rglob("config.json"):
            try:
                note = (json.loads(cfg_path.read_text()).get("provenance") or {}).get("restored_from") or {}
            except (OSError, ValueError, AttributeError):
                continue
            if isinstance(note, dict) and note.get("identity"):
                found.add(note["identity"])
    return found


UNITS = {"": 1, "b": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40}
SPANS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


def parse_size(text: str) -> int:
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([kmgtb]?)i?b?\s*", text.lower())
    if not m:
        raise ValueError(f"{text!r} is not a size (e.g. 500M, 2G)")
    return int(float(m.group(1)) * UNITS[m.group(2)])


def parse_age(text: str) -> float:
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([smhdw])\s*", text.lower())
    if not m:
        raise ValueError(f"{text!r} is not an age (e.g. 30d, 12h, 2w)")
    return float(m.group(1)) * SPANS[m.group(2)]


def human(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} TiB"


def listing(root: Path, verify_files: bool = False) -> tuple[str, int]:
    """``introspect cache list``: (one line per entry, the temp folders and the total; how many
    entries are damaged). With ``verify_files`` every entry is checked (:func:`verify`: sizes,
    SHA-256, the checkpoint's checksum) and marked; otherwise none is (0 damaged)."""
    found, notes = entries(root)
    temps = temp_folders(root)
    lines, damaged = [f"run cache {root}: {len(found)} entries"], 0
    if found:
        lines.append(f"{'identity':12s}  {'method':14s} {'dataset':9s} {'model':9s} {'seed':>4s} {'epochs':>6s} "
                     f"{'size':>10s}  {'stored (UTC)':20s}  trained on" + ("  |  check" if verify_files else ""))
    for e in sorted(found, key=lambda e: e.get("stored_at", "")):
        r, t = e.get("run") or {}, e.get("trained") or {}
        on = f"{t.get('device_name', t.get('device', '?'))} {t.get('precision', '?')} torch {t.get('torch', '?')} on {t.get('host', '?')}"
        check = ""
        if verify_files:
            try:
                verify(e["path"])
                check = "  |  verified"
            except (ValueError, LookupError) as exc:
                damaged += 1
                check = f"  |  DAMAGED: {exc}"
        lines.append(f"{e['identity'][:12]}  {r.get('method', '?'):14s} {r.get('dataset', '?'):9s} {r.get('model', '?'):9s} "
                     f"{r.get('seed', '?'):>4} {r.get('epochs', '?'):>6} {human(e['bytes']):>10s}  "
                     f"{e.get('stored_at', '?'):20s}  {on}{check}")
    lines += [f"  {n}" for n in notes]
    if temps:
        gone = sum(1 for p in temps if dead(p))
        lines.append(f"  {len(temps)} temp folder(s) of unfinished writes: {len(temps) - gone} under way, {gone} of writers "
                     "that are gone (removed by the next store or `introspect cache prune`)")
    if verify_files:
        lines.append(f"verified {len(found) - damaged} of {len(found)} entries; {damaged} damaged" +
                     (" (a run that looks one up removes it and trains)" if damaged else ""))
    lines.append(f"total {human(sum(e['bytes'] for e in found))} (files shared by hard links with run folders count once on disk)")
    return "\n".join(lines), damaged


def prune(root: Path, results: list[Path], older_than: float | None = None, larger_than: int | None = None,
          unreferenced: bool = False, dry_run: bool = False, now: float | None = None) -> list[str]:
    """Delete the temp folders of writers that are gone (:func:`sweep`) and, when a filter is given,
    the entries that match every filter given (``unreferenced`` alone: no filter but that one) and
    that no run folder may use; return a line per folder deleted (or entry kept because a run uses it)."""
    now = time.time() if now is None else now
    lines = [f"{'would delete' if dry_run else 'deleted'} {name}: temp folder of a writer that is gone"
             for name in sweep(root, dry_run, now)]
    if older_than is None and larger_than is None and not unreferenced:
        return lines
    found, _ = entries(root)
    restored = restored_identities(results)
    for e in found:
        if older_than is not None and now - e["mtime"] < older_than:
            continue
        if larger_than is not None and e["bytes"] <= larger_than:
            continue
        r = e.get("run") or {}
        what = f"{e['identity'][:12]} ({r.get('dataset')}/{r.get('model')}/{r.get('method')} seed{r.get('seed')}, {human(e['bytes'])})"
        if referenced(e, restored):  # whatever the filters say
            lines.append(f"kept {what}: a run folder uses it")
            continue
        if not dry_run and not _discard(root, e["path"]):
            continue
        lines.append(f"{'would delete' if dry_run else 'deleted'} {what}")
    return lines
