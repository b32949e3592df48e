"""Reading a config: YAML files, ``extends``, command-line overrides, validation against a schema, and writing one."""

from __future__ import annotations

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


def dump_config(config: BaseModel) -> str:
    return yaml.safe_dump(config.model_dump(mode="json"), sort_keys=False)
