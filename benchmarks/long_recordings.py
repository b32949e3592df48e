"""Recordings built from labelled takes joined with pauses, for bench_long_recording.py and bench_segmentation.py.

Each take keeps its own leading and trailing silence; between two takes lies a pause of digital silence drawn from
``pauses`` seconds. The recording is written block by block (a take at a time), so building an hour costs no more
memory than a take.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf

from emofuse.data.audio import load_audio

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data"
RAVDESS = SHARED / "ravdess" / "audio16k"
RAVDESS_EMOTIONS = {"01": "neutral", "02": "calm", "03": "happy", "04": "sad", "05": "angry", "06": "fearful",
                    "07": "disgust", "08": "surprised"}
RATE = 16000


@dataclass(frozen=True)
class Take:
    path: Path
    speaker: str
    label: str


def ravdess_takes() -> list[Take]:
    return [Take(f, f.parent.name, RAVDESS_EMOTIONS[f.stem.split("-")[2]]) for f in sorted(RAVDESS.glob("Actor_*/*.flac"))]


def manifest_takes(manifest: Path) -> list[Take]:
    """The takes of an `emofuse manifest` CSV (its label column: the common vocabulary)."""
    with manifest.open(newline="", encoding="utf-8") as f:
        return [Take(Path(r["audio"]), r["speaker"].strip(), r["label"]) for r in csv.DictReader(f)]


def build(takes: list[Take], path: Path, pauses: tuple[float, float] = (1.0, 2.0), seed: int = 0,
          max_s: float | None = None) -> list[tuple[Take, float, float]]:
    """Write ``takes`` joined with pauses to ``path`` (FLAC, 16 kHz), up to ``max_s`` seconds; returns each take
    written with its start and end (s)."""
    rng = np.random.default_rng(seed)
    spans, at = [], 0
    with sf.SoundFile(path, "w", RATE, 1, subtype="PCM_16") as out:
        for take in takes:
            wave = load_audio(take.path, RATE)
            pause = np.zeros(round(rng.uniform(*pauses) * RATE), np.float32)
            if max_s is not None and (at + len(wave)) / RATE > max_s:
                break
            out.write(wave)
            out.write(pause)
            spans.append((take, at / RATE, (at + len(wave)) / RATE))
            at += len(wave) + len(pause)
    return spans
