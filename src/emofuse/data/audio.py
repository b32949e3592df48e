"""Audio decoding for feature extraction: any sample rate in, mono float32 at the extractor's rate out."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import soundfile as sf

from emofuse.data.errors import DataError


def load_audio(path: str | Path, sample_rate: int) -> np.ndarray:
    """Decode ``path`` to mono float32 at ``sample_rate`` Hz (resampled with soxr when needed)."""
    path = Path(path)
    if not path.is_file():
        raise DataError(path, "audio file does not exist")
    try:
        wave, file_rate = sf.read(str(path), dtype="float32", always_2d=True)
    except (sf.LibsndfileError, RuntimeError, TypeError) as err:
        raise DataError(path, f"cannot decode audio ({err})") from None
    if wave.shape[0] == 0:
        raise DataError(path, "audio file holds no samples")
    wave = wave.mean(axis=1)
    if not np.isfinite(wave).all():
        raise DataError(path, "audio holds NaN or infinite samples")
    if file_rate != sample_rate:
        import librosa

        wave = librosa.resample(wave, orig_sr=file_rate, target_sr=sample_rate, res_type="soxr_hq")
    return np.ascontiguousarray(wave, dtype=np.float32)
