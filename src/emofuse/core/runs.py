"""Run directories: everything needed to trace a number back to the command that made it."""

from __future__ import annotations

import json
import logging
import platform
import subprocess
import sys
from contextlib import contextmanager
from importlib import metadata
from pathlib import Path
from typing import Callable, Iterator

from emofuse.core.atomic import atomic_write_text
from emofuse.core.config_diff import describe_yaml_change
from emofuse.core.registry import ConfigError

log = logging.getLogger(__name__)

TRACKED_PACKAGES = ("emofuse", "torch", "torchmetrics", "numpy", "pandas", "scikit-learn", "opensmile", "librosa", "soundfile",
                    "pydantic", "av", "opencv-python-headless", "ai-edge-litert")


def write_json(path: str | Path, obj) -> None:
    atomic_write_text(path, json.dumps(obj, indent=2, default=str) + "\n")


def versions() -> dict:
    out = {"python": sys.version.split()[0], "platform": platform.platform()}
    for name in TRACKED_PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = None
    try:
        here = Path(__file__).resolve().parent
        out["git_commit"] = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=here, capture_output=True, text=True, timeout=5
        ).stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        out["git_commit"] = None
    out["argv"] = sys.argv
    return out


@contextmanager
def logging_to(run_dir: Path) -> Iterator[None]:
    """Everything the emofuse loggers say, at every level, also goes to RUN_DIR/log.txt."""
    run_dir.mkdir(parents=True, exist_ok=True)
    handler = logging.FileHandler(run_dir / "log.txt")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    handler.setLevel(logging.DEBUG)
    root = logging.getLogger("emofuse")
    root.setLevel(logging.DEBUG)
    root.addHandler(handler)
    try:
        yield
    finally:
        root.removeHandler(handler)
        handler.close()


def start_run(run_dir: Path, resolved_config: str, read_recorded: Callable[[Path], str] | None = None) -> None:
    """Write the resolved config and versions; a directory holding another config's run is refused. A run written
    before a key existed lacks it: ``read_recorded`` reads its config.yaml as today's code reads a run's config (each
    absent key at the value of its time), so that a run interrupted before an upgrade resumes when nothing changed."""
    config_path = run_dir / "config.yaml"
    if config_path.is_file() and config_path.read_text() != resolved_config \
            and not _recorded_as(run_dir, resolved_config, read_recorded):
        change = describe_yaml_change(config_path.read_text(), resolved_config)
        raise ConfigError(f"{run_dir} holds a run of a different config (run -> now: {change}); "
                          "use a new --out directory (or --overwrite)")
    atomic_write_text(config_path, resolved_config)
    write_json(run_dir / "versions.json", versions())


def _recorded_as(run_dir: Path, resolved_config: str, read_recorded: Callable[[Path], str] | None) -> bool:
    if read_recorded is None:
        return False
    try:
        return read_recorded(run_dir) == resolved_config
    except (ConfigError, ValueError):  # a config this code cannot read is not the same config
        return False


def record_fingerprint(run_dir: Path, fingerprint: dict) -> None:
    """Write data_fingerprint.json (with a ``sha256`` key); a run started on other data is refused."""
    path = run_dir / "data_fingerprint.json"
    if path.is_file() and json.loads(path.read_text())["sha256"] != fingerprint["sha256"]:
        raise ConfigError(f"{run_dir} was started on different data (fingerprint differs); use a new --out directory")
    write_json(path, fingerprint)


def finished_folds(run_dir: Path, fold: int | None = None) -> list[tuple[int, Path]]:
    """(k, folds/fold_k) of a cv run's finished folds (those with result.json, which a fold writes last), in fold
    order; with ``fold``, that one only. Every reader of a run's fold models (predict, export) takes these."""
    done = sorted((int(p.parent.name[5:]), p.parent) for p in (Path(run_dir) / "folds").glob("fold_*/result.json"))
    if fold is not None:
        done = [(k, path) for k, path in done if k == fold]
        if not done:
            raise ConfigError(f"{run_dir}: fold {fold} is not a finished fold of this run (no folds/fold_{fold}/result.json)")
    if not done:
        raise ConfigError(f"{run_dir}: no finished fold (folds/fold_k/result.json); is it an `emofuse cv` run?")
    return done


def deployed_run(run_dir: Path) -> Path:
    """A selection run's deployed candidate (protocol/selection.py): its own cross-validation run directory."""
    results = Path(run_dir) / "results.json"
    if not results.is_file():
        raise ConfigError(f"{run_dir}: a selection run without results.json: finish it (rerun the same `emofuse cv`)")
    name = json.loads(results.read_text())["deployed_candidate"]
    log.info("%s chose per fold among candidates; using %s, the candidate most folds chose", run_dir, name)
    return Path(run_dir) / "candidates" / name
