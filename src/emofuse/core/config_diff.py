"""Which keys two configs differ in, by dotted key: what a run directory that refuses a config reports."""

from __future__ import annotations

from typing import Any

import yaml

from emofuse.core.console import rounded


def dotted_leaves(tree: Any, prefix: str = "") -> dict[str, Any]:
    """``{"train.lr": 0.001, ...}``: every value that is not a mapping, by its dotted key (a list is one value)."""
    if not isinstance(tree, dict) or (not tree and prefix):
        return {prefix: tree}
    out: dict[str, Any] = {}
    for key, value in tree.items():
        out.update(dotted_leaves(value, f"{prefix}.{key}" if prefix else str(key)))
    return out


def config_differences(old: dict, new: dict) -> list[str]:
    """One entry per differing dotted key, e.g. ``train.lr: 0.001 -> 0.0003`` or ``train.x: (absent) -> 1``."""
    a, b = dotted_leaves(old), dotted_leaves(new)

    def show(leaves: dict, key: str) -> str:
        return repr(rounded(leaves[key])) if key in leaves else "(absent)"

    keys = [*a, *(k for k in b if k not in a)]
    return [f"{k}: {show(a, k)} -> {show(b, k)}" for k in keys if k not in a or k not in b or a[k] != b[k]]


def describe_yaml_change(old_yaml: str, new_yaml: str, limit: int = 5) -> str:
    """The differences of two YAML configs in a few words, the first ``limit`` keys named."""
    diff = config_differences(yaml.safe_load(old_yaml) or {}, yaml.safe_load(new_yaml) or {})
    if not diff:
        return "the same values, written differently"
    more = f"; and {len(diff) - limit} more" if len(diff) > limit else ""
    return "; ".join(diff[:limit]) + more
