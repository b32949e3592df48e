"""Latency and real-time factor of live input (`Predictor.stream`, `emofuse predict RUN --stream FILE`).

    python benchmarks/bench_stream.py [RUN] [--seconds 60] [--window 3] [--hop 1] [--chunk-ms 100]

A recording of --seconds is made of RAVDESS takes (../shared/data/ravdess/audio16k) end to end, one actor after
another, so that speakers and emotions change along it; it is fed in --chunk-ms chunks as fast as they are taken
(no sleeping: the figures are compute time, not the pace of a microphone). Per window, the latency is the time from
receiving the chunk that completes it to its result (median, 95th percentile, maximum); the real-time factor is the
compute seconds over the audio seconds (below 1 keeps up with a live microphone; at a 1 s hop a window's latency must
stay under 1 s for the results not to fall behind). Loading the run and the extractor's weights happen before the
clock starts and are printed apart. RUN defaults to the bundled model. The load average is printed with the figures:
on a shared machine the wall clock counts time spent waiting for a core.
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import numpy as np
import torch

from emofuse.data.audio import load_audio
from emofuse.inference.predict import Predictor
from emofuse.inference.stream import audio_chunks

RAVDESS = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "ravdess" / "audio16k"
RATE = 16000  # the takes' own rate: the stream resamples where the run's extractor takes another


def bundled_model() -> Path | None:
    from emofuse import zoo

    return zoo.model_dir(zoo.DEFAULT) if zoo.DEFAULT in zoo.names() else None


def recording(seconds: float) -> np.ndarray:
    """``seconds`` of RAVDESS takes end to end: the first takes of each actor in turn, then the next ones."""
    actors = sorted(RAVDESS.glob("Actor_*"))
    takes = [sorted(a.glob("*.flac")) for a in actors]
    pieces, total = [], 0
    for i in range(max(map(len, takes))):
        for files in takes:
            if i < len(files) and total < seconds * RATE:
                pieces.append(load_audio(files[i], RATE))
                total += len(pieces[-1])
    return np.concatenate(pieces)[:round(seconds * RATE)]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("run", type=Path, nargs="?", default=bundled_model(),
                   help="a run or model directory (default: the bundled model, where emofuse has one)")
    p.add_argument("--seconds", type=float, default=60.0, help="length of the recording (default 60)")
    p.add_argument("--window", type=float, default=3.0, help="window in seconds (default 3)")
    p.add_argument("--hop", type=float, default=1.0, help="hop in seconds (default 1)")
    p.add_argument("--chunk-ms", type=float, default=100.0, help="chunk length in ms (default 100)")
    args = p.parse_args()
    if args.run is None:
        p.error("RUN is required: emofuse has no bundled model")

    started = time.perf_counter()
    predictor = Predictor(args.run)
    wave = recording(args.seconds)
    windows = predictor.stream(audio_chunks(wave, RATE, args.chunk_ms / 1000), RATE, window_s=args.window, hop_s=args.hop)
    print(f"{args.run}: {predictor.config.features.audio.name} features, {len(predictor.folds)} fold model(s); loading "
          f"the run, the recording and the extractor took {time.perf_counter() - started:.1f} s (not counted below)")
    load_before = os.getloadavg()[0]
    wall, cpu = time.perf_counter(), time.process_time()
    latencies = np.array([w.latency_s for w in windows]) * 1000
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    audio_s = len(wave) / RATE
    print(f"{audio_s:.1f} s of audio in {args.chunk_ms:g} ms chunks, fed as fast as taken; window {args.window:g} s, "
          f"hop {args.hop:g} s: {len(latencies)} windows")
    print(f"latency per window: median {np.median(latencies):.0f} ms, p95 {np.percentile(latencies, 95):.0f} ms, "
          f"max {latencies.max():.0f} ms")
    print(f"real-time factor: {wall / audio_s:.3f} (compute {wall:.2f} s wall, {cpu:.2f} s process CPU, over "
          f"{audio_s:.1f} s of audio)")
    print(f"torch threads {torch.get_num_threads()} (the fold models run on 1), {os.cpu_count()} CPUs; load average "
          f"{load_before:.1f} before, {os.getloadavg()[0]:.1f} after (1-minute)")


if __name__ == "__main__":
    main()
