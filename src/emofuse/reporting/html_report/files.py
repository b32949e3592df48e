"""Reading a run directory's files for a report: a missing or unreadable file is named, not a traceback."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from emofuse.core.registry import ConfigError


def read_json(path: Path):
    try:
        return json.loads(Path(path).read_text())
    except FileNotFoundError:
        raise ConfigError(f"{path}: missing; the report needs it") from None
    except (OSError, ValueError) as err:
        raise ConfigError(f"{path}: cannot be read as JSON ({err})") from None


def read_csv(path: Path) -> pd.DataFrame:
    try:
        return pd.read_csv(path)
    except FileNotFoundError:
        raise ConfigError(f"{path}: missing; the report needs it") from None
    except (OSError, ValueError) as err:
        raise ConfigError(f"{path}: cannot be read as CSV ({err})") from None


def read_text(path: Path, default: str | None = None) -> str | None:
    """A file's text, or ``default`` when it is not there (optional parts of a run, e.g. versions.json)."""
    path = Path(path)
    return path.read_text() if path.is_file() else default


def read_optional_json(path: Path):
    return read_json(path) if Path(path).is_file() else None
