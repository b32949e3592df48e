"""Whether a file is a whole, readable recording: the one check ``emofuse predict`` and ``emofuse serve`` make before a
model sees a file (empty, not media, truncated, corrupt), each refusal a :class:`BadMedia` with a code."""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np

from emofuse.core.errors import DataError
from emofuse.data.audio import load_audio
from emofuse.data.media import BadMedia, probe


TRUNCATION_TOLERANCE_S = 0.25  # decoded audio may fall short of the announced duration by this much (or 5 %)


def _wav_data_shortfall(path: Path) -> tuple[int, int] | None:
    """(announced, present) bytes of a RIFF/WAVE file's data chunk when fewer are present than announced."""
    with open(path, "rb") as f:
        head = f.read(12)
        if len(head) < 12 or head[:4] != b"RIFF" or head[8:12] != b"WAVE":
            return None
        total = path.stat().st_size
        while True:
            chunk = f.read(8)
            if len(chunk) < 8:
                return None
            chunk_id, size = chunk[:4], struct.unpack("<I", chunk[4:])[0]
            if chunk_id == b"data":
                present = total - f.tell()
                return (size, present) if size != 0xFFFFFFFF and present < size else None
            f.seek(size + (size & 1), 1)


def check_media(path: str | Path, sample_rate: int | None, name: str | None = None) -> np.ndarray | None:
    """Refuse (BadMedia) what is not a whole, readable recording; return its audio (mono, ``sample_rate``) when it has any.

    A file must hold bytes, open as media, and its audio must decode to the length its header announces (a truncated
    file decodes to less; a WAV's data chunk announces more bytes than the file holds). ``name``: how the refusal names
    the file (default: ``path``); ``sample_rate`` None skips decoding the audio (a model without an audio branch)."""
    path = Path(path)
    name = str(path) if name is None else name
    if not path.is_file():
        raise BadMedia(name, "does_not_exist", "file does not exist")
    if path.stat().st_size == 0:
        raise BadMedia(name, "empty_file", "empty file (0 bytes)")
    try:
        info = probe(path)
    except DataError as err:
        raise BadMedia(name, "not_media", f"not an audio or video file FFmpeg can read ({err.problem})") from None
    if not (info.has_audio or info.has_video):
        raise BadMedia(name, "not_media", "holds no audio or video stream")
    shortfall = _wav_data_shortfall(path)
    if shortfall:
        raise BadMedia(name, "truncated", f"truncated: the WAV header announces {shortfall[0]} bytes of samples, "
                                          f"the file holds {shortfall[1]}")
    if not info.has_audio or sample_rate is None:
        return None
    try:
        wave = load_audio(path, sample_rate)
    except DataError as err:
        raise BadMedia(name, "corrupt", f"the audio cannot be decoded ({err.problem}); the file is corrupt or "
                                        "truncated") from None
    decoded = len(wave) / sample_rate
    if info.duration > 0 and info.duration - decoded > max(TRUNCATION_TOLERANCE_S, 0.05 * info.duration):
        raise BadMedia(name, "truncated", f"truncated: the container announces {info.duration:.2f} s, only "
                                          f"{decoded:.2f} s of audio decode")
    return wave
