"""A folder of pressure-grid captures (one CSV per capture, data/touch_csv.py) as a manifest of frame arrays.

Who touched and what (the gesture or emotion) come from each file's name or folders: a ``--pattern`` such as
``{speaker}_{label}_{take}.csv`` or ``{label}/{speaker}_{take}.csv`` (matched against the last parts of the path), or
a regular expression with the groups ``speaker`` and ``label``. What holds for a whole corpus is decided over all of
its captures, not file by file: the grid (one per corpus), the frame rate (captures whose rate differs from the
corpus's are resampled to it) and whether the scale is inverted (many sensors read high at rest: the corpus's
resting level, the median value of most captures, lies nearer their top than their bottom). The frames are written
as ``touch/<id>.npy`` (T, R * C) float32, higher = more pressure, beside ``manifest.csv``.
"""

from __future__ import annotations

import os
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd

from emofuse.core.atomic import atomic_write, atomic_write_text
from emofuse.core.errors import DataError
from emofuse.core.registry import ConfigError
from emofuse.data.corpora.base import common_label
from emofuse.data.speakers import natural_key
from emofuse.data.touch_csv import LAYOUTS, Capture, read_capture

SUFFIXES = (".csv", ".tsv", ".txt")
PLACEHOLDER = re.compile(r"\{(\w*)\}")
RATE_TOLERANCE = 0.02  # captures whose rate is further than this share from the corpus's are resampled


def pattern_regex(pattern: str) -> re.Pattern:
    """A name pattern (``{speaker}_{label}_{take}.csv``; ``{}`` matches anything) as a regular expression whose named
    groups are the placeholders."""
    parts, last, names = [], 0, set()
    for match in PLACEHOLDER.finditer(pattern):
        parts.append(re.escape(pattern[last : match.start()]))
        name = match[1]
        if name in names:
            raise ConfigError(f"--pattern {pattern!r}: {{{name}}} appears twice")
        names.add(name)
        parts.append(f"(?P<{name}>[^/]+?)" if name else "[^/]+?")
        last = match.end()
    parts.append(re.escape(pattern[last:]))
    return re.compile("".join(parts))


def name_matcher(pattern: str | None, regex: str | None) -> re.Pattern:
    """The regular expression that finds speaker and label in a capture's path, from ``--pattern`` or ``--regex``."""
    if (pattern is None) == (regex is None):
        raise ConfigError("touch needs --pattern (e.g. '{speaker}_{label}_{take}.csv') or --regex (with the groups "
                          "speaker and label), one of them")
    try:
        compiled = pattern_regex(pattern) if pattern is not None else re.compile(regex)
    except re.error as err:
        raise ConfigError(f"--regex {regex!r}: {err}") from None
    missing = {"speaker", "label"} - set(compiled.groupindex)
    if missing:
        option = f"--pattern {pattern!r}" if pattern is not None else f"--regex {regex!r}"
        raise ConfigError(f"{option} has no {' and no '.join(sorted(missing))} "
                          f"{'placeholder' if pattern is not None else 'group'}: each capture needs its person and label")
    return compiled


def _match(matcher: re.Pattern, relative: str, anchored: bool) -> re.Match | None:
    """Anchored (a pattern): the whole of the path's last parts, as many as the pattern has; else a search."""
    if not anchored:
        return matcher.search(relative)
    depth = matcher.pattern.replace("[^/]", "").count("/") + 1
    return matcher.fullmatch("/".join(relative.split("/")[-depth:]))


@dataclass
class TouchCorpus:
    rows: list[dict] = field(default_factory=list)  # id, speaker, label, corpus_label, other groups, capture
    frames: dict[str, np.ndarray] = field(default_factory=dict)  # id -> (T, R * C), higher = more pressure
    unrecognised: list[Path] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # what was found and done, for the user
    rate: float | None = None  # frames per second of every capture, where known


def capture_files(root: Path) -> list[Path]:
    if not root.is_dir():
        raise DataError(root, "corpus directory does not exist")
    return sorted(p for p in root.rglob("*") if p.suffix.lower() in SUFFIXES and p.is_file()
                  and not any(part.startswith(".") for part in p.relative_to(root).parts))


def read_touch_corpus(root: str | Path, matcher: re.Pattern, anchored: bool = True, grid: tuple[int, int] | None = None,
                      time_column: str | None = None, rate: float | None = None,
                      invert: Literal["auto", "yes", "no"] = "auto") -> TouchCorpus:
    """Every capture under ``root`` whose path the matcher finds a speaker and label in, read and checked."""
    root = Path(root)
    corpus, captures, problems = TouchCorpus(), {}, []
    for path in capture_files(root):
        relative = path.relative_to(root).as_posix()
        match = _match(matcher, relative, anchored)
        if match is None or not match["speaker"] or not match["label"]:
            corpus.unrecognised.append(path)
            continue
        try:
            captures[path] = read_capture(path, grid, time_column)
        except DataError as err:
            problems.append(err)
            continue
        groups = {k: v for k, v in match.groupdict().items() if k not in ("speaker", "label") and v is not None}
        corpus.rows.append({"id": relative.rsplit(".", 1)[0], "speaker": match["speaker"],
                            "label": common_label(match["label"]), "corpus_label": match["label"], **groups,
                            "capture": path})
    if problems:
        more = "".join(f"; {e}" for e in problems[1:4]) + (f"; and {len(problems) - 4} more" if len(problems) > 4 else "")
        raise DataError(problems[0].path, f"{problems[0].problem}{more}")
    if not corpus.rows:
        return corpus
    _check_grid(captures)
    first = next(iter(captures.values()))
    layouts = Counter(c.layout for c in captures.values())
    corpus.notes.append(f"{len(captures)} captures: {first.grid[0]} x {first.grid[1]} grid, "
                        + (LAYOUTS[first.layout] if len(layouts) == 1
                           else ", ".join(f"{n} with {LAYOUTS[k]}" for k, n in layouts.items())))
    frames, corpus.rate = _rates(captures, rate, corpus.notes)
    frames = _oriented(frames, invert, corpus.notes)
    corpus.frames = {row["id"]: frames[row["capture"]] for row in corpus.rows}
    return corpus


def _check_grid(captures: dict[Path, Capture]) -> None:
    grids = Counter(c.grid for c in captures.values())
    if len(grids) > 1:
        common = grids.most_common(1)[0][0]
        reference = next(p for p, c in captures.items() if c.grid == common)
        odd = [p for p, c in captures.items() if c.grid != common]
        raise DataError(odd[0], f"inconsistent grid sizes: a {captures[odd[0]].grid[0]} x {captures[odd[0]].grid[1]} grid, "
                                f"but {reference} (and {grids[common] - 1} more) a {common[0]} x {common[1]} one"
                                f"{f'; {len(odd) - 1} more files differ' if len(odd) > 1 else ''}")


def _rates(captures: dict[Path, Capture], rate: float | None,
           notes: list[str]) -> tuple[dict[Path, np.ndarray], float | None]:
    """The frames at one rate: ``rate`` given holds for every capture; else each capture's time column, and those
    off the corpus's median rate are resampled to it (linear interpolation)."""
    if rate is not None:
        notes.append(f"{rate:g} Hz as given")
        return {p: c.frames for p, c in captures.items()}, rate
    timed = {p: c.rate for p, c in captures.items() if c.rate is not None}
    if not timed:
        notes.append("frame rate unknown (no time column; give --rate to record it)")
        return {p: c.frames for p, c in captures.items()}, None
    if len(timed) < len(captures):
        untimed = next(p for p in captures if p not in timed)
        raise DataError(untimed, f"no time column, but {next(iter(timed))} has one: give --rate for the corpus")
    target = float(sorted(timed.values())[(len(timed) - 1) // 2])  # a median that is some capture's rate
    out, resampled = {}, 0
    for path, capture in captures.items():
        if abs(capture.rate / target - 1) > RATE_TOLERANCE:
            out[path], resampled = resample(capture.frames, capture.rate, target), resampled + 1
        else:
            out[path] = capture.frames
    notes.append(f"{target:.1f} Hz from the time column" + (f", {resampled} captures resampled to it" if resampled else ""))
    return out, target


def resample(frames: np.ndarray, rate: float, target: float) -> np.ndarray:
    """Frames (T, D) at ``rate`` linearly interpolated to ``target`` frames per second."""
    times = np.arange(len(frames)) / rate
    new = np.arange(int(np.floor(times[-1] * target)) + 1) / target
    return np.stack([np.interp(new, times, frames[:, d]) for d in range(frames.shape[1])], axis=1).astype(np.float32)


def resting_high(frames: np.ndarray) -> bool:
    """Whether a capture's resting level (its median value: most cells are untouched most of the time) lies nearer
    its highest values than its lowest, as on a sensor that reads high at rest."""
    rest = float(np.median(frames))
    return bool(frames.max() - rest < rest - frames.min())


def _oriented(frames: dict[Path, np.ndarray], invert: str, notes: list[str]) -> dict[Path, np.ndarray]:
    """Higher = more pressure: the corpus's scale turned over (its maximum minus the value) where it reads high at
    rest (``auto``: most captures do) or ``invert`` says so."""
    votes = {p: resting_high(f) for p, f in frames.items()}
    high = sum(votes.values())
    flip = invert == "yes" or (invert == "auto" and high > len(votes) / 2)
    top = max(float(f.max()) for f in frames.values())
    if invert == "auto":
        dissent = [p for p, v in votes.items() if v != flip]
        notes.append(f"{'inverted scale' if flip else 'scale as read'} ({high} of {len(votes)} captures rest near their "
                     f"highest values{'; turned over: ' + format(top, 'g') + ' - value' if flip else ''})"
                     + (f"; {len(dissent)} look the other way, e.g. {dissent[0]}" if dissent else ""))
    elif flip:
        notes.append(f"inverted scale as told: {top:g} - value")
    return {p: (top - f).astype(np.float32) for p, f in frames.items()} if flip else frames


def write_touch_corpus(corpus: TouchCorpus, out: str | Path) -> Path:
    """``out/touch/<id>.npy`` per capture and ``out/manifest.csv`` (rows by speaker and id; ``touch_features``
    relative to ``out``, ``capture`` the source file as found); returns the manifest's path."""
    out = Path(out)
    rows = []
    for row in corpus.rows:
        name = Path("touch", row["id"].replace("/", "__") + ".npy")
        atomic_write(out / name, lambda f, frames=corpus.frames[row["id"]]: np.save(f, frames))
        rows.append({**{k: v for k, v in row.items() if k != "capture"}, "touch_features": name.as_posix(),
                     "frames": len(corpus.frames[row["id"]]), **({"rate": round(corpus.rate, 2)} if corpus.rate else {}),
                     "capture": os.path.abspath(row["capture"])})
    table = pd.DataFrame(rows)
    table = table.iloc[sorted(range(len(table)), key=lambda i: (natural_key(str(table["speaker"].iat[i])),
                                                                natural_key(table["id"].iat[i])))]
    manifest = out / "manifest.csv"
    atomic_write_text(manifest, table.to_csv(index=False, lineterminator="\n"))
    return manifest
