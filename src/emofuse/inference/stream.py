"""Live input (``Predictor.stream``, ``emofuse predict --stream``): audio in chunks, predicted on a sliding window."""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

import numpy as np

from emofuse.inference.speech import why_no_speech


@dataclass(frozen=True)
class StreamWindow:
    """One window of live input: where it lies in the stream (seconds from the first sample), the fused probabilities
    and prediction, ``latency_s``, the seconds from receiving the chunk that completed the window to this result, and
    the run's modalities left out of the fusion, with the reason (as predict's ``missing``). A window without speech
    has no class: ``pred`` and ``probs`` are None and ``no_speech`` says why (with the predictor's speech gate)."""
    start_s: float
    end_s: float
    probs: dict[str, float] | None
    pred: str | None
    latency_s: float
    missing: dict[str, str]
    no_speech: str | None = None


def audio_chunks(wave: np.ndarray, sample_rate: int, chunk_s: float, real_time: bool = False) -> Iterator[np.ndarray]:
    """``wave`` in pieces of ``chunk_s`` seconds, as a microphone delivers it: with ``real_time`` each piece only once
    the wall clock has passed its last sample (a recording played live), otherwise as fast as they are taken."""
    step = max(1, round(chunk_s * sample_rate))
    started = time.perf_counter()
    for i in range(0, len(wave), step):
        piece = wave[i:i + step]
        if real_time:
            time.sleep(max(0.0, started + (i + len(piece)) / sample_rate - time.perf_counter()))
        yield piece


def at_rate(chunks: Iterable[np.ndarray], sample_rate: int | None, rate: int) -> Iterator[tuple[float, np.ndarray]]:
    """Each chunk as mono float32 at ``rate``, with the time it arrived. Resampled as one stream (soxr keeps its filter
    state from chunk to chunk, so chunk boundaries leave no mark), the resampler's tail flushed at the end."""
    resampler = None
    if sample_rate is not None and sample_rate != rate:
        import soxr

        resampler = soxr.ResampleStream(sample_rate, rate, 1, dtype="float32", quality="HQ")
    arrived = time.perf_counter()
    for chunk in chunks:
        arrived = time.perf_counter()
        chunk = np.asarray(chunk, dtype=np.float32)
        if chunk.ndim != 1:
            raise ValueError(f"a chunk must be 1-D mono audio, not of shape {chunk.shape}")
        yield arrived, resampler.resample_chunk(chunk) if resampler else chunk
    if resampler is not None:
        yield arrived, resampler.resample_chunk(np.zeros(0, np.float32), last=True)


def windows(predictor, chunks: Iterator[tuple[float, np.ndarray]], window: int, hop: int,
             missing: dict[str, str]) -> Iterator[StreamWindow]:
    """Windows of ``window`` samples every ``hop`` samples of the resampled ``chunks``, each predicted as a file of
    that audio on its own would be."""
    rate = predictor.extractor.sample_rate
    buffered, first = np.zeros(0, np.float32), 0  # the stream from sample `first` on: at most a window and a chunk
    end = window  # the next window's end
    for arrived, chunk in chunks:
        buffered = np.concatenate([buffered, chunk])
        while first + len(buffered) >= end:
            start = end - window
            name = f"stream {start / rate:.3f}-{end / rate:.3f} s"
            wave = buffered[start - first:end - first]
            silent = why_no_speech(wave, rate) if predictor.speech_gate else None
            if silent:  # no speech, no emotion
                yield StreamWindow(start / rate, end / rate, None, None, time.perf_counter() - arrived, missing, silent)
            else:
                raw = {"audio": predictor.audio_features(wave, name, {})}
                (entry,) = predictor.predict_extracted([name], [(raw, missing, {})])  # as a file on its own
                yield StreamWindow(start / rate, end / rate, entry["probs"], entry["pred"], time.perf_counter() - arrived,
                                   missing)
            end += hop
        drop = min(end - window - first, len(buffered))
        buffered, first = buffered[drop:], first + drop
