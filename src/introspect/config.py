"""A run's configuration: defaults <- the paper's recipe for (dataset, model family) <- the user's.

The resolved config is a nested dict of plain values, saved as the run's ``config.json``:

    dataset: {name, path, augment}        model: {name, dropout, in_channels}
    method:  {name, <the method's options>}
    optim:   {lr, momentum, weight_decay, milestones, gamma}
    seed, epochs, batch_size, eval_batch_size, device, init, precision, channels_last, compile

Every key is checked here, before anything is written: an unknown key, a wrong type or an
impossible combination is a ConfigError naming the key, what was expected and the choices.
"""
from __future__ import annotations

import ast
import copy
import json
from typing import Any, Literal

from .data import AUGMENTATIONS, DATASETS
from .methods import METHODS
from .models import MODELS
from .registry import ConfigError, coerce

# The paper's recipes (Sec. 3, 5 and 5.1.2); weight decay is not stated: TAKD's 1e-4 for CIFAR10.
# digits and synthetic are this project's small offline sets: short recipes of our own.
RECIPES: dict[tuple[str, str], dict] = {
    ("cifar10", "resnet"): dict(epochs=160, batch_size=128, optim=dict(lr=0.1, milestones=[80, 120], weight_decay=1e-4)),
    ("cifar10", "cnn"): dict(epochs=160, batch_size=128, optim=dict(lr=0.01, milestones=[], weight_decay=1e-4)),
    ("mnist", "mlp"): dict(epochs=50, batch_size=16, optim=dict(lr=0.01, milestones=[], weight_decay=0.0)),
    ("digits", "*"): dict(epochs=20, batch_size=64, optim=dict(lr=0.05, milestones=[15], weight_decay=5e-4)),
    ("synthetic", "*"): dict(epochs=3, batch_size=32, optim=dict(lr=0.05, milestones=[], weight_decay=5e-4)),
}
# Pairs the paper does not train use the dataset's first recipe (e.g. a ResNet on MNIST).

DEFAULTS: dict[str, Any] = {
    "dataset": {"path": None, "augment": "auto"},
    "model": {"in_channels": None},
    "method": {"name": "ce"},
    "optim": {"momentum": 0.9, "gamma": 0.1},
    "seed": 0,
    "eval_batch_size": 1000,
    "device": "auto",
    "init": "",
    "precision": "auto",
    "channels_last": "auto",
    "compile": False,
}

SCALARS = {
    "seed": int,
    "epochs": int,
    "batch_size": int,
    "eval_batch_size": int,
    "device": Literal["auto", "cpu", "cuda"],
    "init": str,  # a finished run whose model weights start this one ("": random initialization)
    # GPU speed, never the recipe: bf16 autocast (weights, BatchNorm statistics and losses stay fp32),
    # channels_last memory layout, torch.compile of the model; "auto": on with CUDA, off on the CPU.
    "precision": Literal["auto", "fp32", "bf16"],
    "channels_last": Literal["auto", "on", "off"],
    "compile": bool,
}
OPTIM = {"lr": float, "momentum": float, "weight_decay": float, "milestones": list[int], "gamma": float}
DATASET = {"name": str, "path": str, "augment": Literal[("auto", *AUGMENTATIONS)]}
SECTIONS = ("dataset", "model", "method", "optim")


def family(model: str) -> str:
    return next((f for f in ("resnet", "cnn", "mlp") if model.startswith(f)), model)


def recipe(dataset: str, model: str) -> dict:
    for key in ((dataset, family(model)), (dataset, "*")):
        if key in RECIPES:
            return RECIPES[key]
    return next(r for (d, _), r in RECIPES.items() if d == dataset)


def parse_value(text: str) -> Any:
    """A --set value: JSON (numbers, true/false, lists), else a Python literal, else the string."""
    for parse in (json.loads, ast.literal_eval):
        try:
            return parse(text)
        except (ValueError, SyntaxError):
            pass
    return text


def apply_sets(cfg: dict, assignments: list[str]) -> dict:
    """Apply ``key=value`` strings (dotted keys for sections: ``optim.lr=0.05``)."""
    cfg = copy.deepcopy(cfg)
    for item in assignments:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ConfigError(f"--set {item!r}: expected key=value, e.g. optim.lr=0.05")
        *path, leaf = key.split(".")
        node = cfg
        for part in path:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise ConfigError(f"{key}: {part} is not a section")
        node[leaf] = parse_value(value)
    return cfg


def merge(base: dict, over: dict) -> dict:
    out = copy.deepcopy(base)
    for k, v in over.items():
        out[k] = merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else copy.deepcopy(v)
    return out


def _check_keys(section: dict, known, prefix: str) -> None:
    for k in section:
        if k not in known:
            raise ConfigError(f"{prefix}{k}: unknown key; choices: {', '.join(sorted(known))}")


def resolve(user: dict) -> dict:
    """Validate ``user`` (nested dict) and fill in everything else; return the full config."""
    user = copy.deepcopy(user)
    _check_keys(user, [*SCALARS, *SECTIONS], "")
    for sec in SECTIONS:
        if sec in user and not isinstance(user[sec], dict):
            user[sec] = {"name": user[sec]}  # "model: resnet8" is short for "model: {name: resnet8}"
    for sec in ("dataset", "model"):
        if not user.get(sec, {}).get("name"):
            raise ConfigError(f"{sec}.name: required; choices: {', '.join((DATASETS if sec == 'dataset' else MODELS).names())}")
    ds, model = user["dataset"]["name"], user["model"]["name"]
    source = DATASETS.get(ds, "dataset.name")
    MODELS.get(model, "model.name")
    cfg = merge(merge(DEFAULTS, recipe(ds, model)), user)

    for k, t in SCALARS.items():
        cfg[k] = coerce(cfg[k], t, k)
    _check_keys(cfg["optim"], OPTIM, "optim.")
    cfg["optim"] = {k: coerce(cfg["optim"][k], t, f"optim.{k}") for k, t in OPTIM.items()}
    _check_keys(cfg["dataset"], DATASET, "dataset.")
    d = cfg["dataset"]
    d["augment"] = coerce(d["augment"], DATASET["augment"], "dataset.augment")
    if d["augment"] == "auto":
        d["augment"] = source.augment
    d["path"] = coerce(d["path"] or f"data/processed/{ds}.pt", str, "dataset.path")

    m = cfg["model"]
    in_ch = m.pop("in_channels")
    if in_ch is not None and coerce(in_ch, int, "model.in_channels") != source.channels:
        raise ConfigError(f"model.in_channels: {model} for {in_ch} channels cannot read {ds}, which has {source.channels}")
    cfg["model"] = {"name": model, **MODELS.check(model, {k: v for k, v in m.items() if k != "name"}, "model")}
    cfg["model"]["in_channels"] = source.channels

    meth = cfg["method"]
    METHODS.get(meth["name"], "method.name")
    cfg["method"] = {"name": meth["name"], **METHODS.check(meth["name"], {k: v for k, v in meth.items() if k != "name"}, "method")}

    _check_ranges(cfg)
    return cfg


def _check_ranges(cfg: dict) -> None:
    o = cfg["optim"]
    checks = [
        ("epochs", cfg["epochs"] >= 1, "an integer >= 1"),
        ("batch_size", cfg["batch_size"] >= 1, "an integer >= 1"),
        ("eval_batch_size", cfg["eval_batch_size"] >= 1, "an integer >= 1"),
        ("optim.lr", o["lr"] > 0, "a number > 0"),
        ("optim.momentum", 0 <= o["momentum"] < 1, "a number in [0, 1)"),
        ("optim.weight_decay", o["weight_decay"] >= 0, "a number >= 0"),
        ("optim.gamma", 0 < o["gamma"] <= 1, "a number in (0, 1]"),
        ("optim.milestones", o["milestones"] == sorted(set(o["milestones"])) and all(m > 0 for m in o["milestones"]),
         "increasing positive epochs"),
        ("model.dropout", 0 <= cfg["model"].get("dropout", 0) < 1, "a number in [0, 1)"),
    ]
    for key, ok, expected in checks:
        if not ok:
            node = cfg
            for part in key.split("."):
                node = node[part]
            raise ConfigError(f"{key}: expected {expected}, got {node!r}")
