"""One declaration per command: ``@command`` on a command's handler names it, its group in ``emofuse --help``, its
help and the function that adds its arguments; the top-level parser and its grouped listing are built from these
declarations alone, so a command cannot be half-registered."""

from __future__ import annotations

import argparse
import textwrap
from dataclasses import dataclass
from typing import Callable

GROUPS = {"run": "train and score", "predict": "predict and serve", "data": "data, parts and recipes",
          "emi": "EMI regression", "reports": "reports"}
"""The groups of ``emofuse --help``, in the order it lists them."""

PARENTS = {"fixtures": "write synthetic data for tests and demos (not real data): touch, emi"}
"""Commands that only gather subcommands (``emofuse fixtures touch``): their one-line help."""


@dataclass(frozen=True)
class Command:
    name: str  # "cv", or "fixtures touch" for a subcommand of a PARENTS entry
    group: str
    help: str
    description: str | None
    arguments: Callable[[argparse.ArgumentParser], None]
    run: Callable[[argparse.Namespace], int]
    aliases: tuple[str, ...] = ()  # earlier top-level names, still accepted but not listed


COMMANDS: dict[str, Command] = {}


def command(name: str, group: str, arguments: Callable[[argparse.ArgumentParser], None], *, help: str,
            description: str | None = None, aliases: tuple[str, ...] = ()):
    """Register the decorated handler as the command ``name``; ``arguments(parser)`` adds its arguments."""
    if group not in GROUPS:
        raise ValueError(f"command {name!r}: unknown group {group!r}; groups: {', '.join(GROUPS)}")

    def register(run: Callable[[argparse.Namespace], int]):
        if name in COMMANDS:
            raise ValueError(f"command {name!r} is declared twice")
        COMMANDS[name] = Command(name, group, help, description, arguments, run, aliases)
        return run

    return register


def add_commands(sub) -> None:
    """Add every declared command (and its aliases) to the top-level subparsers ``sub``."""
    children: dict[str, object] = {}
    for cmd in sorted(COMMANDS.values(), key=lambda c: list(GROUPS).index(c.group)):  # a mistyped command's choices
        *parent, leaf = cmd.name.split()
        if parent:
            if parent[0] not in children:
                holder = sub.add_parser(parent[0], description=PARENTS[parent[0]])
                children[parent[0]] = holder.add_subparsers(dest=parent[0], required=True, metavar="KIND")
            places = [(children[parent[0]], leaf, {"help": cmd.help})]  # listed in `emofuse fixtures --help`
        else:
            places = [(sub, leaf, {})]  # listed by group in the epilog instead
        places += [(sub, alias, {}) for alias in cmd.aliases]
        for where, name, listed in places:
            p = where.add_parser(name, description=cmd.description or cmd.help, **listed)
            cmd.arguments(p)
            p.set_defaults(handler=cmd.run)


def listing(width: int = 100) -> str:
    """The commands by group, for the end of ``emofuse --help``."""
    lines = []
    for group, title in GROUPS.items():
        entries = [(c.name.split()[0], PARENTS[c.name.split()[0]] if " " in c.name else c.help)
                   for c in COMMANDS.values() if c.group == group]
        entries = list(dict.fromkeys(entries))  # a parent once
        if not entries:
            continue
        lines += ["", f"{title}:"] if lines else [f"{title}:"]
        for name, help in entries:
            lines.append(textwrap.fill(help, width, initial_indent=f"  {name:<13} ", subsequent_indent=" " * 16))
    return "\n".join(lines)
