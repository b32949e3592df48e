"""Grid search against TPE on the same space, config and data: how soon does TPE reach the grid's best?

    python benchmarks/bench_sweep.py [--data ../shared/data/ravdess] [--config configs/ravdess_mars.yaml]
        [--space configs/spaces/mars_grid.yaml] [--out runs/bench_sweep] [--tpe-trials 36]
        [--folds 1 2] [--set train.epochs=6] [--no-prune]

Runs `emofuse sweep` twice, each in its own study (SQLite in OUT/grid and OUT/tpe): the full grid,
then TPE for --tpe-trials finished trials (default: as many as the grid has points). Both search on
validation actors only, with the same median pruning (or none with --no-prune). It prints the grid's
best mean validation accuracy and its time, and for TPE after how many trials (started, pruned ones
included) and how much time it first reached a validation score >= the grid's best, or that it did
not within its trials. Times are the sums of the trials' own durations (features come from the cache
and are not counted), so a rerun that reuses the finished studies (it does: rerunning adds no trial)
reports the same figures cheaply. Figures are printed, not asserted.
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import torch

from emofuse.config.loading import load_config
from emofuse.experiments.sweep import run_sweep
from emofuse.experiments.sweep_space import load_space
from emofuse.features.cache import default_cache_dir

REPO = Path(__file__).resolve().parents[1]


def trial_table(run_dir: Path):
    """The study's trials in the order they were started, with the time spent in them so far."""
    import pandas as pd

    trials = pd.read_csv(run_dir / "trials.csv").sort_values("number").reset_index(drop=True)
    trials["seconds_so_far"] = trials["seconds"].fillna(0).cumsum()
    return trials


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data" / "ravdess")
    parser.add_argument("--config", type=Path, default=REPO / "configs" / "ravdess_mars.yaml")
    parser.add_argument("--space", type=Path, default=REPO / "configs" / "spaces" / "mars_grid.yaml")
    parser.add_argument("--out", type=Path, default=REPO / "runs" / "bench_sweep")
    parser.add_argument("--cache", type=Path, default=None, help="feature cache (default: $EMOFUSE_CACHE or ~/.cache/emofuse)")
    parser.add_argument("--tpe-trials", type=int, default=None, help="TPE budget (default: the number of grid points)")
    parser.add_argument("--folds", type=int, nargs="+", default=None, help="only these folds (1-based), for a quick run")
    parser.add_argument("--no-prune", action="store_true", help="no median pruning in either search")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="config override for both searches, e.g. train.epochs=6")
    args = parser.parse_args()
    config = load_config(args.config, args.overrides)
    space = load_space(args.space)
    cache = args.cache or default_cache_dir()
    n_grid = len(space.grid())
    tpe_trials = args.tpe_trials or n_grid
    print(f"machine: {os.cpu_count()} CPUs, torch {torch.__version__}; config {config.name}, space {args.space.name} "
          f"({n_grid} grid points), folds {args.folds or 'all'}, overrides {args.overrides or 'none'}")

    common = dict(only_folds=args.folds, prune=not args.no_prune, progress=False, space_source=str(args.space))
    started = time.perf_counter()
    grid = run_sweep(config, space, args.data, args.out / "grid", cache, sampler="grid", **common)
    print(f"grid: {grid['n_complete']} complete, {grid['n_pruned']} pruned of {grid['n_trials']} trials in "
          f"{grid['trial_seconds_total']:.1f} s of trials ({time.perf_counter() - started:.1f} s this call); "
          f"best validation accuracy {grid['best_value']:.4f} at {grid['best_params']}; "
          f"its test accuracy {grid['test']['accuracy_mean']:.4f}")

    started = time.perf_counter()
    tpe = run_sweep(config, space, args.data, args.out / "tpe", cache, sampler="tpe", n_trials=tpe_trials, **common)
    print(f"tpe: {tpe['n_complete']} complete, {tpe['n_pruned']} pruned of {tpe['n_trials']} trials in "
          f"{tpe['trial_seconds_total']:.1f} s of trials ({time.perf_counter() - started:.1f} s this call); "
          f"best validation accuracy {tpe['best_value']:.4f} at {tpe['best_params']}; "
          f"its test accuracy {tpe['test']['accuracy_mean']:.4f}")

    trials = trial_table(args.out / "tpe")
    reached = trials[(trials["state"] == "COMPLETE") & (trials["value"] >= grid["best_value"])]
    if reached.empty:
        print(f"TPE did not reach the grid's best validation accuracy {grid['best_value']:.4f} within "
              f"{len(trials)} trials ({trials['seconds_so_far'].iloc[-1]:.1f} s of trials)")
    else:
        first = reached.iloc[0]
        n = int(first.name) + 1
        print(f"TPE first reached the grid's best validation accuracy {grid['best_value']:.4f} at trial {n} of "
              f"{len(trials)} ({first['value']:.4f}), after {first['seconds_so_far']:.1f} s of trials: "
              f"{n / grid['n_trials']:.0%} of the grid's trials and "
              f"{first['seconds_so_far'] / grid['trial_seconds_total']:.0%} of its time")


if __name__ == "__main__":
    main()
