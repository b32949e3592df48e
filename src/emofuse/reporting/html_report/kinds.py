"""The kinds of run directory a report can be made of, told apart by the files each kind writes.

A kind is a loader (run directory -> the template's context) and a template. Adding a kind is one
loader module under ``loaders/`` (registered with :func:`run_kind`, imported in ``loaders/__init__``)
and one template under ``templates/``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from emofuse.core.registry import ConfigError


@dataclass(frozen=True)
class RunKind:
    name: str
    title: str  # what the report's heading calls such a run
    markers: tuple[str, ...]  # paths inside the run directory that all exist for this kind (and mark it)
    template: str
    load: Callable[[Path], dict]

    def matches(self, run_dir: Path) -> bool:
        return all((run_dir / m).exists() for m in self.markers)


RUN_KINDS: dict[str, RunKind] = {}


def run_kind(name: str, *, title: str, markers: tuple[str, ...], template: str | None = None):
    """Register a loader for the run directories that hold every one of ``markers``."""

    def deco(load: Callable[[Path], dict]) -> Callable[[Path], dict]:
        if name in RUN_KINDS:
            raise KeyError(f"report kind '{name}' is registered twice")
        RUN_KINDS[name] = RunKind(name, title, markers, template or f"{name}.html.j2", load)
        return load

    return deco


def detect_kind(run_dir: Path, name: str | None = None) -> RunKind:
    """The kind named, or the one kind whose marker files the directory holds."""
    if name is not None:
        if name not in RUN_KINDS:
            raise ConfigError(f"unknown report kind '{name}'; known: {', '.join(sorted(RUN_KINDS))}")
        return RUN_KINDS[name]
    if not run_dir.is_dir():
        raise ConfigError(f"{run_dir}: not a directory")
    found = [k for k in RUN_KINDS.values() if k.matches(run_dir)]
    if len(found) == 1:
        return found[0]
    known = "; ".join(f"{k.name}: {', '.join(k.markers)}" for k in RUN_KINDS.values())
    if not found:
        raise ConfigError(f"{run_dir}: not a run directory a report can be made of (looked for {known})")
    raise ConfigError(f"{run_dir}: holds the files of several kinds of run ({', '.join(k.name for k in found)}); "
                      "choose one with --kind")
