"""What several command groups share: argument types, common arguments, the data and cache locations."""

from __future__ import annotations

import argparse
import math
from pathlib import Path

from emofuse.api import locate_data
from emofuse.core.registry import ConfigError


def _port(text: str) -> int:
    """A TCP port, checked here: out of range, the server would fail with a traceback after loading the run."""
    try:
        port = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid port {text!r}: a whole number from 1 to 65535") from None
    if not 1 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"port {port} is out of range: 1 to 65535")
    return port


def _positive(text: str) -> float:
    """A positive, finite number: NaN and infinity would get past the server's own check and fail later."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid number {text!r}") from None
    if not (value > 0 and math.isfinite(value)):
        raise argparse.ArgumentTypeError(f"{text} is not a positive number")
    return value


def _whole_number(text: str, minimum: int, too_small: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid whole number {text!r}") from None
    if value < minimum:
        raise argparse.ArgumentTypeError(f"{value} {too_small}")
    return value


def _at_least_zero(text: str) -> int:
    return _whole_number(text, 0, "is negative")


def _at_least_one(text: str) -> int:
    return _whole_number(text, 1, "is not at least 1")


def _config(text: str) -> Path:
    """A CONFIG argument: a YAML file, or the name of a shipped one (`emofuse configs` lists them)."""
    from emofuse.config.recipes import resolve_config

    try:
        return resolve_config(text)
    except ConfigError as err:
        raise argparse.ArgumentTypeError(str(err)) from None


def _overrides_arg(p: argparse.ArgumentParser, help: str = "override a config value, e.g. --set train.epochs=5 (repeatable)") -> None:
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE", help=help)


def _compared_methods_args(p: argparse.ArgumentParser, seeds: str) -> None:
    """The arguments of the commands that run several configs and compare them with a reference (compare, robustness)."""
    p.add_argument("configs", type=_config, nargs="+",
                   help="experiment YAMLs or shipped config names, one method each, e.g. ravdess_ce ravdess_mars")
    p.add_argument("--out", type=Path, required=True, help="directory for the runs, tables and plots")
    p.add_argument("--seeds", type=int, default=3, help=f"{seeds} (default 3)")
    p.add_argument("--reference", default=None, help="config name the others are compared with (default: the first)")
    p.add_argument("--jobs", type=int, default=1, help="runs at a time, one thread each (default 1)")
    _common_data_args(p)


def _common_data_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data", type=Path, default=None,
                   help="RAVDESS directory (Actor_XX audio under data.audio_dir; the visual table, OpenFace CSVs or "
                        "videos at data.visual.path; default: the packaged sample, 6 actors), or for a manifest config "
                        "(data.dataset: manifest) the manifest CSV (default: data.path)")
    p.add_argument("--cache", type=Path, default=None,
                   help="feature cache directory (default: $EMOFUSE_CACHE or ~/.cache/emofuse)")
    _overrides_arg(p)
    p.add_argument("--no-progress", action="store_true", help="no progress bars")


def _emi_data_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data", type=Path, required=True,
                   help="feature directory: labels.csv (id, split, one column per target) and <modality>/<id>.npy "
                        "arrays (T, D), or one <modality>.npz per modality")
    p.add_argument("--out", type=Path, required=True, help="run directory")
    p.add_argument("--overwrite", action="store_true", help="delete --out first instead of resuming")
    _overrides_arg(p)


def _located(args):
    """(config, data location) of a command's CONFIG, --set and --data: a --data that does not exist is refused before
    the config is loaded, and the config before anything heavy is imported, so that such mistakes answer at once."""
    if args.data is not None and not Path(args.data).exists():
        from emofuse.core.errors import DataError

        raise DataError(args.data, "does not exist (--data)")
    from emofuse.config.loading import load_config

    return locate_data(load_config(args.config, args.overrides), args.data)


def _cache_dir(arg: Path | None) -> Path:
    from emofuse.features.cache import default_cache_dir

    return arg if arg is not None else default_cache_dir()
