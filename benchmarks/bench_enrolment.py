"""Accuracy against the number of enrolment clips a new speaker records: the curve of docs/speaker-adaptation.md.

    python benchmarks/bench_enrolment.py [--config configs/ravdess_mars.yaml] [--data ../shared/data/ravdess]
        [--ks 0 1 3 5 10 20] [--seeds 3] [--jobs 2] [--set KEY=VALUE ...] [--out runs/bench_enrolment]
        [--figure docs/img/enrolment_curve.png] [--peer]

Per setting, a 6-fold cross-validation by speaker with seeds 0..N-1: ``none`` (each clip on its own), ``inductive``
with k enrolment clips per held-out speaker (never scored; the config's enrolment estimator, train-as-you-test draws
and candidates as configured), and ``transductive`` (all 60 clips of each test speaker: the upper reference, which no
deployment has). Accuracy is pooled over folds and seeds with a 95 % cluster-bootstrap interval over the 24 test
speakers; settings score different clips (enrolment clips are left out). With --peer, the linear peer
(benchmarks/linear_peer.py: logistic regression, C chosen per fold on validation speakers) under the same settings.
Runs stay under --out, so an interrupted benchmark resumes. Figures are printed, not asserted.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import pandas as pd
import torch

from emofuse.config.loading import load_config
from emofuse.experiments.compare import Variant, load_predictions, run_variants
from emofuse.metrics.statistics import compare_to_reference

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "benchmarks"))
import linear_peer  # noqa: E402


def settings(ks: list[int]) -> dict[str, list[str]]:
    out = {"none": ["features.speaker_norm=none"]}
    out.update({f"k={k}": ["features.speaker_norm=inductive", f"features.adapt_clips={k}"] for k in ks})
    out["all (transductive)"] = ["features.speaker_norm=transductive"]
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", type=Path, default=REPO / "configs" / "ravdess_mars.yaml")
    parser.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data" / "ravdess")
    parser.add_argument("--ks", type=int, nargs="+", default=[0, 1, 3, 5, 10, 20])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--out", type=Path, default=REPO / "runs" / "bench_enrolment")
    parser.add_argument("--cache", type=Path, default=Path(os.environ.get("EMOFUSE_CACHE", Path.home() / ".cache" / "emofuse")))
    parser.add_argument("--figure", type=Path, default=None, help="write the curve here (PNG)")
    parser.add_argument("--peer", action="store_true", help="also the linear peer under every setting")
    args = parser.parse_args()
    print(f"machine: {os.cpu_count()} CPUs, torch {torch.__version__}; load average {os.getloadavg()[0]:.1f}; "
          f"{args.jobs} runs at a time, one thread each")
    started = time.perf_counter()
    named = settings(args.ks)
    variants = [Variant(name.split(" ")[0].replace("=", ""), load_config(args.config, [*args.overrides, *overrides]))
                for name, overrides in named.items()]
    run_variants(variants, args.data, args.out, args.cache, args.seeds, progress=False, jobs=args.jobs)
    predictions = {v.label: load_predictions(args.out, v.label, args.seeds) for v in variants}
    rows = []
    for (name, overrides), v in zip(named.items(), variants):
        stats = compare_to_reference({v.label: predictions[v.label]}, v.label).iloc[0]
        row = {"setting": name, "scored clips": len(predictions[v.label]) // args.seeds,
               "accuracy": stats["accuracy_pooled"], "ci_low": stats["ci_low"], "ci_high": stats["ci_high"]}
        if args.peer:
            peer = linear_peer.run(args.config, args.data, args.cache, [*args.overrides, *overrides])["accuracy"]
            row.update({f"peer {m}": peer[m]["mean"] for m in ("concatenation", "audio")})
        rows.append(row)
        print(f"  {name}: {row['accuracy']:.4f} [{row['ci_low']:.3f}, {row['ci_high']:.3f}]", flush=True)
    table = pd.DataFrame(rows)
    args.out.mkdir(parents=True, exist_ok=True)
    table.to_csv(args.out / "curve.csv", index=False)
    print(f"\n{variants[0].config.name}, {args.seeds} seeds, 6 folds by speaker (accuracy pooled over folds and seeds, "
          "95 % speaker-bootstrap interval)\n")
    print("| setting | scored clips | accuracy [95 % CI] |" + "".join(f" {c} |" for c in table.columns if c.startswith("peer")))
    print("|---|---:|---:|" + "---:|" * sum(c.startswith("peer") for c in table.columns))
    for r in rows:
        print(f"| {r['setting']} | {r['scored clips']} | {r['accuracy']:.4f} [{r['ci_low']:.3f}, {r['ci_high']:.3f}] |"
              + "".join(f" {r[c]:.4f} |" for c in r if c.startswith("peer")))
    if args.figure:
        plot(table, args.ks, variants[0].config.name, args.figure)
        print(f"\nfigure: {args.figure}")
    print(f"\ntotal {time.perf_counter() - started:.0f} s; load average {os.getloadavg()[0]:.1f}")


def plot(table: pd.DataFrame, ks: list[int], name: str, path: Path) -> None:
    curve = table.iloc[1:-1]
    fig, ax = plt.subplots(figsize=(6.4, 4.0))
    ax.errorbar(ks, curve["accuracy"], yerr=[curve["accuracy"] - curve["ci_low"], curve["ci_high"] - curve["accuracy"]],
                marker="o", capsize=3, label=f"{name}, k enrolment clips")
    for row, style, label in ((table.iloc[0], ":", "none (a file on its own)"),
                              (table.iloc[-1], "--", "all clips (transductive, upper reference)")):
        ax.axhline(row["accuracy"], linestyle=style, color="grey", label=f"{label}: {row['accuracy']:.3f}")
    if "peer concatenation" in table:
        ax.plot(ks, curve["peer concatenation"], marker="s", linestyle="-.", color="tab:orange",
                label="linear peer (concatenation)")
    ax.set_xscale("symlog", linthresh=1)
    ax.set_xticks(ks, [str(k) for k in ks])
    ax.set_xlabel("enrolment clips per new speaker (k)")
    ax.set_ylabel("accuracy (pooled, 95 % speaker CI)")
    ax.legend(fontsize=8, loc="lower right")
    ax.grid(alpha=0.3)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120, bbox_inches="tight")
    plt.close(fig)


if __name__ == "__main__":
    main()
