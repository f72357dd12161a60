"""What makes a run current: its config, the code it ran and what it learned from.

A run's *provenance* is recorded with it (in its ``config.json``, its checkpoint and, last of all,
its receipt ``provenance.json``):

- ``code``: a digest of the source that defines the run: the module of its method (with every
  module of this package that module's classes inherit from or import, transitively, up to but not
  through a package's ``__init__``), the module of its model family (same rule), the module of its
  dataset's source (same rule: a source file in ``data/sources/``, with the folder reader or the
  torchvision reader it builds on) and the shared training core (:data:`CORE`, the data package's
  core among it: its registry, ``prepare`` and the device loader). Each file enters as its syntax
  tree with docstrings removed, so an
  edit of a comment, a docstring or the layout changes nothing; any edit of what runs does.
- ``learned_from``: for every finished run it learned from (``method.teacher``: a teacher or an
  assistant; ``init``: a stage whose weights start it), the SHA-256 of that run's final checkpoint.
  A teacher retrained in the same folder has a new checkpoint, so its students become stale.
- ``data``: the SHA-256 of the prepared dataset it trained on.

A run whose recorded provenance differs from the one computed now is *stale*: ``introspect train``
moves it to ``superseded/`` and trains it again, the workflow reruns its job (the code digests
are a param of every train job; a retrained teacher reruns its students), and the report leaves it
out of every table and says which runs are stale and why.
"""
from __future__ import annotations

import ast
import functools
import hashlib
import importlib
import inspect
import sys
from pathlib import Path

from .checkpoint import MAGIC, NAME
from .data import DATASETS
from .methods import METHODS
from .models import MODELS
from .runfolder import RECEIPT, same_config  # RECEIPT: part of this module's interface too

PACKAGE = __name__.rsplit(".", 1)[0]
# The shared training core: every run executes these, whatever its method and model.
CORE = ("train", "checkpoint", "data", "data.base", "data.prepared", "data.device", "fileio", "config", "registry",
        "methods.runs", "methods.base", "models.layers", "runfolder")


def _source_digest(path: Path) -> str:
    """SHA-256 of a Python file's syntax tree without docstrings (comments and layout never count)."""
    tree = ast.parse(Path(path).read_text())
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        if (isinstance(body, list) and body and isinstance(body[0], ast.Expr)
                and isinstance(body[0].value, ast.Constant) and isinstance(body[0].value.value, str)):
            node.body = body[1:] or [ast.Pass()]
    return hashlib.sha256(ast.dump(tree, annotate_fields=False).encode()).hexdigest()


def _is_package_init(module) -> bool:
    return Path(getattr(module, "__file__", "") or "").name == "__init__.py"


def _own_module(obj) -> object | None:
    """The module of this package that defines ``obj`` (a module, class or function), else None."""
    name = obj.__name__ if inspect.ismodule(obj) else getattr(obj, "__module__", None)
    if not isinstance(name, str) or not (name == PACKAGE or name.startswith(PACKAGE + ".")):
        return None
    module = sys.modules.get(name) or importlib.import_module(name)
    return None if _is_package_init(module) else module


def module_closure(*objects) -> list[str]:
    """Names of this package's modules that define ``objects`` (classes: their whole MRO), and of
    every module of the package they import, transitively; package ``__init__`` files are not
    followed (the methods package imports every method)."""
    todo = []
    for obj in objects:
        todo += [_own_module(c) for c in (obj.__mro__ if inspect.isclass(obj) else (obj,))]
    seen: dict[str, object] = {}
    while todo:
        module = todo.pop()
        if module is None or module.__name__ in seen:
            continue
        seen[module.__name__] = module
        for value in vars(module).values():
            if inspect.ismodule(value) or inspect.isclass(value) or inspect.isfunction(value):
                todo.append(_own_module(value))
                if inspect.isclass(value):
                    todo += [_own_module(c) for c in value.__mro__]
    return sorted(seen)


@functools.lru_cache(maxsize=None)
def code_files(method: str, model: str, dataset: str | None = None) -> tuple[Path, ...]:
    """The source files whose content defines a run of ``method`` on ``model`` (and ``dataset``)."""
    names = set(module_closure(METHODS.get(method), MODELS.get(model), *([DATASETS.get(dataset)] if dataset else [])))
    names |= {f"{PACKAGE}.{core}" for core in CORE}
    return tuple(sorted(Path(importlib.import_module(n).__file__).resolve() for n in names))


@functools.lru_cache(maxsize=None)
def code_digest(method: str, model: str, dataset: str | None = None) -> str:
    """One SHA-256 over :func:`code_files`, each named by its path inside the package."""
    root = Path(__file__).resolve().parent
    h = hashlib.sha256()
    for path in code_files(method, model, dataset):
        h.update(f"{path.relative_to(root).as_posix()}\0{_source_digest(path)}\n".encode())
    return h.hexdigest()


# What a finished run's evaluation (introspect.evaluate) and explanations (introspect.analysis) are
# computed with besides this package's code: their versions enter the digest of those files.
TOOL_LIBRARIES = ("torch", "captum", "torchmetrics", "scipy")


@functools.lru_cache(maxsize=None)
def tool_digest(module: str) -> str:
    """SHA-256 of the code that computes a run's ``evaluation.json`` (``module="evaluate"``) or
    ``explanations.pt`` (``"analysis"``): the module and every module of this package it imports,
    transitively (:func:`module_closure`, each file as in :func:`code_digest`), and the versions of
    :data:`TOOL_LIBRARIES`. The file records it; the workflow passes it as a param of the job that
    writes the file, and the report ignores a file whose digest is not today's."""
    from importlib.metadata import PackageNotFoundError, version

    root = Path(__file__).resolve().parent
    h = hashlib.sha256()
    for name in module_closure(importlib.import_module(f"{PACKAGE}.{module}")):
        path = Path(importlib.import_module(name).__file__).resolve()
        h.update(f"{path.relative_to(root).as_posix()}\0{_source_digest(path)}\n".encode())
    for lib in TOOL_LIBRARIES:
        try:
            h.update(f"{lib}=={version(lib)}\n".encode())
        except PackageNotFoundError:
            h.update(f"{lib} absent\n".encode())
    return h.hexdigest()


def checkpoint_digest(run: Path) -> str | None:
    """The SHA-256 of a finished run's final checkpoint (its checksum line; the whole file's hash
    for a checkpoint written before checksums), or None when there is no checkpoint."""
    path = Path(run) / NAME
    try:
        with open(path, "rb") as f:
            head = f.readline()
    except OSError:
        return None
    if head.startswith(MAGIC):
        return head[len(MAGIC):].strip().decode()
    return hashlib.sha256(path.read_bytes()).hexdigest()


def learned_from(cfg: dict) -> dict[str, str | None]:
    """{folder of a run this one learns from: its checkpoint digest}: teacher/assistant and init."""
    folders = [cfg["method"].get("teacher") or "", cfg.get("init") or ""]
    return {f: checkpoint_digest(Path(f)) for f in folders if f}


def of_run(cfg: dict, data_sha256: str | None) -> dict:
    """The provenance of the resolved config ``cfg`` as things are now."""
    return {"code": code_digest(cfg["method"]["name"], cfg["model"]["name"], cfg["dataset"]["name"]),
            "learned_from": learned_from(cfg), "data": data_sha256}


def differences(recorded: dict | None, current: dict, check_data: bool = True) -> list[str]:
    """Why a run with provenance ``recorded`` is not current (empty: it is current)."""
    if not recorded:
        return ["it records no provenance (trained by an older version)"]
    why = []
    if recorded.get("code") != current["code"]:
        why.append("its code changed")
    old, new = recorded.get("learned_from") or {}, current["learned_from"]
    for folder in sorted(set(old) | set(new)):
        if old.get(folder) != new.get(folder):
            why.append(f"{folder} was retrained" if new.get(folder) else f"{folder} has no checkpoint")
    if check_data and recorded.get("data") != current["data"]:
        why.append("its dataset changed")
    return why


def dataset_digest(path: str | None, cache: dict[str, str | None]) -> str | None:
    """The SHA-256 a prepared dataset file records (read, not recomputed; kept in ``cache``), or None."""
    if path not in cache:
        import torch

        try:
            cache[path] = torch.load(path, map_location="cpu", weights_only=True, mmap=True)["sha256"]
        except Exception:
            cache[path] = None
    return cache[path]


def staleness(planned: dict, config: dict | None, datasets: dict[str, str | None]) -> list[str]:
    """Why a finished run planned as ``planned`` (its resolved config, as the plan carries it on the
    run), whose folder holds the resolved ``config``, is not current (empty: current): its config is
    not the plan's, or its code, teacher or data changed since. ``datasets``: a cache of prepared
    datasets' digests."""
    if config is None:
        return ["its config.json is missing or unreadable"]
    if not same_config(config, planned):
        return ["its config is not the plan's"]
    data = dataset_digest(config["dataset"].get("path"), datasets)
    return differences(config.get("provenance"), of_run(config, data), check_data=data is not None)
