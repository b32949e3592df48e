"""A long recording through `emofuse predict --segments`: wall time, real-time factor, peak memory.

    python benchmarks/bench_long_recording.py [--minutes 60] [--model NAME]

A recording of --minutes is built from RAVDESS takes and nEMO clips (every speaker, in turn) with pauses of 0.5-3 s
of digital silence (benchmarks/long_recordings.py), written as a 16 kHz FLAC. Then `emofuse predict FILE --segments
--segments-out timeline.csv` runs on it in a child process, as a user would run it: the figures are that process's
wall time (model loading included), its real-time factor (wall time over the recording's length), its CPU time and
its peak resident memory (getrusage of the child; the `emofuse manifest` child before it is far smaller). Targets (issue 32): RTF <= 0.033 (an hour in two minutes) and peak RSS
<= 1.5 GB on the project's 2-core CPU with the default model. The load average is printed with the figures: on a
shared machine the wall clock counts time spent waiting for a core.
"""

from __future__ import annotations

import argparse
import csv
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from long_recordings import SHARED, Take, build, manifest_takes, ravdess_takes

RTF_TARGET, RSS_TARGET_GB = 0.033, 1.5


def interleaved(*corpora: list[Take]) -> list[Take]:
    """Takes of every speaker of every corpus in turn, so that voices, languages and emotions change along it."""
    by_speaker: dict[str, list[Take]] = {}
    for takes in corpora:
        for t in takes:
            by_speaker.setdefault(t.speaker, []).append(t)
    queues, out = list(by_speaker.values()), []
    for i in range(max(map(len, queues))):
        out += [q[i] for q in queues if i < len(q)]
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--minutes", type=float, default=60.0, help="length of the recording (default 60)")
    p.add_argument("--model", default=None, help="a bundled model (default: emofuse's default one)")
    args = p.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        manifest = tmp / "nemo.csv"
        with manifest.open("w") as f:
            subprocess.run(["emofuse", "manifest", "nemo", str(SHARED / "nemo")], stdout=f, stderr=subprocess.DEVNULL,
                           check=True)
        recording = tmp / "long.flac"
        started = time.perf_counter()
        spans = build(interleaved(ravdess_takes(), manifest_takes(manifest)), recording, pauses=(0.5, 3.0),
                      max_s=60 * args.minutes)
        seconds = spans[-1][2]
        print(f"recording: {seconds / 60:.1f} min, {len(spans)} takes (RAVDESS and nEMO) with 0.5-3 s pauses, "
              f"built in {time.perf_counter() - started:.0f} s")
        command = ["emofuse", "predict", str(recording), "--segments", "--segments-out", str(tmp / "timeline.csv")]
        if args.model:
            command += ["--model", args.model]
        load, before = os.getloadavg()[0], resource.getrusage(resource.RUSAGE_CHILDREN)
        started = time.perf_counter()
        subprocess.run(command, stdout=subprocess.DEVNULL, check=True)
        wall = time.perf_counter() - started
        usage = resource.getrusage(resource.RUSAGE_CHILDREN)
        peak_gb = usage.ru_maxrss / 1024 ** 2  # kB on Linux
        cpu = usage.ru_utime + usage.ru_stime - before.ru_utime - before.ru_stime
        with (tmp / "timeline.csv").open(newline="") as f:
            segments = sum(1 for _ in csv.DictReader(f))
    rtf = wall / seconds
    print(f"command: {' '.join(command[:3])} --segments --segments-out timeline.csv")
    print(f"segments: {segments} for {len(spans)} takes")
    print(f"wall time: {wall:.1f} s (model loading included); RTF {rtf:.4f} (target <= {RTF_TARGET}): "
          f"{'met' if rtf <= RTF_TARGET else 'NOT met'}")
    print(f"CPU time: {cpu:.1f} s over all cores ({cpu / seconds:.4f} s per second of audio): the load-independent "
          "figure where others share the machine")
    print(f"peak RSS: {peak_gb:.2f} GB (target <= {RSS_TARGET_GB}): {'met' if peak_gb <= RSS_TARGET_GB else 'NOT met'}")
    print(f"conditions: {os.cpu_count()} CPUs, load average {load:.2f} at the start, Python {sys.version.split()[0]}, "
          f"OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', 'unset')}")


if __name__ == "__main__":
    main()
