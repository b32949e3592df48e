"""Config trees as plain mappings: a dotted key set, ``key=value`` overrides parsed, one tree merged over another."""

from __future__ import annotations

from typing import Any

import yaml

from emofuse.core.registry import ConfigError


def set_dotted(tree: dict, dotted: str, value: Any) -> None:
    """``a.b.c`` set in the nested mapping; a ``*`` key (``model.encoders.*``) sets it under every key the section
    already has, so that one override serves whichever modalities a config names."""
    keys = dotted.split(".")
    if "*" in keys:
        i = keys.index("*")
        node = tree
        for k in keys[:i]:
            node = node.get(k) if isinstance(node, dict) else None
        if not isinstance(node, dict):
            raise ConfigError(f"override '{dotted}': '{'.'.join(keys[:i])}' is not a section")
        for name in list(node):
            set_dotted(tree, ".".join([*keys[:i], name, *keys[i + 1:]]), value)
        return
    node = tree
    for k in keys[:-1]:
        if node.get(k) is None:  # absent, or an optional section that is off (null): start it
            node[k] = {}
        node = node[k]
        if not isinstance(node, dict):
            raise ConfigError(f"override '{dotted}': '{k}' is not a section")
    node[keys[-1]] = value


def parse_overrides(pairs: list[str]) -> list[tuple[str, Any]]:
    """``key.sub=value`` pairs from the command line; values are parsed as YAML scalars."""
    out = []
    for pair in pairs:
        if "=" not in pair:
            raise ConfigError(f"override '{pair}' is not of the form key=value")
        key, raw = pair.split("=", 1)
        try:
            out.append((key.strip(), yaml.safe_load(raw)))
        except yaml.YAMLError as err:
            raise ConfigError(f"override '{pair}': the value is not valid YAML ({' '.join(str(err).split())})") from None
    return out


def deep_merge(base: dict, update: dict) -> dict:
    """``update`` over ``base``, section by section; a part (a mapping with a ``name`` and ``params``) renamed in
    ``update`` replaces the base's part whole, since the base's parameters belong to the other part. (A config's
    own top-level ``name`` has no ``params`` beside it: configs themselves are merged.)"""
    if "name" in update and "name" in base and update["name"] != base["name"] and isinstance(base.get("params"), dict):
        return dict(update)
    merged = dict(base)
    for key, value in update.items():
        merged[key] = deep_merge(merged[key], value) if isinstance(value, dict) and isinstance(merged.get(key), dict) else value
    return merged
