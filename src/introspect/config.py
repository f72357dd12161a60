"""A run's configuration: defaults <- the paper's recipe for (dataset, model family) <- the user's.

The resolved config is a nested dict of plain values, saved as the run's ``config.json``:

    dataset: {name, path, augment, scaling, subset}        model: {name, dropout, in_channels}
    method:  {name, <the method's options>}
    optim:   {lr, momentum, weight_decay, milestones, gamma}
    seed, epochs, batch_size, eval_batch_size, device, init, precision, channels_last, compile
    recipe: only where the dataset's source has no recipe for the model's family: which one is used

The recipe comes from the dataset's source (``recipes`` per model family, introspect.data.base).

Every key is checked here, before anything is written: an unknown key, a wrong type or an
impossible combination is a ConfigError naming the key, what was expected and the choices.
"""
from __future__ import annotations

import ast
import copy
import json
from pathlib import Path
from typing import Any, Literal

import yaml

from .data import AUGMENTATIONS, DATASETS, SCALINGS
from .methods import METHODS
from .models import MODELS
from .registry import ConfigError, coerce
from .scales import REQUIRED

# The training recipes, declared by each dataset's source per model family (introspect.data.base):
# the paper's for CIFAR10 and MNIST (mnist5k: MNIST's very recipe object), this project's own short
# ones for digits and synthetic. This table is a read-only view of them, by (dataset, family).
RECIPES: dict[tuple[str, str], dict] = {
    (name, fam): r for name in DATASETS.names() for fam, r in DATASETS.get(name).recipes.items()}
# What a run needs from a recipe (the source's, params.yaml's recipes.<dataset>, or --set).
RECIPE_KEYS = ("epochs", "batch_size", "optim.lr", "optim.milestones", "optim.weight_decay")

DEFAULTS: dict[str, Any] = {
    # scaling: how pixels reach the model, a recipe choice (the dataset's recipe may set it);
    # subset: train on a seeded, stratified part of the training images (None: all of them)
    "dataset": {"path": None, "augment": "auto", "scaling": "standardize", "subset": None},
    "model": {"in_channels": None},
    "method": {"name": "ce"},
    "optim": {"momentum": 0.9, "gamma": 0.1},
    "seed": 0,
    "eval_batch_size": 128,  # a forward-only batch; larger ones run slower per image on a CPU (1,000: 2.6x, ResNet8)
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
DATASET = {"name": str, "path": str, "augment": Literal[("auto", *AUGMENTATIONS)], "scaling": Literal[SCALINGS]}
SECTIONS = ("dataset", "model", "method", "optim")


def family(model: str) -> str:
    return next((f for f in ("resnet", "cnn", "mlp") if model.startswith(f)), model)


def find_recipe(dataset: str, model: str) -> tuple[dict, str | None]:
    """(the recipe of ``dataset`` for ``model``, None) from the dataset's source: the model's own
    name, its family or ``*``; else (the dataset's first recipe, a note saying so): the stated
    default for pairs the paper does not train (a ResNet on MNIST); ({}, None) when the source
    declares none (params.yaml's recipes.<dataset> must then give every key, see :func:`resolve`)."""
    recipes = DATASETS.get(dataset, "dataset.name").recipes
    for key in (model, family(model), "*"):
        if key in recipes:
            return recipes[key], None
    if recipes:
        first = next(iter(recipes))
        return recipes[first], (f"default: {dataset} declares no recipe for {model} (family {family(model)}), "
                                f"so its {first!r} recipe is used; recipes.{dataset} in params.yaml (or --set) changes it")
    return {}, None


def recipe(dataset: str, model: str) -> dict:
    return find_recipe(dataset, model)[0]


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
    user.pop("recipe", None)  # a resolved config's note on its recipe (given back with a config.json): recomputed
    _check_keys(user, [*SCALARS, *SECTIONS], "")
    for sec in SECTIONS:
        if sec in user and not isinstance(user[sec], dict):
            if sec == "optim":
                raise ConfigError(f"optim: expected a mapping of keys ({', '.join(OPTIM)}), got {user[sec]!r}")
            user[sec] = {"name": user[sec]}  # "model: resnet8" is short for "model: {name: resnet8}"
    for sec in ("dataset", "model"):
        if not user.get(sec, {}).get("name"):
            raise ConfigError(f"{sec}.name: required; choices: {', '.join((DATASETS if sec == 'dataset' else MODELS).names())}")
    ds, model = user["dataset"]["name"], user["model"]["name"]
    source = DATASETS.get(ds, "dataset.name")
    MODELS.get(model, "model.name")
    base, note = find_recipe(ds, model)
    cfg = merge(merge(DEFAULTS, base), user)
    missing = [k for k in RECIPE_KEYS if _get(cfg, k) is None]
    if missing:
        raise ConfigError(f"recipes.{ds}: {ds} declares no training recipe for {model} and none is given; missing "
                          f"{', '.join(missing)} (give them in params.yaml recipes.{ds}, with --set, or as the source's recipes)")

    for k, t in SCALARS.items():
        cfg[k] = coerce(cfg[k], t, k)
    _check_keys(cfg["optim"], OPTIM, "optim.")
    cfg["optim"] = {k: coerce(cfg["optim"][k], t, f"optim.{k}") for k, t in OPTIM.items()}
    _check_keys(cfg["dataset"], [*DATASET, "subset"], "dataset.")
    d = cfg["dataset"]
    d["augment"] = coerce(d["augment"], DATASET["augment"], "dataset.augment")
    if d["augment"] == "auto":
        d["augment"] = source.augment
    d["path"] = coerce(d["path"] or f"data/processed/{ds}.pt", str, "dataset.path")
    d["scaling"] = coerce(d["scaling"], DATASET["scaling"], "dataset.scaling")
    if d["subset"] is not None and (coerce(d["subset"], int, "dataset.subset") < 1):
        raise ConfigError(f"dataset.subset: expected a number of training images >= 1 (or null: all), got {d['subset']!r}")

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
    if note:  # the stated default: in the run's config.json and, by introspect train, in its log
        cfg["recipe"] = note
    return cfg


def _get(cfg: dict, dotted: str):
    node = cfg
    for part in dotted.split("."):
        node = node.get(part) if isinstance(node, dict) else None
    return node


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


def read_yaml(path: Path) -> Any:
    """Parse a YAML (or JSON) file; a syntax error is one ConfigError line ``file:line:column: problem``."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: no such file")
    try:
        with path.open() as stream:  # a stream, so that the error marks carry the file's name
            return yaml.safe_load(stream)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"{path}:{mark.line + 1}:{mark.column + 1}" if mark else str(path)
        context = exc.context or ""
        if context and exc.context_mark and exc.context_mark is not mark:
            context += f" at line {exc.context_mark.line + 1}, column {exc.context_mark.column + 1}"
        problem = exc.problem or "not valid YAML"
        raise ConfigError(f"{where}: YAML syntax error: {problem}" + (f" ({context})" if context else "")) from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: YAML syntax error: {' '.join(str(exc).split())}") from None


# Schema errors (workflow/schemas/config.schema.yaml) in plain words: a jsonschema ValidationError
# -> "key.path[i]: expected ..., got ...". oneOf / anyOf errors are narrowed to the sub-error that
# concerns the deepest key (jsonschema's best_match) before they are put into words.

TYPE_WORDS = {"integer": "an integer", "number": "a number", "string": "a string", "boolean": "true/false",
              "array": "a list", "object": "a mapping of keys", "null": "nothing"}
PATTERN_WORDS = {"^[a-z0-9_]+$": "a name of lowercase letters, digits and _",
                 "^[a-z_]+(\\.[a-z_]+)*$": "a dotted key of lowercase words, e.g. optim.lr"}
SCALED = "{quick: ..., paper: ...}"


def key_path(parts) -> str:
    """``["seeds", 1]`` -> ``seeds[1]``; ``["tables", "t1", "models"]`` -> ``tables.t1.models``."""
    out = ""
    for part in parts:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def _a_number(schema: dict) -> str:
    """"an integer >= 1", "a number in (0, 1)": the bounds a schema puts on a number."""
    kind = "an integer" if schema.get("type") == "integer" else "a number"
    lo = ("(", schema["exclusiveMinimum"]) if "exclusiveMinimum" in schema else ("[", schema.get("minimum"))
    hi = (")", schema["exclusiveMaximum"]) if "exclusiveMaximum" in schema else ("]", schema.get("maximum"))
    if lo[1] is not None and hi[1] is not None:
        return f"{kind} in {lo[0]}{lo[1]}, {hi[1]}{hi[0]}"
    if lo[1] is not None:
        return f"{kind} {'>' if lo[0] == '(' else '>='} {lo[1]}"
    return f"{kind} {'<' if hi[0] == ')' else '<='} {hi[1]}"


def _alternatives(error) -> str:
    """What an anyOf / oneOf accepts, when no branch comes closer than another: "a list or {quick, paper}"."""
    words = []
    for sub in error.context:
        if sub.validator == "type":
            types = sub.validator_value if isinstance(sub.validator_value, list) else [sub.validator_value]
            scaled = sub.validator_value == "object" and set(sub.schema.get("required", [])) == set(REQUIRED)
            word = SCALED if scaled else " or ".join(TYPE_WORDS.get(t, t) for t in types)
        elif sub.validator == "pattern":
            word = PATTERN_WORDS.get(sub.validator_value, f"text matching {sub.validator_value}")
        else:
            word = sub.message
        if word not in words:
            words.append(word)
    return " or ".join(words)


def schema_problem(error) -> str:
    """One line for a jsonschema ValidationError: the exact key (list elements as [i]) and what was expected."""
    from jsonschema.exceptions import best_match

    error = best_match([error])
    path, value, schema, rule, expected = list(error.absolute_path), error.instance, error.schema, error.validator, error.validator_value
    if rule == "required":
        missing = next(k for k in expected if k not in value)
        return f"{key_path([*path, missing])}: required"
    if rule == "additionalProperties":
        allowed = set(schema.get("properties", {}))
        extra = sorted(k for k in value if k not in allowed)[0]
        return f"{key_path([*path, extra])}: unknown key; choices: {', '.join(sorted(allowed))}"
    if rule == "dependentRequired":
        key, needs = next((k, [n for n in need if n not in value]) for k, need in expected.items()
                          if k in value and any(n not in value for n in need))
        return f"{key_path([*path, key])}: given without {', '.join(needs)}; add {', '.join(needs)} or remove {key}"
    if "propertyNames" in error.schema_path and rule == "enum":  # a per-scale mapping's key: not a scale
        return f"{key_path([*path, value])}: not a scale; choices: {', '.join(map(str, expected))}"
    if "propertyNames" in error.schema_path:  # a key, not a value, is wrong
        return f"{key_path([*path, value])}: this key must be {PATTERN_WORDS.get(expected, f'text matching {expected}')}"
    where = key_path(path) or "params"
    if rule == "type":
        types = expected if isinstance(expected, list) else [expected]
        words = [TYPE_WORDS.get(t, t) for t in types]
        return f"{where}: expected {', '.join(words[:-1]) + ' or ' if len(words) > 1 else ''}{words[-1]}, got {value!r}"
    if rule == "enum":
        return f"{where}: expected one of {', '.join(map(str, expected))}, got {value!r}"
    if rule in ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"):
        return f"{where}: expected {_a_number(schema)}, got {value!r}"
    if rule == "pattern":
        return f"{where}: expected {PATTERN_WORDS.get(expected, f'text matching {expected}')}, got {value!r}"
    if rule == "minItems":
        return f"{where}: expected {'a non-empty list' if expected == 1 else f'a list of at least {expected} items'}, got {value!r}"
    if rule == "uniqueItems":
        return f"{where}: expected no value twice, got {value!r}"
    if rule == "minProperties":
        return f"{where}: expected at least {expected} key{'s' * (expected > 1)}, got none"
    if rule == "maxProperties":
        return f"{where}: expected at most {expected} key{'s' * (expected > 1)}, got {', '.join(map(str, value))}"
    if rule == "oneOf" and all(set(sub) == {"required"} for sub in expected):
        keys = [k for sub in expected for k in sub["required"]]
        given = [k for k in keys if k in value]
        return f"{where}: give one of {', '.join(keys)}" + (f", not {' and '.join(given)} together" if given else "")
    if rule in ("anyOf", "oneOf") and error.context:
        return f"{where}: expected {_alternatives(error)}, got {value!r}"
    return f"{where}: {error.message}"
