"""The default EMI recipe against a ridge regression at three training-set sizes (synthetic Hume-shaped data).

    python benchmarks/bench_emi_sizes.py [--sizes 500 2000 8000] [--seeds 1] [--n-test 2000] [--threads 1]
                                         [--out DIR] [--set KEY=VALUE ...]

One feature directory is written with the ``make-emi-fixture`` machinery (seed 0; the planted signal caps the
attainable Pearson near 0.8) with 8,000 training clips (or the largest size, if larger), a quarter as many
validation clips and --n-test test clips. Each size N is a subset of it: the first N training clips, the first N/4 validation clips
and every test clip (its own labels.csv beside links to the same .npz arrays), so that every size poses the
same problem and is scored on the same test clips. Per size:

- ``emofuse train configs/emi_hume.yaml`` exactly as shipped (unless --set is given, e.g. ``--set
  train.ema_warmup=false`` for the recipe before the EMA warm-up), once per seed (--seeds N: the config's
  seed and the N - 1 following ones; the data stay the same): epoch selected on the val rows;
- a ridge regression (scikit-learn) on the time means of the three modalities, concatenated and standardised
  with statistics of the training rows, alpha chosen on the val rows from a log grid, fitted on the train rows.

Both are scored once on the same test rows (mean over the 6 targets of the Pearson correlation over the whole
test split). Figures are printed, not asserted; the target is that the recipe beats ridge at every size. With
several seeds the table gives the recipe's mean, its range over seeds and the difference of the mean to ridge
(ridge has no seed: its alpha and fit are determined by the data).
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from sklearn.linear_model import Ridge
from sklearn.preprocessing import StandardScaler

from emofuse.tasks.emi.fixture import HUME_TARGETS, write_emi_fixture
from emofuse.tasks.emi.feature_dir import FeatureDirData, load_feature_dir
from emofuse.tasks.emi.config import load_emi_config
from emofuse.tasks.emi.experiment import run_emi
from emofuse.metrics.regression import pearson

REPO = Path(__file__).resolve().parents[1]
CONFIG = REPO / "configs" / "emi_hume.yaml"
ALPHAS = np.logspace(-2, 6, 33)


def time_means(data: FeatureDirData, split: str) -> np.ndarray:
    rows = data.rows(split)
    return np.concatenate([np.stack([data.features[m][i].mean(0) for i in rows]) for m in data.features], axis=1)


def ridge_peer(data: FeatureDirData) -> dict:
    """Test mean Pearson of the ridge whose alpha scores best on the val rows."""
    scaler = StandardScaler().fit(time_means(data, "train"))
    x = {s: scaler.transform(time_means(data, s)) for s in ("train", "val", "test")}
    y = {s: data.targets[data.rows(s)] for s in ("train", "val", "test")}
    val_score = {a: pearson(Ridge(alpha=a).fit(x["train"], y["train"]).predict(x["val"]), y["val"]).mean() for a in ALPHAS}
    alpha = max(val_score, key=val_score.get)
    test = pearson(Ridge(alpha=alpha).fit(x["train"], y["train"]).predict(x["test"]), y["test"]).mean()
    return {"alpha": float(alpha), "val": float(val_score[alpha]), "test": float(test)}


def subset(full: Path, out: Path, n_train: int, n_val: int) -> Path:
    """A feature directory of the first ``n_train`` train and ``n_val`` val rows of ``full`` and all its test rows."""
    labels = pd.read_csv(full / "labels.csv", dtype={"id": str})
    keep = labels.groupby("split").cumcount() < labels["split"].map({"train": n_train, "val": n_val, "test": len(labels)})
    out.mkdir(parents=True, exist_ok=True)
    labels[keep].to_csv(out / "labels.csv", index=False)
    for archive in full.glob("*.npz"):
        (out / archive.name).unlink(missing_ok=True)
        (out / archive.name).symlink_to(archive.resolve())
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[500, 2000, 8000], help="training clips per run")
    parser.add_argument("--seeds", type=int, default=1, help="recipe runs per size, seeds config.seed ... + N - 1")
    parser.add_argument("--n-test", type=int, default=2000, help="test clips (default 2000, the same for every size)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    parser.add_argument("--out", type=Path, default=None, help="keep data and runs here (default: a temporary directory)")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="override a recipe value (default: none, the config as shipped)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    config = load_emi_config(CONFIG, args.overrides)
    print(f"machine: {os.cpu_count()} CPUs, torch {torch.__version__}, {torch.get_num_threads()} thread(s), "
          f"load average before: {os.getloadavg()[0]:.2f}; config {CONFIG.relative_to(REPO)} "
          f"{'with ' + ', '.join(args.overrides) if args.overrides else 'as shipped'}")
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        root = args.out or Path(tmp)
        largest = max(8000, *args.sizes)  # the same problem whichever sizes are asked for
        full = root / f"data_full_{largest}_{args.n_test}"
        if not (full / "labels.csv").is_file():
            write_emi_fixture(full, n_train=largest, n_val=largest // 4, n_test=args.n_test, fmt="npz")
        for n in args.sizes:
            data_dir = subset(full, root / f"data_{n}", n, n // 4)
            data = load_feature_dir(data_dir, config.data.modalities, list(HUME_TARGETS))
            ridge = ridge_peer(data)
            print(f"n_train {n}: ridge test {ridge['test']:.4f} (val {ridge['val']:.4f}, alpha {ridge['alpha']:.3g})", flush=True)
            for seed in range(config.seed, config.seed + args.seeds):
                started = time.perf_counter()
                run_dir = root / f"run_{n}_seed{seed}{'_' + '_'.join(args.overrides) if args.overrides else ''}"
                if (run_dir / "results.json").exists():
                    raise SystemExit(f"{run_dir} holds a finished run: it would be read back, not timed")
                result = run_emi(config.model_copy(update={"seed": seed}), data_dir, run_dir)
                row = {"n": n, "seed": seed, "recipe": result["test"]["pearson_mean"], "val": result["val"]["pearson_mean"],
                       "ridge": ridge["test"], "best": result["best_epoch"], "run": result["epochs_run"],
                       "steps": result["steps_per_epoch"], "seconds": time.perf_counter() - started}
                rows.append(row)
                print(f"n_train {n}, seed {seed}: recipe test {row['recipe']:.4f} (val {row['val']:.4f}, best epoch "
                      f"{row['best']} of {row['run']}, {row['steps']} steps per epoch, {row['seconds']:.0f} s)", flush=True)
    print(f"load average after: {os.getloadavg()[0]:.2f}")
    seeds = f"{args.seeds} seeds: mean [min, max]" if args.seeds > 1 else "1 seed"
    print(f"\n| train / val / test clips | recipe test mean Pearson ({seeds}) | ridge test mean Pearson | recipe - ridge "
          "| best epoch / epochs run | steps per epoch | recipe seconds per run |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for n, runs in pd.DataFrame(rows).groupby("n", sort=False):
        mean = runs["recipe"].mean()
        spread = f" [{runs['recipe'].min():.4f}, {runs['recipe'].max():.4f}]" if len(runs) > 1 else ""
        epochs = ", ".join(f"{b} / {r}" for b, r in zip(runs["best"], runs["run"]))
        print(f"| {n:,} / {n // 4:,} / {args.n_test:,} | {mean:.4f}{spread} | {runs['ridge'].iloc[0]:.4f} | "
              f"{mean - runs['ridge'].iloc[0]:+.4f} | {epochs} | {runs['steps'].iloc[0]} | {runs['seconds'].mean():.0f} |")


if __name__ == "__main__":
    main()
