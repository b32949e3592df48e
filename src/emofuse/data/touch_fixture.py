"""Synthetic social-touch data: 8 x 8 pressure grids at 50 Hz, four gestures, several people (for tests and demos).

Public social-touch corpora record a pressure grid on a surface that people touch (8 x 8 sensors, tens of frames per
second, values 0-1023). Here each gesture has a pattern of its own in space and time:

- pat: two to four short (0.1-0.16 s) presses at random spots;
- stroke: a blob that moves across the grid, once or twice;
- press: broad pressure that rises and is held;
- tickle: small light spots that jump every frame or two.

Every person (the ``speaker`` column, as the folds need it) has a gain and an offset of their own, what speaker
normalisation removes; sensor noise comes on top, values are clipped to 0-1023. Samples last 1-2 s (``seconds``). Written as
``out/touch/<id>.npy`` (T, 64) float32 frames flattened row-major, and ``out/manifest.csv`` (id, speaker, label,
touch_features, relative paths). Not real data.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from emofuse.core.registry import ConfigError

GESTURES = ("pat", "stroke", "press", "tickle")
GRID = 8
RATE = 50  # frames per second
FULL_SCALE = 1023.0


def _blob(row: float, col: float, sigma: float, grid: int = GRID) -> np.ndarray:
    r, c = np.mgrid[0:grid, 0:grid]
    return np.exp(-((r - row) ** 2 + (c - col) ** 2) / (2 * sigma**2))


def _spot(rng: np.random.Generator, grid: int = GRID) -> tuple[float, float]:
    return tuple(rng.uniform(1, grid - 2, 2))


def gesture_frames(gesture: str, frames: int, rng: np.random.Generator, grid: int = GRID, rate: float = RATE) -> np.ndarray:
    """The pressure pattern (frames, grid, grid) of one gesture at ``rate`` frames per second, in [0, 1]; sizes in
    cells are those of an 8 x 8 grid scaled to ``grid``."""
    out, scale, per = np.zeros((frames, grid, grid)), grid / GRID, rate / RATE
    if gesture == "pat":
        starts = np.sort(rng.choice(frames - int(8 * per), size=rng.integers(2, 5), replace=False))
        for start in starts:
            out[start : start + int(rng.integers(5, 9) * per)] += rng.uniform(0.6, 0.9) * _blob(*_spot(rng, grid), scale, grid)
    elif gesture == "stroke":
        passes = int(rng.integers(1, 3))
        length = frames // passes
        for k in range(passes):
            lane, ends, across_rows = rng.uniform(1, grid - 2), rng.permutation([0.0, grid - 1.0]), rng.random() < 0.5
            strength = rng.uniform(0.5, 0.8)
            for i, position in enumerate(np.linspace(*ends, length)):
                out[k * length + i] += strength * _blob(*((lane, position) if across_rows else (position, lane)),
                                                        1.2 * scale, grid)
    elif gesture == "press":
        rise = int(0.2 * rate)
        envelope = np.minimum(1.0, np.arange(frames) / rise)[:, None, None]
        out += rng.uniform(0.7, 1.0) * envelope * _blob(*_spot(rng, grid), 2.5 * scale, grid)
    elif gesture == "tickle":
        centre = np.array(_spot(rng, grid))
        t = 0
        while t < frames:
            hold = max(1, int(rng.integers(1, 3) * per))
            row, col = np.clip(centre + rng.normal(0, 1.5 * scale, 2), 0, grid - 1)
            out[t : t + hold] += rng.uniform(0.3, 0.5) * _blob(row, col, 0.7 * scale, grid)
            t += hold + int(rng.integers(0, 2) * per)
    else:
        raise ValueError(f"unknown gesture {gesture!r}; known: {', '.join(GESTURES)}")
    return np.clip(out, 0, 1)


def write_touch_fixture(out: str | Path, n_speakers: int = 6, per_gesture: int = 8, seed: int = 0,
                        seconds: tuple[float, float] = (1.0, 2.0)) -> Path:
    """Write ``per_gesture`` samples of every gesture for each of ``n_speakers`` people; returns the manifest's path."""
    if n_speakers < 2 or per_gesture < 1:
        raise ConfigError(f"touch fixture: needs 2 people at least (folds are by person) and 1 sample per gesture; "
                          f"got {n_speakers} and {per_gesture}")
    if not 0.5 <= seconds[0] <= seconds[1]:
        raise ConfigError(f"touch fixture: seconds must be (shortest, longest) with shortest >= 0.5; got {seconds}")
    out = Path(out)
    (out / "touch").mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    rows = []
    for s in range(n_speakers):
        speaker = f"p{s + 1:02d}"
        gain, offset = rng.uniform(0.6, 1.4), rng.uniform(0, 100)
        for gesture in GESTURES:
            for k in range(per_gesture):
                frames = int(rng.integers(int(seconds[0] * RATE), int(seconds[1] * RATE) + 1))
                pressure = gain * FULL_SCALE * gesture_frames(gesture, frames, rng) + offset
                pressure = np.clip(pressure + rng.normal(0, 20, pressure.shape), 0, FULL_SCALE)
                sample = f"{speaker}_{gesture}_{k:02d}"
                np.save(out / "touch" / f"{sample}.npy", pressure.reshape(frames, GRID * GRID).astype(np.float32))
                rows.append({"id": sample, "speaker": speaker, "label": gesture, "touch_features": f"touch/{sample}.npy"})
    manifest = out / "manifest.csv"
    pd.DataFrame(rows).to_csv(manifest, index=False)
    return manifest
