"""Wall time of (a) feature extraction for every RAVDESS take and (b) a full 6-fold CV on cached features.

    python benchmarks/bench_ravdess.py [--data ../shared/data/ravdess] [--config configs/ravdess_mars.yaml]

Extraction starts from an empty cache; the CV then runs on the cache it filled (a fresh run
directory, so nothing is resumed). Besides wall time, the extraction's CPU time (this process and its
worker processes, all threads) is printed: on a machine shared with other jobs the wall clock also counts the
time the workers waited for a core, and CPU time / workers is what an otherwise idle machine would take at
best. Figures are printed, not asserted: compare them with the targets in the docs.
"""

from __future__ import annotations

import argparse
import os
import resource
import tempfile
import time
from pathlib import Path

import soundfile
import torch

from emofuse.config.loading import load_config
from emofuse.protocol.cross_validation import run_cross_validation
from emofuse.features.cache import FeatureCache
from emofuse.data.ravdess import find_audio_files
from emofuse.datasets.feature_set import build_ravdess_features

REPO = Path(__file__).resolve().parents[1]


def _cpu_seconds() -> float:
    """User + system time of this process and of its finished worker processes."""
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data" / "ravdess")
    parser.add_argument("--config", type=Path, default=REPO / "configs" / "ravdess_mars.yaml")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    args = parser.parse_args()
    config = load_config(args.config, args.overrides)
    print(f"machine: {os.cpu_count()} CPUs, torch {torch.__version__}, {torch.get_num_threads()} threads, "
          f"load average {os.getloadavg()[0]:.1f} before the run")
    with tempfile.TemporaryDirectory() as tmp:
        cache = FeatureCache(Path(tmp) / "cache")
        started, cpu_started = time.perf_counter(), _cpu_seconds()
        fs = build_ravdess_features(args.data, config.data, config.features, cache, progress=False)
        extract_s, extract_cpu_s = time.perf_counter() - started, _cpu_seconds() - cpu_started
        started = time.perf_counter()
        build_ravdess_features(args.data, config.data, config.features, cache, progress=False)
        cached_s = time.perf_counter() - started
        audio_s = sum(soundfile.info(str(p)).duration for p in find_audio_files(args.data / config.data.audio_dir).values())
        print(f"(a) feature extraction ({config.features.audio.name}, {len(fs.meta)} takes, {audio_s:.0f} s of audio, "
              f"{config.features.workers} workers): {extract_s:.1f} s, real-time factor {extract_s / audio_s:.4f}; "
              f"CPU time {extract_cpu_s:.1f} s, real-time factor per worker {extract_cpu_s / config.features.workers / audio_s:.4f}; "
              f"again from the cache: {cached_s:.1f} s (load average {os.getloadavg()[0]:.1f})")
        started = time.perf_counter()
        summary = run_cross_validation(config, args.data, Path(tmp) / "run", cache.root, progress=False)
        cv_s = time.perf_counter() - started
        epochs = sum(f["epochs_run"] for f in summary["folds"])
        print(f"(b) {len(summary['folds'])}-fold CV of {config.name} on cached features: {cv_s:.1f} s "
              f"({epochs} epochs in all); accuracy {summary['accuracy_mean']:.4f} ± {summary['accuracy_std']:.4f}, "
              f"macro-F1 {summary['macro_f1_mean']:.4f}")


if __name__ == "__main__":
    main()
