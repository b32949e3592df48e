"""The ``emofuse`` command line."""

from __future__ import annotations

import argparse
import logging
import shutil
import sys
from pathlib import Path

from emofuse.registry import ConfigError


def _common_data_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data", type=Path, default=None,
                   help="RAVDESS directory (Actor_XX audio under data.audio_dir, visual table at data.visual.path); "
                        "default: the packaged sample (6 actors)")
    p.add_argument("--cache", type=Path, default=None,
                   help="feature cache directory (default: $EMOFUSE_CACHE or ~/.cache/emofuse)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override a config value, e.g. --set train.epochs=5 (repeatable)")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="emofuse", description=__doc__)
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging on the console")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    cv = sub.add_parser("cv", help="speaker-independent cross-validation of one config",
                        description="Train and test CONFIG on every actor fold; writes results.json, "
                                    "predictions.csv, the resolved config, versions, data fingerprint and a log to --out. "
                                    "Rerunning with the same --out resumes where it stopped.")
    cv.add_argument("config", type=Path, help="experiment YAML, e.g. configs/ravdess_mars.yaml")
    cv.add_argument("--out", type=Path, required=True, help="run directory")
    cv.add_argument("--folds", type=int, nargs="+", default=None, help="run only these fold numbers (1-based)")
    cv.add_argument("--overwrite", action="store_true", help="delete --out first instead of resuming")
    _common_data_args(cv)

    ex = sub.add_parser("extract", help="extract (and cache) the features a config needs",
                        description="Extract audio features for every take in parallel into the cache, "
                                    "and check that every take has its visual features.")
    ex.add_argument("config", type=Path, help="experiment YAML")
    _common_data_args(ex)

    show = sub.add_parser("registry", help="list the registered extractors, encoders, fusions and losses",
                          description="List every registered part that a config can name.")
    show.set_defaults(overrides=[])
    return parser


def _data_dir(arg: Path | None) -> Path:
    if arg is not None:
        return arg
    from emofuse.sample import sample_dir

    return sample_dir()


def _cache_dir(arg: Path | None) -> Path:
    from emofuse.features.cache import default_cache_dir

    return arg if arg is not None else default_cache_dir()


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from rich.logging import RichHandler

    console = RichHandler(show_path=False)
    console.setLevel(logging.DEBUG if args.verbose else logging.INFO)

    logging.basicConfig(level=logging.WARNING, format="%(message)s", handlers=[console])
    logging.getLogger("emofuse").setLevel(logging.DEBUG if args.verbose else logging.INFO)
    from emofuse.data.errors import DataError

    try:
        return COMMANDS[args.command](args)
    except (ConfigError, DataError) as err:
        print(f"emofuse: error: {err}", file=sys.stderr)
        return 2


def cmd_cv(args) -> int:
    from emofuse.config import load_config
    from emofuse.evaluation.cross_validation import run_cross_validation
    from emofuse.report import print_cv_summary

    config = load_config(args.config, args.overrides)
    if args.overwrite and args.out.exists():
        shutil.rmtree(args.out)
    summary = run_cross_validation(config, _data_dir(args.data), args.out, _cache_dir(args.cache),
                                   progress=not args.no_progress, only_folds=args.folds)
    print_cv_summary(summary, args.out)
    return 0


def cmd_extract(args) -> int:
    from emofuse.config import load_config
    from emofuse.features.cache import FeatureCache
    from emofuse.features.dataset import build_ravdess_features

    config = load_config(args.config, args.overrides)
    fs = build_ravdess_features(_data_dir(args.data), config.data, config.features, FeatureCache(_cache_dir(args.cache)),
                                progress=not args.no_progress)
    print(f"{len(fs.meta)} takes ready; feature dims {fs.input_dims}; {len(fs.skipped)} skipped")
    return 0


def cmd_registry(args) -> int:
    from emofuse.features import EXTRACTORS
    from emofuse.losses import LOSSES
    from emofuse.models import ENCODERS, FUSIONS

    for reg in (EXTRACTORS, ENCODERS, FUSIONS, LOSSES):
        print(f"{reg.kind}: {', '.join(reg.names())}")
    return 0


COMMANDS = {"cv": cmd_cv, "extract": cmd_extract, "registry": cmd_registry}

if __name__ == "__main__":
    sys.exit(main())
