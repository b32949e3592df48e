"""RAVDESS file names and directory layout.

Official names have seven two-digit fields,
``modality-channel-emotion-intensity-statement-repetition-actor`` (e.g. ``03-01-05-02-01-01-12``).
A *take* is one performance; its audio file (modality 03) and its audio-video file (01) share the
last six fields, which is how modalities are paired.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from emofuse.data.errors import DataError

EMOTIONS = ("neutral", "calm", "happy", "sad", "angry", "fearful", "disgust", "surprised")
MODALITY_CODES = {1: "audio-video", 2: "video-only", 3: "audio-only"}
CHANNEL_CODES = {1: "speech", 2: "song"}
AUDIO_SUFFIXES = (".wav", ".flac")
_STEM = re.compile(r"^(\d{2})-(\d{2})-(\d{2})-(\d{2})-(\d{2})-(\d{2})-(\d{2})$")


@dataclass(frozen=True, order=True)
class RavdessName:
    modality: int
    channel: int
    emotion: int  # 1..8, see EMOTIONS
    intensity: int  # 1 normal, 2 strong
    statement: int
    repetition: int
    actor: int  # 1..24; odd male, even female

    @property
    def take(self) -> str:
        """Modality-free key shared by the audio and video files of one performance."""
        return f"{self.channel:02d}-{self.emotion:02d}-{self.intensity:02d}-{self.statement:02d}-{self.repetition:02d}-{self.actor:02d}"

    @property
    def stem(self) -> str:
        return f"{self.modality:02d}-{self.take}"

    @property
    def label(self) -> int:
        return self.emotion - 1

    @property
    def emotion_name(self) -> str:
        return EMOTIONS[self.emotion - 1]

    @property
    def female(self) -> bool:
        return self.actor % 2 == 0


def parse_name(name: str | Path) -> RavdessName:
    """Parse a RAVDESS file name or stem; raises DataError naming the file if it is not one."""
    stem = Path(name).name
    for suffix in (*AUDIO_SUFFIXES, ".mp4", ".csv"):
        if stem.lower().endswith(suffix):
            stem = stem[: -len(suffix)]
            break
    m = _STEM.match(stem)
    if not m:
        raise DataError(name, "not a RAVDESS name (expected 7 two-digit fields, e.g. 03-01-05-02-01-01-12)")
    fields = RavdessName(*(int(g) for g in m.groups()))
    checks = [
        (fields.modality in MODALITY_CODES, f"modality {fields.modality:02d} not in 01-03"),
        (fields.channel in CHANNEL_CODES, f"vocal channel {fields.channel:02d} not in 01-02"),
        (1 <= fields.emotion <= 8, f"emotion {fields.emotion:02d} not in 01-08"),
        (fields.intensity in (1, 2), f"intensity {fields.intensity:02d} not in 01-02"),
        (not (fields.emotion == 1 and fields.intensity == 2), "neutral has no strong intensity"),
        (fields.statement in (1, 2), f"statement {fields.statement:02d} not in 01-02"),
        (fields.repetition in (1, 2), f"repetition {fields.repetition:02d} not in 01-02"),
        (1 <= fields.actor <= 24, f"actor {fields.actor:02d} not in 01-24"),
    ]
    for ok, problem in checks:
        if not ok:
            raise DataError(name, problem)
    return fields


def find_audio_files(root: Path, channel: int = 1) -> dict[str, Path]:
    """Audio files (modality 03) of one vocal channel under ``root``, keyed by take.

    Files are looked for in ``Actor_XX`` folders at any depth; the actor in the folder name must
    match the actor field of the file name.
    """
    root = Path(root)
    if not root.is_dir():
        raise DataError(root, "audio directory does not exist")
    found: dict[str, Path] = {}
    for path in sorted(root.rglob("*")):
        if path.suffix.lower() not in AUDIO_SUFFIXES or not path.is_file():
            continue
        name = parse_name(path)
        if name.modality != 3 or name.channel != channel:
            continue
        folder = path.parent.name
        if folder.startswith("Actor_") and folder != f"Actor_{name.actor:02d}":
            raise DataError(path, f"actor {name.actor:02d} in the name but the file is in folder {folder}")
        if name.take in found:
            raise DataError(path, f"duplicate take, also stored as {found[name.take]}")
        found[name.take] = path
    if not found:
        raise DataError(root, "no RAVDESS audio files (.wav/.flac named 03-01-...) found")
    return found
