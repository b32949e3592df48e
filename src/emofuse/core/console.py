"""What the console and the logs show: numbers at display precision, and progress that also reaches a log file.

Metrics are float64 in results.json; a log line or a table shows them to 4 places, since the digits beyond
are noise of the estimate (and of float32 arithmetic). A live progress bar shows nothing when the output is
a file or a pipe (a batch job, ``| tee``), so there the progress becomes a log line every few seconds, and a table
is printed as wide as it needs.
"""

from __future__ import annotations

import logging
import time
from contextlib import contextmanager
from typing import Any, Callable, Iterator

import numpy as np

log = logging.getLogger(__name__)

PLACES = 4


def rounded(value: Any, places: int = PLACES) -> Any:
    """``value`` for display: floats rounded (also inside dicts, lists and tuples), tuples as lists, NumPy scalars as
    Python numbers, e.g. ``{'audio': 0.4333333373069763, 'actors': (1, 2)}`` -> ``{'audio': 0.4333, 'actors': [1, 2]}``."""
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float):
        return round(value, places)
    if isinstance(value, dict):
        return {k: rounded(v, places) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [rounded(v, places) for v in value]
    return value


def listed(values) -> str:
    """``1, 2, 3`` for a sequence (actor ids, ...); floats rounded."""
    return ", ".join(str(rounded(v)) for v in values)


def table_width(*renderables) -> int | None:
    """The console width to print ``renderables`` (rich tables) at: on a terminal None (its own width), else (a file, a
    pipe) at least as wide as they need, since there nothing is gained by squashing a header to ``accura…``."""
    from rich.console import Console

    console = Console()
    if console.is_terminal:
        return None
    unbounded = console.options.update_width(1 << 16)
    return max([console.width, *(console.measure(r, options=unbounded).maximum for r in renderables)])


class ProgressLines:
    """Progress as log lines (``extracting mfcc: 120/1440 files, 14 s``) at most every ``interval`` seconds, and
    one when done."""

    def __init__(self, what: str, total: int, unit: str = "files", interval: float = 5.0,
                 clock: Callable[[], float] = time.monotonic):
        self.what, self.total, self.unit, self.interval, self.clock = what, total, unit, interval, clock
        self.done, self.reported = 0, None
        self.started = self.last = clock()

    def advance(self, n: int = 1) -> None:
        self.done += n
        now = self.clock()
        if now - self.last >= self.interval:
            self._line(now)

    def finish(self) -> None:
        if self.reported != self.done:
            self._line(self.clock())

    def _line(self, now: float) -> None:
        self.last, self.reported = now, self.done
        log.info("%s: %d/%d %s, %.0f s", self.what, self.done, self.total, self.unit, now - self.started)


@contextmanager
def progress(what: str, total: int, enabled: bool = True, unit: str = "files",
             stderr: bool = False) -> Iterator[Callable[[], None]]:
    """Yields ``advance()``, to call once per item done: a rich progress bar on a terminal, log lines when the
    console is not a terminal, nothing when not ``enabled``. ``stderr``: the bar on stderr, for a command whose stdout
    carries its results."""
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn

    bar = Progress("[progress.description]{task.description}", BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                   disable=not enabled, transient=True, console=Console(stderr=True) if stderr else None)
    if enabled and not bar.console.is_terminal:
        lines = ProgressLines(what, total, unit)
        yield lines.advance
        lines.finish()
        return
    with bar:
        task = bar.add_task(what, total=total)
        yield lambda: bar.advance(task)
