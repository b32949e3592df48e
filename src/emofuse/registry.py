"""Named registries of interchangeable parts (encoders, fusions, losses, extractors).

Each part declares a pydantic ``Params`` model, so a config naming a part is validated when it is
loaded (unknown or ill-typed parameters fail before any work starts), and adding a part is one new
file plus a ``@REGISTRY.register("name")`` line.
"""

from __future__ import annotations

from typing import Any, Callable, Generic, TypeVar

from pydantic import BaseModel, ConfigDict, ValidationError

T = TypeVar("T")


class NoParams(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ConfigError(ValueError):
    """A configuration names something unknown or holds a bad value."""


def format_validation_error(err: ValidationError, prefix: str = "") -> str:
    lines = []
    for e in err.errors():
        loc = ".".join(str(p) for p in (prefix, *e["loc"]) if p != "")
        if e["type"] == "extra_forbidden":
            lines.append(f"unknown key '{loc}'")
        elif not loc and "error" in e.get("ctx", {}):  # a whole-config check: its message names the keys
            lines.append(str(e["ctx"]["error"]))
        else:
            lines.append(f"'{loc}': {e['msg']} (got {e.get('input')!r})")
    return "; ".join(lines)


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
                f"unknown {self.kind} '{name}'; registered: {', '.join(self.names())}"
            ) from None

    def validate_params(self, name: str, params: dict[str, Any] | None, where: str = "") -> BaseModel:
        cls = self.get(name)
        params_model = getattr(cls, "Params", NoParams)
        try:
            return params_model.model_validate(params or {})
        except ValidationError as err:
            raise ConfigError(
                f"bad parameters for {self.kind} '{name}': {format_validation_error(err, where)}"
            ) from None

    def create(self, name: str, params: dict[str, Any] | None = None, **context: Any) -> T:
        """Build a part from its validated params plus run-time context (dims, modalities, ...)."""
        cls = self.get(name)
        return cls(self.validate_params(name, params), **context)
