"""What a finished run recorded about its data (data_fingerprint.json), read by everything that loads a run."""

from __future__ import annotations

import json
from pathlib import Path

from emofuse.core.registry import ConfigError
from emofuse.data.ravdess import EMOTIONS


def run_data_record(run_dir: Path) -> dict:
    """What an `emofuse cv` run recorded about its data (data_fingerprint.json): feature dimensions, whether each
    modality is a frame sequence, and the class names in the order of the model's outputs. Runs made before class
    names were recorded were all RAVDESS runs: their classes are the RAVDESS emotions."""
    path = Path(run_dir) / "data_fingerprint.json"
    try:
        record = json.loads(path.read_text())
    except (OSError, ValueError) as err:
        raise ConfigError(f"{path}: cannot read the run's data record ({type(err).__name__}: {err})") from None
    record.setdefault("class_names", list(EMOTIONS))
    return record
