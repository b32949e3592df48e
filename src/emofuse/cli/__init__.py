"""The ``emofuse`` command line: the parser, assembled from the commands the group modules declare (``run``,
``inference``, ``data``, ``emi``, ``report``: one module each, each command importing its heavy dependencies only when
it runs; ``commands.py`` holds the declarations), and ``main``."""

from __future__ import annotations

import argparse
import logging
import sys

from emofuse import __version__
from emofuse.cli import data, emi, inference, report, run  # noqa: F401  (their @command declarations register them)
from emofuse.cli.commands import COMMANDS, add_commands, listing
from emofuse.cli.common import _at_least_one
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
                                                 "arguments.",
                     epilog=listing(), formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging on the console")
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.add_argument("--threads", type=_at_least_one, default=None, metavar="N",
                        help="threads for training and inference (default: one for small networks on clip features, "
                             "one per core for 3D CNNs on face clips; also $EMOFUSE_THREADS)")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND", help="one of the commands below")
    add_commands(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from emofuse.core import threads

    from rich.console import Console
    from rich.logging import RichHandler

    console = RichHandler(console=Console(stderr=True), show_path=False)  # stdout carries only the result
    console.setLevel(logging.DEBUG if args.verbose else logging.INFO)

    logging.basicConfig(level=logging.WARNING, format="%(message)s", handlers=[console])
    logging.getLogger("emofuse").setLevel(logging.DEBUG if args.verbose else logging.INFO)
    from emofuse.core.errors import DataError

    try:
        with threads.requesting(args.threads):
            return args.handler(args)
    except (ConfigError, DataError) as err:
        print(f"emofuse: error: {err}", file=sys.stderr)
        return 2

