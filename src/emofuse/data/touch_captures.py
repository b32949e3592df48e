"""Synthetic pressure-grid captures written as a sensor writes them, to catch what real recordings do.

The gestures are those of data/touch_fixture.py; around them, what real social-touch recordings bring:

- long captures (``seconds``, 8 by default) in which the gesture takes 1.5-4 s at a random time, idle frames around;
- a gain and an offset per person, a slow baseline drift within each capture, integer sensor values 0-1023;
- per person's session, one or two dead cells (stuck at rest or at full scale) and one or two noisy cells;
- an inverted scale (``inverted``: high = no pressure, as many sensors read), 8 x 8 or 10 x 10 grids, 54 Hz;
- one CSV per capture, ``out/<speaker>/<speaker>_<gesture>_<take>.csv``: ``frame`` layout, a header and one frame per
  line after its time in milliseconds (with jitter); ``rows`` layout, one grid row per line, frames separated by a
  blank line, no header and no time (the rate is then given when reading).

Read them with ``emofuse manifest touch OUT --pattern "{speaker}_{label}_{take}.csv" --out DIR``. Not real data.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import numpy as np

from emofuse.core.atomic import atomic_write_text
from emofuse.core.registry import ConfigError
from emofuse.data.touch_fixture import FULL_SCALE, GESTURES, gesture_frames


def capture(gesture: str, grid: int, rate: float, seconds: float, rng: np.random.Generator) -> np.ndarray:
    """Pressure (frames, grid, grid) in [0, 1] of one capture: idle, the gesture, idle."""
    frames = int(round(seconds * rate * rng.uniform(0.85, 1.0)))
    active = int(round(rng.uniform(1.5, min(4.0, seconds - 0.5)) * rate))
    start = int(rng.integers(0, frames - active + 1))
    out = np.zeros((frames, grid, grid))
    out[start : start + active] = gesture_frames(gesture, active, rng, grid, rate)
    return out


def _session(grid: int, rng: np.random.Generator) -> dict:
    """One person's recording session: their gain and offset, the sensor's dead and noisy cells that day."""
    cells = rng.permutation(grid * grid)
    n_dead, n_noisy = int(rng.integers(1, 3)), int(rng.integers(1, 3))
    return {"gain": rng.uniform(0.5, 1.5), "offset": rng.uniform(0, 150), "dead": cells[:n_dead],
            "stuck_high": rng.random(n_dead) < 0.5, "noisy": cells[n_dead : n_dead + n_noisy],
            "noise": rng.uniform(60, 120, n_noisy)}


def sensor_values(pressure: np.ndarray, session: dict, inverted: bool, rng: np.random.Generator) -> np.ndarray:
    """Integer readings (frames, cells) of a pressure capture on one person's session."""
    frames = len(pressure)
    values = session["gain"] * FULL_SCALE * pressure.reshape(frames, -1) + session["offset"]
    values += np.linspace(0, rng.normal(0, 20), frames)[:, None]  # the baseline creeps
    values += rng.normal(0, 8, values.shape)
    values[:, session["noisy"]] += rng.normal(0, 1, (frames, len(session["noisy"]))) * session["noise"]
    values[:, session["dead"]] = np.where(session["stuck_high"], FULL_SCALE, session["offset"])
    values = np.clip(np.rint(values), 0, FULL_SCALE)
    return FULL_SCALE - values if inverted else values


def capture_text(values: np.ndarray, grid: int, rate: float, layout: str, rng: np.random.Generator) -> str:
    if layout == "frame":
        clock = rng.uniform(1e3, 1e5)  # the logger's clock when the capture began
        times = np.round(clock + np.arange(len(values)) * 1000 / rate + rng.normal(0, 0.5, len(values)), 1)
        header = ",".join(["timestamp_ms", *(f"r{r}c{c}" for r in range(grid) for c in range(grid))])
        lines = [f"{t:.1f}," + ",".join(map(str, row)) for t, row in zip(times, values.astype(int))]
        return "\n".join([header, *lines]) + "\n"
    frames = values.astype(int).reshape(len(values), grid, grid)
    return "\n\n".join("\n".join(" ".join(map(str, row)) for row in frame) for frame in frames) + "\n"


def write_touch_captures(out: str | Path, n_speakers: int = 10, per_gesture: int = 6, seed: int = 0, grid: int = 8,
                         rate: float = 54.0, seconds: float = 8.0, layout: Literal["frame", "rows"] = "frame",
                         inverted: bool = True) -> Path:
    """Write ``per_gesture`` captures of every gesture for each of ``n_speakers`` people; returns ``out``."""
    if n_speakers < 2 or per_gesture < 1:
        raise ConfigError(f"touch captures: needs 2 people at least (folds are by person) and 1 capture per gesture; "
                          f"got {n_speakers} and {per_gesture}")
    if grid < 4 or seconds < 2.5 or not 10 <= rate <= 1000 or layout not in ("frame", "rows"):
        raise ConfigError(f"touch captures: grid >= 4, seconds >= 2.5, rate 10-1000 Hz and layout frame or rows; got "
                          f"{grid}, {seconds}, {rate} and {layout!r}")
    out = Path(out)
    rng = np.random.default_rng(seed)
    for s in range(n_speakers):
        speaker, session = f"p{s + 1:02d}", _session(grid, rng)
        for gesture in GESTURES:
            for k in range(per_gesture):
                values = sensor_values(capture(gesture, grid, rate, seconds, rng), session, inverted, rng)
                text = capture_text(values, grid, rate, layout, rng)
                atomic_write_text(out / speaker / f"{speaker}_{gesture}_{k:02d}.csv", text)
    return out
