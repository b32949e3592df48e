"""Wall time of the whole method comparison (every configs/ravdess_<method>.yaml x seeds x 6 folds) on cached features.

    python benchmarks/bench_compare.py [--data ../shared/data/ravdess] [--seeds 3] [--out DIR]

Features are extracted into the cache first (not timed); the comparison then runs in a fresh directory (or
--out, which must not hold earlier runs, since finished runs would be read back instead of timed). Target on
a 2-core CPU: under 30 minutes for all methods x 3 seeds x 6 folds. Figures are printed, not asserted.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import torch

from emofuse.config.loading import load_config
from emofuse.experiments.compare import Variant, run_compare
from emofuse.features.cache import FeatureCache, default_cache_dir
from emofuse.datasets.feature_set import build_ravdess_features

REPO = Path(__file__).resolve().parents[1]
METHODS = ["ce", "multiplication", "concat", "cbp", "tfn", "mmtm", "msaf", "cfn_sr", "focal", "m3er", "mars_epoch0", "mars"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data" / "ravdess")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--jobs", type=int, default=2, help="(method, seed) runs at a time, one thread each")
    parser.add_argument("--out", type=Path, default=None, help="keep the runs here (default: a temporary directory)")
    args = parser.parse_args()
    paths = [REPO / "configs" / f"ravdess_{m}.yaml" for m in METHODS]
    variants = [Variant(c.name, c) for c in map(load_config, paths)]
    cache = FeatureCache(default_cache_dir())
    build_ravdess_features(args.data, variants[0].config.data, variants[0].config.features, cache, progress=False)
    print(f"machine: {os.cpu_count()} CPUs, torch {torch.__version__}, {torch.get_num_threads()} threads, "
          f"load average before: {os.getloadavg()[0]:.2f}")
    with tempfile.TemporaryDirectory() as tmp:
        out = args.out or Path(tmp) / "compare"
        if out.exists() and any(out.iterdir()):
            raise SystemExit(f"{out} is not empty: finished runs would be read back, not timed")
        started = time.perf_counter()
        summary = run_compare(variants, args.data, out, cache.root, seeds=args.seeds, reference="ravdess_mars",
                              progress=False, sources=[str(p.relative_to(REPO)) for p in paths], jobs=args.jobs)
        total = time.perf_counter() - started
    print(f"{len(variants)} methods x {args.seeds} seeds x 6 folds, {args.jobs} jobs: {total:.0f} s ({total / 60:.1f} min); "
          f"load average after: {os.getloadavg()[0]:.2f}")
    for row in summary["table"]:
        print(f"  {row['method']:<24} accuracy {row['accuracy_mean']:.4f} ± {row['accuracy_std']:.4f} "
              f"[{row['ci_low']:.4f}, {row['ci_high']:.4f}]  Δ {row['delta_vs_reference']:+.4f} "
              f"[{row['delta_ci_low']:+.4f}, {row['delta_ci_high']:+.4f}]  p folds {row['p_fold']:.3g} "
              f"(Holm {row['p_fold_holm']:.3g}), p speakers {row['p_speaker']:.3g} (Holm {row['p_speaker_holm']:.3g})")
    print(f"budget: early stopping never before {summary['budget']['min_epochs']} epochs for every method "
          f"(set by {summary['budget']['set_by']})")


if __name__ == "__main__":
    main()
