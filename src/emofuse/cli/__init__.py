"""The ``emofuse`` command line: the parser, assembled from the command groups (``run``, ``inference``, ``data``, ``emi``,
``report``: one module each, each command importing its heavy dependencies only when it runs), and ``main``."""

from __future__ import annotations

import argparse
import logging
import sys

from emofuse import __version__
from emofuse.cli import data, emi, inference, report, run
from emofuse.core.registry import ConfigError, did_you_mean


class _Parser(argparse.ArgumentParser):
    """argparse with a "did you mean" for a mistyped choice (a command, --format, ...), as config keys get one."""

    def _check_value(self, action, value):
        if action.choices is not None and value not in action.choices:
            choices = ", ".join(map(repr, action.choices))
            raise argparse.ArgumentError(action, f"invalid choice: {value!r}{did_you_mean(value, action.choices)}; "
                                                 f"choose from {choices}")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="emofuse", description="The emofuse command line: emofuse COMMAND --help tells a command's "
                                                 "arguments.")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging on the console")
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in ORDER:
        PARSERS[name](sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from rich.logging import RichHandler

    console = RichHandler(show_path=False)
    console.setLevel(logging.DEBUG if args.verbose else logging.INFO)

    logging.basicConfig(level=logging.WARNING, format="%(message)s", handlers=[console])
    logging.getLogger("emofuse").setLevel(logging.DEBUG if args.verbose else logging.INFO)
    from emofuse.core.errors import DataError

    try:
        return COMMANDS[args.command](args)
    except (ConfigError, DataError) as err:
        print(f"emofuse: error: {err}", file=sys.stderr)
        return 2


ORDER = ["cv", "compare", "sensitivity", "robustness", "diagnose", "extract", "train", "fit", "evaluate", "make-emi-fixture", "make-touch-fixture", "ablation", "emi-ravdess", "sweep", "predict", "models", "export", "cost", "report", "serve", "manifest", "registry"]  # as `emofuse --help` lists them
PARSERS = {**run.PARSERS, **inference.PARSERS, **data.PARSERS, **emi.PARSERS, **report.PARSERS}
COMMANDS = {**run.COMMANDS, **inference.COMMANDS, **data.COMMANDS, **emi.COMMANDS, **report.COMMANDS}
