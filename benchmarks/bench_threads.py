"""The README's demo on a machine another job keeps busy: `emofuse cv` idle, then with a CPU-bound process beside it.

    python benchmarks/bench_threads.py [--config configs/ravdess_mars.yaml] [--set train.epochs=5 ...] [--default-threads]

Each run is a fresh process on a fresh run directory with a warm feature cache (a first, untimed run fills it), so the
figures are training and scoring time. The busy neighbour is one process spinning in pure Python (one core's worth of
work, as another user's job would be). Target: the busy run within 2x of the idle one. ``--default-threads`` adds a
busy run with torch's default thread count (``--threads`` = the CPU count), the behaviour before emofuse chose threads
for the work, to show what the choice saves.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def _spin(stop) -> None:
    while not stop.is_set():
        sum(range(10_000))


def timed_cv(config: str, sets: list[str], cache: Path, out: Path, threads: int | None = None) -> float:
    argv = [sys.executable, "-m", "emofuse.cli", *(["--threads", str(threads)] if threads else []), "cv", config,
            "--out", str(out), "--cache", str(cache), "--no-progress", *[a for s in sets for a in ("--set", s)]]
    env = {k: v for k, v in os.environ.items() if k not in ("EMOFUSE_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")}
    started = time.perf_counter()
    done = subprocess.run(argv, capture_output=True, text=True, env=env)
    wall = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"emofuse cv failed ({done.returncode}): {done.stderr[-1500:]}")
    return wall


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", default=str(REPO / "configs" / "ravdess_mars.yaml"))
    parser.add_argument("--set", dest="sets", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--cache", type=Path, default=None, help="feature cache (default: a fresh temporary one)")
    parser.add_argument("--default-threads", action="store_true",
                        help="also time a busy run with torch's default threads (slow: minutes)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        cache = args.cache or tmp / "cache"
        warm = timed_cv(args.config, args.sets, cache, tmp / "warm-up")
        print(f"warm-up (fills the feature cache): {warm:.1f} s")
        idle_load = os.getloadavg()[0]
        idle = timed_cv(args.config, args.sets, cache, tmp / "idle")
        stop = mp.Event()
        neighbour = mp.Process(target=_spin, args=(stop,), daemon=True)
        neighbour.start()
        try:
            time.sleep(1.0)
            busy = timed_cv(args.config, args.sets, cache, tmp / "busy")
            busy_default = (timed_cv(args.config, args.sets, cache, tmp / "busy-default", threads=os.cpu_count())
                            if args.default_threads else None)
        finally:
            stop.set()
            neighbour.join()
    print(f"idle: {idle:.1f} s (load average before {idle_load:.2f})")
    print(f"beside a CPU-bound process: {busy:.1f} s, {busy / idle:.2f}x the idle time (target <= 2x)")
    if busy_default is not None:
        print(f"beside a CPU-bound process with --threads {os.cpu_count()} (torch's default): {busy_default:.1f} s, "
              f"{busy_default / idle:.2f}x")
    print(f"machine: {os.cpu_count()} CPUs; config {Path(args.config).name} {' '.join(args.sets)}")


if __name__ == "__main__":
    main()
