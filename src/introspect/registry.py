"""One small registry used for datasets, models, explainers and methods.

An entry is a callable (class or function) registered under a name. ``build`` checks the
options a user gave against the callable's keyword parameters and their annotations, so a
typo or a wrong type becomes one readable line instead of a traceback deep in a constructor.
"""
from __future__ import annotations

import inspect
import typing
from typing import Any, Callable, Iterable


class ConfigError(ValueError):
    """A user-facing configuration error: one line naming the key, what was expected, the choices."""


class Registry:
    def __init__(self, kind: str):
        self.kind = kind
        self._entries: dict[str, Callable] = {}

    def register(self, name: str | None = None) -> Callable:
        def decorate(obj: Callable) -> Callable:
            key = name or obj.__name__.lower()
            if key in self._entries:
                raise KeyError(f"{self.kind} {key!r} is registered twice")
            self._entries[key] = obj
            return obj

        return decorate

    def names(self) -> list[str]:
        return sorted(self._entries)

    def __contains__(self, name: str) -> bool:
        return name in self._entries

    def get(self, name: str, key: str | None = None) -> Callable:
        if name not in self._entries:
            raise ConfigError(
                f"{key or self.kind}: unknown {self.kind} {name!r}; choices: {', '.join(self.names())}"
            )
        return self._entries[name]

    def options(self, name: str, skip: Iterable[str] = ()) -> dict[str, inspect.Parameter]:
        """The keyword options an entry accepts (positional context arguments excluded)."""
        params = inspect.signature(self.get(name)).parameters
        return {
            p.name: p
            for p in params.values()
            if p.kind is inspect.Parameter.KEYWORD_ONLY and p.name not in skip
        }

    def check(self, name: str, opts: dict[str, Any], prefix: str, skip: Iterable[str] = ()) -> dict:
        """Validate and coerce user options for ``name``; return them with defaults filled in."""
        known = self.options(name, skip)
        out = {}
        for k, v in opts.items():
            if k not in known:
                choices = ", ".join(sorted(known)) or "none"
                raise ConfigError(f"{prefix}.{k}: not an option of {self.kind} {name!r}; choices: {choices}")
            out[k] = coerce(v, known[k].annotation, f"{prefix}.{k}", self.get(name))
        for k, p in known.items():
            if k not in out and p.default is not inspect.Parameter.empty:
                out[k] = p.default
        return out

    def build(self, name: str, *args, **opts) -> Any:
        return self.get(name)(*args, **opts)


def coerce(value: Any, annotation: Any, key: str, owner: Callable | None = None) -> Any:
    """Coerce ``value`` to an annotation (str, int, float, bool, list[...], Literal[...])."""
    if isinstance(annotation, str) and owner is not None:
        hints = typing.get_type_hints(owner.__init__ if inspect.isclass(owner) else owner)
        annotation = hints.get(key.rsplit(".", 1)[-1], annotation)
    origin = typing.get_origin(annotation)
    if origin is typing.Literal:
        choices = typing.get_args(annotation)
        if value not in choices:
            raise ConfigError(f"{key}: expected one of {', '.join(map(str, choices))}, got {value!r}")
        return value
    if origin in (list, tuple):
        (inner,) = typing.get_args(annotation)[:1]
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{key}: expected a list of {inner.__name__}, got {value!r}")
        return [coerce(v, inner, f"{key}[{i}]") for i, v in enumerate(value)]
    if annotation is bool:
        if isinstance(value, bool):
            return value
        raise ConfigError(f"{key}: expected true or false, got {value!r}")
    if annotation is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        raise ConfigError(f"{key}: expected an integer, got {value!r}")
    if annotation is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        if isinstance(value, str):  # YAML reads 1e-4 (no dot) as a string
            try:
                return float(value)
            except ValueError:
                pass
        raise ConfigError(f"{key}: expected a number, got {value!r}")
    if annotation is str:
        if isinstance(value, str):
            return value
        raise ConfigError(f"{key}: expected a string, got {value!r}")
    return value
