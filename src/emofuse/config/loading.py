"""Reading a config: YAML files, ``extends``, command-line overrides, validation against a schema, and writing one."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel

from emofuse.config.overrides import deep_merge, parse_overrides, set_dotted
from emofuse.config.schema import ExperimentConfig
from emofuse.core.registry import ConfigError, validated


def config_from_dict(tree: dict, source: str = "config", schema: type[BaseModel] = ExperimentConfig) -> Any:
    return validated(tree, source, schema)


def read_yaml_mapping(path: str | Path, what: str = "config file") -> dict:
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: {what} does not exist")
    try:
        tree = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as err:
        raise ConfigError(f"{path}: not valid YAML ({err})") from None
    except UnicodeDecodeError as err:
        raise ConfigError(f"{path}: not UTF-8 text ({err.reason} at byte {err.start})") from None
    if not isinstance(tree, dict):
        raise ConfigError(f"{path}: expected a mapping at the top level")
    return tree


def read_config_tree(path: str | Path, _seen: tuple[Path, ...] = ()) -> dict:
    """A config file's mapping with ``extends: other.yaml`` (relative to the file) merged in beneath it, so that
    configs meant to differ in one part (a method comparison) share everything else by construction."""
    path = Path(path).resolve()
    if path in _seen:
        raise ConfigError(f"{path}: `extends` loops back to itself ({' -> '.join(p.name for p in (*_seen, path))})")
    tree = read_yaml_mapping(path)
    parent = tree.pop("extends", None)
    if parent is None:
        return tree
    if not isinstance(parent, str):
        raise ConfigError(f"{path}: `extends` must be a file name, got {parent!r}")
    if not (path.parent / parent).is_file():
        raise ConfigError(f"{path}: `extends: {parent}` names a file that does not exist (relative to the config's folder)")
    return deep_merge(read_config_tree(path.parent / parent, (*_seen, path)), tree)


def load_config(path: str | Path, overrides: list[str] | None = None, schema: type[BaseModel] = ExperimentConfig) -> Any:
    """Read (following ``extends``), override and validate a YAML config against ``schema``."""
    tree = read_config_tree(path)
    for key, value in parse_overrides(overrides or []):
        set_dotted(tree, key, value)
    return config_from_dict(tree, str(path), schema)


@dataclass(frozen=True)
class OldDefault:
    """A default that changed, or a key added with a default unlike what the code did before: the value a run whose
    config.yaml lacks ``key`` was trained with."""

    key: str  # dotted, e.g. protocol.refit or model.fusion.params.heads
    value: Any
    part: str | None = None  # a part's parameter: the part's name (the entry applies only to that part)


# A run's config.yaml records every value (dump_config): every schema key, and every part's parameters, defaults
# included. A key it lacks did not exist when it was written (or, for part parameters, the run predates this record);
# such a run is loaded with the value of its time, which is today's default unless an entry here says otherwise.
# Changing a default, or adding a key whose default changes what older code did, adds an entry.
OLD_DEFAULTS: tuple[OldDefault, ...] = (
    OldDefault("protocol.linear_peer", False),  # added with default true; runs before it fitted no linear peer
)


def _at(tree: Any, dotted: str) -> Any:
    """The value at a dotted key of a plain tree, None where there is none."""
    for key in filter(None, dotted.split(".")):
        tree = tree.get(key) if isinstance(tree, dict) else None
    return tree


def load_run_config(run_dir: str | Path, schema: type[BaseModel] = ExperimentConfig, name: str = "config.yaml") -> Any:
    """A run directory's recorded config, as it was trained: a key it lacks takes OLD_DEFAULTS' value, not today's
    default."""
    path = Path(run_dir) / name
    tree = read_yaml_mapping(path, "run config")
    for old in OLD_DEFAULTS:
        parent, _, leaf = old.key.rpartition(".")
        holder = _at(tree, parent)
        if not isinstance(holder, dict) or leaf in holder:
            continue
        if old.part is not None and _at(tree, parent.rpartition(".")[0] + ".name") != old.part:
            continue
        holder[leaf] = old.value
    return config_from_dict(tree, str(path), schema)


def recorded_config(run_dir: Path) -> str:
    """A run directory's config.yaml as today's code reads it, in dump_config's form (for core.runs.start_run)."""
    return dump_config(load_run_config(run_dir))


def dump_config(config: BaseModel) -> str:
    """The YAML a run records; an experiment config's parts with every parameter, defaults included."""
    if isinstance(config, ExperimentConfig):
        config = config.resolved()
    return yaml.safe_dump(config.model_dump(mode="json"), sort_keys=False)
