"""Named registries of interchangeable parts (encoders, fusions, losses, extractors).

Each part declares a pydantic ``Params`` model, so a config naming a part is validated when it is
loaded (unknown or ill-typed parameters fail before any work starts), and adding a part is one new
file plus a ``@REGISTRY.register("name")`` line.
"""

from __future__ import annotations

import difflib
import re
import typing
from typing import Any, Callable, Generic, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError

T = TypeVar("T")


class NoParams(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ConfigError(ValueError):
    """A configuration names something unknown or holds a bad value."""


def did_you_mean(word: str, candidates, dotted_prefix: str = "") -> str:
    """`` (did you mean 'x'?)`` for the candidate a misspelt ``word`` most likely meant (difflib's similarity ratio
    at least 0.6), or ``""`` when none is close."""
    close = difflib.get_close_matches(str(word), [str(c) for c in candidates], n=1, cutoff=0.6)
    return f" (did you mean '{dotted_prefix}{close[0]}'?)" if close else ""


def _model_in(annotation: Any) -> type[BaseModel] | None:
    """The pydantic model an annotation holds (``X``, ``X | None``), if any."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    return next((m for m in map(_model_in, typing.get_args(annotation)) if m is not None), None)


def keys_at(schema: type[BaseModel] | None, loc: tuple) -> list[str]:
    """The keys the mapping at ``loc`` (a pydantic error location) of ``schema`` may hold; [] where not a model."""
    annotation: Any = schema
    for part in loc:
        model = _model_in(annotation)
        if model is not None and part in model.model_fields:
            annotation = model.model_fields[part].annotation
        elif typing.get_origin(annotation) in (dict, list, tuple):  # a mapping's key or a list's index
            annotation = typing.get_args(annotation)[-1]
        else:
            return []
    model = _model_in(annotation)
    return list(model.model_fields) if model is not None else []


def format_validation_error(err: ValidationError, prefix: str = "", schema: type[BaseModel] | None = None) -> str:
    """One clause per problem, naming the dotted key; an unknown key gets the closest known key of ``schema``."""
    lines = []
    for e in err.errors():
        loc = ".".join(str(p) for p in (prefix, *e["loc"]) if p != "")
        if e["type"] == "extra_forbidden":
            parent = "".join(f"{p}." for p in (prefix, *e["loc"][:-1]) if p != "")
            lines.append(f"unknown key '{loc}'{did_you_mean(e['loc'][-1], keys_at(schema, e['loc'][:-1]), parent)}")
        elif not loc and "error" in e.get("ctx", {}):  # a whole-config check: its message names the keys
            lines.append(str(e["ctx"]["error"]))
        elif e["type"] == "literal_error":  # one of fixed names: the closest one
            options = re.findall(r"'([^']*)'", e["ctx"]["expected"])
            lines.append(f"'{loc}': {e['msg']} (got {e.get('input')!r}){did_you_mean(e.get('input'), options)}")
        else:
            lines.append(f"'{loc}': {e['msg']} (got {e.get('input')!r})")
    return "; ".join(lines)


class Strict(BaseModel):
    """A config section: unknown keys are errors."""

    model_config = ConfigDict(extra="forbid")


class Part(Strict):
    """A registered component and its parameters."""

    name: str
    params: dict[str, Any] = Field(default_factory=dict)


def validated(tree: Any, source: str, schema: type[BaseModel]) -> Any:
    """``tree`` validated against ``schema``; every problem a :class:`ConfigError` that starts with ``source``."""
    try:
        return schema.model_validate(tree)
    except ValidationError as err:
        raise ConfigError(f"{source}: {format_validation_error(err, schema=schema)}") from None
    except ConfigError as err:
        raise ConfigError(f"{source}: {err}") from None


class Registry(Generic[T]):
    def __init__(self, kind: str):
        self.kind = kind
        self._items: dict[str, type] = {}

    def register(self, name: str) -> Callable[[type], type]:
        def deco(cls: type) -> type:
            if name in self._items:
                raise KeyError(f"{self.kind} '{name}' is registered twice")
            cls.registry_name = name
            self._items[name] = cls
            return cls

        return deco

    def names(self) -> list[str]:
        return sorted(self._items)

    def get(self, name: str) -> type:
        try:
            return self._items[name]
        except KeyError:
            raise ConfigError(
                f"unknown {self.kind} '{name}'{did_you_mean(name, self.names())}; registered: {', '.join(self.names())}"
            ) from None

    def validate_params(self, name: str, params: dict[str, Any] | None, where: str = "") -> BaseModel:
        cls = self.get(name)
        params_model = getattr(cls, "Params", NoParams)
        try:
            return params_model.model_validate(params or {})
        except ValidationError as err:
            raise ConfigError(
                f"bad parameters for {self.kind} '{name}': {format_validation_error(err, where, params_model)}"
            ) from None

    def create(self, name: str, params: dict[str, Any] | None = None, **context: Any) -> T:
        """Build a part from its validated params plus run-time context (dims, modalities, ...)."""
        cls = self.get(name)
        return cls(self.validate_params(name, params), **context)


def require_extra(extra: str, modules: tuple[str, ...], what: str) -> None:
    """A clear error naming the pip extra when an optional dependency of ``what`` is not installed."""
    import importlib

    for module in modules:
        try:
            importlib.import_module(module)
        except ImportError:
            raise ConfigError(f"{what} needs the '{extra}' extra ({module} is not installed): "
                              f"pip install 'emofuse[{extra}]'") from None
