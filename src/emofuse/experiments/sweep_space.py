"""A sweep's search space (the YAML `emofuse sweep --space` reads): ranges and choices over dotted config keys, checked
against the base config, and the config of one point."""

from __future__ import annotations

import copy
from itertools import product
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from emofuse.config.loading import config_from_dict, read_yaml_mapping
from emofuse.config.overrides import set_dotted
from emofuse.config.schema import ExperimentConfig
from emofuse.core.registry import ConfigError


SAMPLERS = ("grid", "tpe")
FIXED_SECTIONS = ("name", "seed", "data", "features", "protocol")  # built once per sweep: not searchable


class Range(BaseModel):
    """A numeric range for TPE: integers when low, high (and step) are integers."""

    model_config = ConfigDict(extra="forbid")
    low: int | float
    high: int | float
    log: bool = False
    step: int | float | None = Field(None, gt=0)

    @model_validator(mode="after")
    def _check(self) -> Range:
        if self.high <= self.low:
            raise ValueError(f"high ({self.high}) must be above low ({self.low})")
        if self.log and self.low <= 0:
            raise ValueError("a log range needs low > 0")
        if self.log and self.step is not None:
            raise ValueError("log and step cannot be combined")
        return self

    @property
    def is_int(self) -> bool:
        return all(isinstance(v, int) for v in (self.low, self.high)) and (self.step is None or isinstance(self.step, int))


class SearchSpace(BaseModel):
    model_config = ConfigDict(extra="forbid")
    description: str = ""
    params: dict[str, list[Any] | Range] = Field(min_length=1)

    @model_validator(mode="after")
    def _check(self) -> SearchSpace:
        for key, spec in self.params.items():
            if isinstance(spec, list) and not spec:
                raise ValueError(f"params.{key}: an empty list of values")
        return self

    def grid(self) -> list[dict[str, Any]]:
        ranges = [k for k, v in self.params.items() if isinstance(v, Range)]
        if ranges:
            raise ConfigError(f"the grid sampler needs a list of values for every parameter; ranges given for {ranges} "
                              f"(use --sampler tpe)")
        keys = list(self.params)
        return [dict(zip(keys, values)) for values in product(*(self.params[k] for k in keys))]


def load_space(path: str | Path) -> SearchSpace:
    return config_from_dict(read_yaml_mapping(path, "space file"), str(path), SearchSpace)


def _has_key(tree: dict, dotted: str) -> bool:
    node: Any = tree
    for k in dotted.split("."):
        if not isinstance(node, dict) or k not in node:
            return False
        node = node[k]
    return True


def apply_params(base: dict, params: dict[str, Any], source: str = "sweep") -> ExperimentConfig:
    tree = copy.deepcopy(base)
    for key, value in params.items():
        set_dotted(tree, key, value)
    return config_from_dict(tree, source)


def check_space(space: SearchSpace, base: dict, source: str) -> None:
    """Every key must exist in the resolved base config, be searchable and accept each of its values."""
    for key, spec in space.params.items():
        where = f"{source}: parameter '{key}'"
        if key.split(".")[0] in FIXED_SECTIONS:
            raise ConfigError(f"{where}: keys under {list(FIXED_SECTIONS)} are fixed for a sweep (features and folds "
                              f"are built once); sweep separate configs instead")
        if not _has_key(base, key):
            raise ConfigError(f"{where} is not a key of the config (write it in the config first, e.g. "
                              f"loss.params.gamma as {{audio: 1.0, visual: 1.0}} to search loss.params.gamma.audio)")
        values = spec if isinstance(spec, list) else [spec.low, spec.high]
        for value in values:
            try:
                apply_params(base, {key: value}, f"{source}: {key}={value!r}")
            except ConfigError as err:
                raise ConfigError(str(err)) from None


def _suggest(trial, space: SearchSpace) -> dict[str, Any]:
    out = {}
    for key, spec in space.params.items():
        if isinstance(spec, list):
            out[key] = trial.suggest_categorical(key, spec)
        elif spec.is_int:
            out[key] = trial.suggest_int(key, spec.low, spec.high, step=spec.step or 1, log=spec.log)
        else:
            out[key] = trial.suggest_float(key, spec.low, spec.high, step=spec.step, log=spec.log)
    return out
