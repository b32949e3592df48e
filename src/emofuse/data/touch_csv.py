"""Pressure-grid captures as sensors write them: one CSV (or TSV, or space-separated) file per capture.

Two layouts are common, and which one a file has is read from the file itself:

- ``frame``: one frame per line, its R x C cells row-major (a line of 64 values: an 8 x 8 grid);
- ``rows``: one grid row per line, R lines per frame (frames often separated by a blank line, or sharing a
  timestamp).

A header line is optional; a column named like a time (``time``, ``timestamp_ms``, ``t``, ``ms``, ...) gives the frame
rate, one named like an index (``frame``, ``index``, ...) is left out. Without blank lines, shared timestamps or a
given grid, a line of s * s values is read as an s x s frame, and otherwise a line of C values as a row of a C x C
grid; anything else needs the grid given. Every problem (a non-numeric cell, a ragged line, frames of different
heights, a grid that does not fit) is an error that names the file and the line.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from emofuse.core.errors import DataError

TIME_NAMES = re.compile(r"time|^(t|ms|msec|millis|milliseconds|s|sec|secs|seconds|us|usec|micros)$", re.IGNORECASE)
INDEX_NAMES = re.compile(r"^(frame|frame_?(id|index|no|number)|index|idx|sample|n|#)$", re.IGNORECASE)
LAYOUTS = {"frame": "one frame per line", "rows": "one grid row per line"}


@dataclass
class Capture:
    """One capture's frames (T, R * C), raw sensor values, rows of the grid one after another."""

    frames: np.ndarray
    grid: tuple[int, int]
    layout: str  # a key of LAYOUTS
    rate: float | None  # frames per second, from a time column; None without one

    def describe(self) -> str:
        rate = f" at {self.rate:.1f} Hz" if self.rate else ""
        return f"{self.grid[0]} x {self.grid[1]} grid, {LAYOUTS[self.layout]}, {len(self.frames)} frames{rate}"


def parse_grid(text: str) -> tuple[int, int]:
    """``"8x8"`` (or ``8,8``, ``8 x 8``) as (rows, columns)."""
    match = re.fullmatch(r"\s*(\d+)\s*[x×,*]\s*(\d+)\s*", text)
    if match is None or 0 in (int(match[1]), int(match[2])):
        raise ValueError(f"grid {text!r}: expected ROWSxCOLUMNS, e.g. 8x8")
    return int(match[1]), int(match[2])


def _delimiter(line: str) -> str | None:
    for sep in (",", ";", "\t"):
        if sep in line:
            return sep
    return None  # runs of spaces


def _cells(line: str, sep: str | None) -> list[str]:
    cells = line.split(sep)
    return [c.strip() for c in cells] if sep else cells


def _is_number(cell: str) -> bool:
    try:
        float(cell)
    except ValueError:
        return False
    return True


def _numbers(path: Path, number: int, cells: list[str]) -> np.ndarray:
    try:
        values = np.array(cells, dtype=np.float64)
    except ValueError:
        column, cell = next((k, c) for k, c in enumerate(cells, 1) if not _is_number(c))
        what = "an empty cell" if not cell else f"{cell!r}, which is not a number"
        raise DataError(path, f"line {number}, column {column}: {what}") from None
    if not np.isfinite(values).all():
        column = int(np.flatnonzero(~np.isfinite(values))[0]) + 1
        raise DataError(path, f"line {number}, column {column}: {cells[column - 1]!r} is not a finite number")
    return values


def _columns(path: Path, header: list[str] | None, width: int, time_column: str | None) -> tuple[int | None, list[int]]:
    """(the time column's index or None, the indices of the grid's cells)."""
    names = header or []
    time_index = None
    if time_column is not None:
        if time_column.isdigit():
            time_index = int(time_column)
        elif time_column in names:
            time_index = names.index(time_column)
        else:
            raise DataError(path, f"no column {time_column!r} (the time column); the header has "
                                  f"{', '.join(names[:6]) or 'no names'}{' ...' if len(names) > 6 else ''}")
        if time_index >= width:
            raise DataError(path, f"time column {time_index} but the lines have {width} values")
    else:
        time_index = next((i for i, n in enumerate(names) if TIME_NAMES.search(n)), None)
    skipped = {i for i, n in enumerate(names) if INDEX_NAMES.match(n)} | ({time_index} if time_index is not None else set())
    return time_index, [i for i in range(width) if i not in skipped]


def _rate(path: Path, times: np.ndarray) -> float:
    """Frames per second from the frames' timestamps: seconds, milliseconds or microseconds, told apart by the step
    (no pressure sensor takes a second per frame, nor a microsecond)."""
    steps = np.diff(times)
    if len(steps) == 0:
        raise DataError(path, "one frame only: the time column cannot give a frame rate")
    if (steps <= 0).any():
        line = int(np.flatnonzero(steps <= 0)[0]) + 2
        raise DataError(path, f"the time column does not increase at frame {line}")
    step = float(times[-1] - times[0]) / len(steps)  # the mean step: rounded times do not bias it
    seconds = step if step < 1 else step / 1e3 if step < 1e3 else step / 1e6
    return 1.0 / seconds


def read_capture(path: str | Path, grid: tuple[int, int] | None = None, time_column: str | None = None) -> Capture:
    """The frames of one capture file, its layout found as the module says (``grid`` given: only checked)."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as err:
        raise DataError(path, f"cannot read the capture ({err})") from None
    lines = [(n, line.strip()) for n, line in enumerate(text.splitlines(), 1)]
    content = [(n, line) for n, line in lines if line]
    if not content:
        raise DataError(path, "the capture is empty")
    sep = _delimiter(content[0][1])
    header = None
    if not all(_is_number(c) for c in _cells(content[0][1], sep)):
        header = _cells(content[0][1], sep)
        lines = [(n, line) for n, line in lines if n > content[0][0]]
    rows, numbers, blocks, block = [], [], [], 0
    for n, line in lines:
        if not line:
            block += bool(rows) and blocks[-1] == block
            continue
        values = _numbers(path, n, _cells(line, sep))
        if rows and len(values) != len(rows[0]):
            raise DataError(path, f"line {n} has {len(values)} values, line {numbers[0]} has {len(rows[0])} (ragged rows)")
        rows.append(values)
        numbers.append(n)
        blocks.append(block)
    if not rows:
        raise DataError(path, "a header and no values")
    if header is not None and len(header) != len(rows[0]):
        raise DataError(path, f"the header names {len(header)} columns, line {numbers[0]} has {len(rows[0])} values")
    table = np.vstack(rows)
    time_index, cells = _columns(path, header, table.shape[1], time_column)
    values, times = table[:, cells], table[:, time_index] if time_index is not None else None
    layout, shape = _layout(path, values.shape[1], np.asarray(blocks), times, numbers, grid)
    if layout == "rows":
        height = shape[0]
        if len(values) % height:
            raise DataError(path, f"{len(values)} lines of grid rows do not make whole {shape[0]} x {shape[1]} frames "
                                  f"({len(values) % height} left over)")
        values = values.reshape(len(values) // height, height * shape[1])
        times = times[::height] if times is not None else None
    rate = _rate(path, times) if times is not None else None
    return Capture(values.astype(np.float32), shape, layout, rate)


def _layout(path: Path, width: int, blocks: np.ndarray, times: np.ndarray | None, numbers: list[int],
            grid: tuple[int, int] | None) -> tuple[str, tuple[int, int]]:
    """Which layout the lines have and the grid's (rows, columns)."""
    if grid is not None:
        if width == grid[0] * grid[1]:
            return "frame", grid
        if width == grid[1]:
            return "rows", grid
        raise DataError(path, f"lines of {width} values fit neither a {grid[0]} x {grid[1]} frame per line "
                              f"({grid[0] * grid[1]} values) nor one of its rows per line ({grid[1]} values)")
    if blocks[-1] > 0:  # frames separated by blank lines
        heights = np.bincount(blocks)
        side = math.isqrt(width)
        if (heights != heights[0]).any() and side > 2 and side * side == width:
            return "frame", (side, side)  # stray blank lines between frames of one line each
        if (heights != heights[0]).any():
            odd = int(np.flatnonzero(heights != heights[0])[0])
            first = numbers[int(np.flatnonzero(blocks == odd)[0])]
            raise DataError(path, f"inconsistent grid size: the frame at line {first} has {heights[odd]} rows, the "
                                  f"first frame {heights[0]}")
        return ("rows", (int(heights[0]), width)) if heights[0] > 1 else ("frame", _square(path, width))
    if times is not None and len(times) > 1:
        runs = np.diff(np.flatnonzero(np.r_[True, np.diff(times) != 0, True]))
        if runs.max() > 1:
            if (runs != runs[0]).any():
                raise DataError(path, f"inconsistent grid size: timestamps repeat over {runs.min()} to {runs.max()} "
                                      f"lines; give the grid")
            return "rows", (int(runs[0]), width)
    side = math.isqrt(width)
    if side > 2 and side * side == width:
        return "frame", (side, side)
    if width > 2 and len(numbers) % width == 0:
        return "rows", (width, width)
    raise DataError(path, f"cannot tell the grid from lines of {width} values (not a square frame, and "
                          f"{len(numbers)} lines are not whole {width} x {width} frames); give the grid, e.g. 8x8")


def _square(path: Path, width: int) -> tuple[int, int]:
    side = math.isqrt(width)
    if side * side != width:
        raise DataError(path, f"frames of {width} values are not a square grid; give the grid, e.g. 8x8")
    return side, side
