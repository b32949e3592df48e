"""Audio decoding for feature extraction: any sample rate in, mono float32 at the extractor's rate out.

WAV and FLAC (the RAVDESS path) are read with soundfile; any other container (mp3, mp4, flv, webm,
...) falls back to PyAV (emofuse.data.media), which ends in the same mono + soxr step.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import soundfile as sf

from emofuse.core.errors import DataError
from emofuse.data.media import decode_audio, to_mono_at_rate

SOUNDFILE_SUFFIXES = (".wav", ".flac")


def load_audio(path: str | Path, sample_rate: int) -> np.ndarray:
    """Decode ``path`` to mono float32 at ``sample_rate`` Hz (resampled with soxr when needed)."""
    path = Path(path)
    if not path.is_file():
        raise DataError(path, "audio file does not exist")
    if path.suffix.lower() not in SOUNDFILE_SUFFIXES:
        return decode_audio(path, sample_rate)
    try:
        wave, file_rate = sf.read(str(path), dtype="float32", always_2d=True)
    except (sf.LibsndfileError, RuntimeError, TypeError) as err:
        raise DataError(path, f"cannot decode audio ({err})") from None
    except MemoryError:  # soundfile allocates the frames the header announces: a corrupt FLAC can announce billions
        raise DataError(path, "cannot decode audio (its header announces more samples than fit in memory)") from None
    return to_mono_at_rate(path, wave, file_rate, sample_rate)
