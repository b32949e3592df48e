"""Decoding audio and video from any container FFmpeg reads (mp4, flv, webm, mkv, wav, flac, mp3, ...) with PyAV.

Audio comes out as mono float32 at the requested rate: channels are averaged and the signal is
resampled with soxr, exactly as the soundfile path of ``emofuse.data.audio`` does, so a clip gives
the same features whichever decoder read it. Video comes out as RGB uint8 frames with their
presentation times in seconds, optionally thinned to a target rate and capped in number.
Every failure is a DataError naming the file. ``data.media_check.check_media`` is the one check that ``emofuse predict``
and ``emofuse serve`` both make before a model sees a file, so that both refuse the same files in the same words.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from emofuse.core.errors import DataError
from emofuse.data.ravdess import AUDIO_SUFFIXES as RAVDESS_AUDIO, VIDEO_SUFFIXES as RAVDESS_VIDEO

AUDIO_SUFFIXES = (*RAVDESS_AUDIO, ".mp3", ".ogg", ".m4a", ".opus")  # the containers a corpus or a user's files come in
VIDEO_SUFFIXES = (*RAVDESS_VIDEO, ".mpg", ".mpeg", ".wmv")


class NoStream(DataError):
    """The file holds no stream of the kind asked for (an audio-only file asked for video): not a broken file."""


class BadMedia(DataError):
    """A file that is not a whole, readable recording; ``kind`` says how (serve's problem code: empty_file, not_media,
    truncated, corrupt, does_not_exist)."""

    def __init__(self, path: str | Path, kind: str, problem: str):
        super().__init__(path, problem)
        self.kind = kind


@dataclass
class VideoFrames:
    frames: np.ndarray  # (N, H, W, 3) uint8 RGB
    timestamps: np.ndarray  # (N,) float64 seconds from the start of the stream
    fps: float  # the stream's nominal frame rate (before any subsampling)
    duration: float  # seconds covered by the stream


@dataclass
class MediaInfo:
    has_audio: bool
    has_video: bool
    duration: float  # seconds (container duration, else the longest stream's)


def _open(path: Path):
    import av

    if not path.is_file():
        raise DataError(path, "media file does not exist")
    try:
        return av.open(str(path))
    except (av.error.FFmpegError, UnicodeDecodeError) as err:  # PyAV reads container metadata (an mp4's brand) as UTF-8
        raise DataError(path, f"cannot open media file ({_reason(err)})") from None


def _reason(err: Exception) -> str:
    return getattr(err, "strerror", None) or str(err)


def _stream_duration(stream) -> float | None:
    if stream.duration is not None and stream.time_base is not None:
        return float(stream.duration * stream.time_base)
    return None


def _container_duration(container) -> float:
    import av

    if container.duration is not None:
        return container.duration / av.time_base
    durations = [d for d in (_stream_duration(s) for s in container.streams) if d is not None]
    return max(durations, default=0.0)


def probe(path: str | Path) -> MediaInfo:
    """Which streams a file holds and how long it lasts, without decoding it."""
    path = Path(path)
    with _open(path) as container:
        return MediaInfo(bool(container.streams.audio), bool(container.streams.video), _container_duration(container))


MIN_SAMPLE_RATE = 1000


def to_mono_at_rate(path: str | Path, wave: np.ndarray, file_rate: int, sample_rate: int) -> np.ndarray:
    """(samples, channels) float32 -> mono float32 at ``sample_rate``; shared by every audio decoder."""
    if wave.shape[0] == 0:
        raise DataError(path, "audio file holds no samples")
    if file_rate < MIN_SAMPLE_RATE:  # a forged header: 1 Hz would resample a few KB into hundreds of MB
        raise DataError(path, f"sample rate {file_rate} Hz: below {MIN_SAMPLE_RATE} Hz, not a usable recording")
    wave = wave.mean(axis=1)
    if not np.isfinite(wave).all():
        raise DataError(path, "audio holds NaN or infinite samples")
    if file_rate != sample_rate:
        wave = resample(wave, file_rate, sample_rate)
    return np.ascontiguousarray(wave, dtype=np.float32)


def resample(wave: np.ndarray, file_rate: int, sample_rate: int) -> np.ndarray:
    """soxr's high-quality resampler, the length fixed to ceil(n * ratio): librosa's ``resample(res_type="soxr_hq")``
    sample for sample (tests/test_media.py), without importing librosa (seconds) on the prediction path."""
    import soxr

    out = soxr.resample(wave, file_rate, sample_rate, quality="soxr_hq")
    n = int(np.ceil(len(wave) * sample_rate / file_rate))
    return np.pad(out, (0, max(0, n - len(out))))[:n]


def decode_audio(path: str | Path, sample_rate: int) -> np.ndarray:
    """The first audio stream of ``path`` as mono float32 at ``sample_rate`` Hz."""
    import av

    path = Path(path)
    with _open(path) as container:
        if not container.streams.audio:
            raise NoStream(path, "no audio stream in the file")
        stream = container.streams.audio[0]
        if stream.codec_context is None:  # a stream whose codec parameters the container lost (a cut-off mp4)
            raise DataError(path, "cannot decode audio (the audio stream names no codec FFmpeg can open)")
        # Only the sample format is converted here (to planar float); channel mixing and the rate are
        # left to to_mono_at_rate so that every decoder produces the same signal.
        resampler = av.AudioResampler(format="fltp")
        chunks: list[np.ndarray] = []
        file_rate = stream.codec_context.sample_rate or stream.rate
        try:
            for frame in container.decode(stream):
                for out in resampler.resample(frame):
                    chunks.append(out.to_ndarray())
            for out in resampler.resample(None):
                chunks.append(out.to_ndarray())
        except av.error.FFmpegError as err:
            raise DataError(path, f"cannot decode audio ({_reason(err)})") from None
    if not chunks:
        raise DataError(path, "audio file holds no samples")
    channels = min(c.shape[0] for c in chunks)  # a mid-stream layout change keeps the common channels
    wave = np.concatenate([c[:channels] for c in chunks], axis=1).T
    return to_mono_at_rate(path, wave, int(file_rate), sample_rate)


def decode_video(path: str | Path, fps: float | None = None, max_frames: int | None = None,
                 min_frames: int | None = None) -> VideoFrames:
    """RGB frames of the first video stream, thinned to at most ``fps`` frames per second and ``max_frames`` frames;
    ``min_frames`` raises the rate for a video too short to give that many at ``fps`` (with ``fps=None``: about
    ``min_frames`` frames evenly spaced over the video).

    Thinning keeps a frame when its timestamp reaches the next slot of the target rate, so the
    kept frames are evenly spaced in time whatever the source rate (variable rates included).
    """
    import av

    if fps is not None and fps <= 0:
        raise ValueError("fps must be positive")
    path = Path(path)
    with _open(path) as container:
        if not container.streams.video:
            raise NoStream(path, "no video stream in the file")
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        length = _container_duration(container)
        if min_frames is not None and length > 0:
            fps = max(fps or 0.0, min_frames / length)
        rate = float(stream.average_rate or stream.guessed_rate or 25.0)
        frames, times = [], []
        next_slot = None
        period = 1.0 / fps if fps is not None else 0.0
        tolerance = 0.5 / rate  # timestamps are rounded (to 1 ms in flv): half a source frame of slack
        try:
            for i, frame in enumerate(container.decode(stream)):
                t = float(frame.time) if frame.time is not None else i / rate
                if fps is not None:
                    next_slot = t if next_slot is None else next_slot
                    if t < next_slot - tolerance:
                        continue
                    next_slot += period * max(1.0, np.floor((t - next_slot) / period) + 1)
                frames.append(frame.to_ndarray(format="rgb24"))
                times.append(t)
                if max_frames is not None and len(frames) >= max_frames:
                    break
        except av.error.FFmpegError as err:
            raise DataError(path, f"cannot decode video ({_reason(err)})") from None
        duration = _stream_duration(stream) or _container_duration(container)
    if not frames:
        raise DataError(path, "video stream holds no frames")
    return VideoFrames(np.stack(frames), np.asarray(times, dtype=np.float64), rate, float(duration))
