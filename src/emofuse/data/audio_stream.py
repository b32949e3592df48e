"""A recording decoded in pieces: mono float32 blocks at a requested rate, never the whole file in memory.

Long recordings (an hour-long call or interview) are segmented in passes over these blocks. WAV and FLAC are read
with soundfile's block reader, any other container with PyAV frame by frame; channels are averaged and the signal is
resampled as one stream (soxr keeps its filter state from block to block), so the blocks put end to end are the
signal ``emofuse.data.audio.load_audio`` gives, up to the resampler's rounding at block edges.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import soundfile as sf

from emofuse.core.errors import DataError
from emofuse.data.audio import SOUNDFILE_SUFFIXES
from emofuse.data.media import MIN_SAMPLE_RATE, NoStream, _open, _reason

BLOCK_S = 30.0  # seconds per block read: memory stays a few MB whatever the recording's length


def duration_s(path: str | Path) -> float:
    """The recording's length in seconds from its header (soundfile) or container (PyAV), without decoding it."""
    path = Path(path)
    if not path.is_file():
        raise DataError(path, "audio file does not exist")
    if path.suffix.lower() in SOUNDFILE_SUFFIXES:
        try:
            info = sf.info(str(path))
        except (sf.LibsndfileError, RuntimeError) as err:
            raise DataError(path, f"cannot read audio header ({err})") from None
        return info.frames / info.samplerate if info.samplerate else 0.0
    from emofuse.data.media import probe

    return probe(path).duration


def audio_blocks(path: str | Path, sample_rate: int, block_s: float = BLOCK_S) -> Iterator[np.ndarray]:
    """``path``'s audio as mono float32 blocks at ``sample_rate`` Hz (about ``block_s`` seconds each; the last
    shorter). A file that cannot be decoded is a DataError naming it."""
    path = Path(path)
    if not path.is_file():
        raise DataError(path, "audio file does not exist")
    pieces = _soundfile_pieces(path, block_s) if path.suffix.lower() in SOUNDFILE_SUFFIXES else _pyav_pieces(path)
    resampler, first = None, True
    for wave, rate in pieces:
        if first:
            if rate < MIN_SAMPLE_RATE:
                raise DataError(path, f"sample rate {rate} Hz: below {MIN_SAMPLE_RATE} Hz, not a usable recording")
            if rate != sample_rate:
                import soxr

                resampler = soxr.ResampleStream(rate, sample_rate, 1, dtype="float32", quality="HQ")
            first = False
        mono = np.ascontiguousarray(wave.mean(axis=1), dtype=np.float32)
        if not np.isfinite(mono).all():
            raise DataError(path, "audio holds NaN or infinite samples")
        out = resampler.resample_chunk(mono) if resampler is not None else mono
        if len(out):
            yield out
    if first:
        raise DataError(path, "audio file holds no samples")
    if resampler is not None:
        tail = resampler.resample_chunk(np.zeros(0, np.float32), last=True)
        if len(tail):
            yield tail


def array_blocks(wave: np.ndarray, sample_rate: int, block_s: float = BLOCK_S) -> Iterator[np.ndarray]:
    """A waveform already in memory, in the blocks ``audio_blocks`` gives for a file."""
    step = max(1, round(block_s * sample_rate))
    for i in range(0, len(wave), step):
        yield np.ascontiguousarray(wave[i:i + step], dtype=np.float32)


def _soundfile_pieces(path: Path, block_s: float) -> Iterator[tuple[np.ndarray, int]]:
    try:
        with sf.SoundFile(str(path)) as f:
            rate = f.samplerate
            for block in f.blocks(blocksize=max(1, round(block_s * rate)), dtype="float32", always_2d=True):
                yield block, rate
    except (sf.LibsndfileError, RuntimeError, TypeError) as err:
        raise DataError(path, f"cannot decode audio ({err})") from None


def _pyav_pieces(path: Path) -> Iterator[tuple[np.ndarray, int]]:
    import av

    with _open(path) as container:
        if not container.streams.audio:
            raise NoStream(path, "no audio stream in the file")
        stream = container.streams.audio[0]
        if stream.codec_context is None:
            raise DataError(path, "cannot decode audio (the audio stream names no codec FFmpeg can open)")
        rate = int(stream.codec_context.sample_rate or stream.rate)
        resampler = av.AudioResampler(format="fltp")  # planar float; mixing and rate as for every decoder
        channels = None
        try:
            for frame in container.decode(stream):
                for out in resampler.resample(frame):
                    data = out.to_ndarray()
                    channels = channels or data.shape[0]
                    yield data[:channels].T, rate  # a mid-stream layout change keeps the first layout's channels
            for out in resampler.resample(None):
                yield out.to_ndarray()[:channels].T, rate
        except av.error.FFmpegError as err:
            raise DataError(path, f"cannot decode audio ({_reason(err)})") from None
