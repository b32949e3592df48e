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

from emofuse.core.errors import DataError

EMOTIONS = ("neutral", "calm", "happy", "sad", "angry", "fearful", "disgust", "surprised")
MODALITY_CODES = {1: "audio-video", 2: "video-only", 3: "audio-only"}
CHANNEL_CODES = {1: "speech", 2: "song"}
AUDIO_SUFFIXES = (".wav", ".flac")
VIDEO_SUFFIXES = (".mp4", ".avi", ".mkv", ".mov", ".webm", ".flv")  # RAVDESS ships mp4; re-encodings keep the name
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
    for suffix in (*AUDIO_SUFFIXES, *VIDEO_SUFFIXES, ".csv"):
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


def _find(root: Path, suffixes: tuple[str, ...], modalities: tuple[int, ...], channel: int, what: str) -> dict[str, Path]:
    """RAVDESS files of the given modalities and vocal channel under ``root``, keyed by stem.

    Files are looked for in ``Actor_XX`` folders at any depth; the actor in the folder name must
    match the actor field of the file name.
    """
    root = Path(root)
    if not root.is_dir():
        raise DataError(root, f"{what} directory does not exist")
    found: dict[str, Path] = {}
    for path in sorted(root.rglob("*")):
        if path.suffix.lower() not in suffixes or not path.is_file():
            continue
        name = parse_name(path)
        if name.modality not in modalities or name.channel != channel:
            continue
        folder = path.parent.name
        if folder.startswith("Actor_") and folder != f"Actor_{name.actor:02d}":
            raise DataError(path, f"actor {name.actor:02d} in the name but the file is in folder {folder}")
        if name.stem in found:
            raise DataError(path, f"duplicate take, also stored as {found[name.stem]}")
        found[name.stem] = path
    if not found:
        codes = "/".join(f"{m:02d}" for m in modalities)
        raise DataError(root, f"no RAVDESS {what} files ({'/'.join(suffixes)} named {codes}-{channel:02d}-...) found")
    return found


def find_audio_files(root: Path, channel: int = 1) -> dict[str, Path]:
    """Audio files (modality 03, .wav/.flac) of one vocal channel under ``root``, keyed by take."""
    return {parse_name(p).take: p for p in _find(root, AUDIO_SUFFIXES, (3,), channel, "audio").values()}


def find_video_files(root: Path, channel: int = 1) -> dict[str, Path]:
    """Video files of one vocal channel under ``root`` keyed by take: the audio-video file (modality 01) of a
    take, or its video-only file (02) where the audio-video one is absent (both show the same performance)."""
    files = _find(root, VIDEO_SUFFIXES, (1, 2), channel, "video")
    by_take: dict[str, Path] = {}
    for stem in sorted(files, key=lambda s: (s[3:], s[:2])):  # per take, 01 before 02
        by_take.setdefault(stem[3:], files[stem])
    return by_take
