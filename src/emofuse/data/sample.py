"""The packaged RAVDESS sample: the no-download default data directory."""

from __future__ import annotations

from importlib import resources
from pathlib import Path


def sample_dir() -> Path:
    return Path(str(resources.files("emofuse") / "sample" / "ravdess"))
