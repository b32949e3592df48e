"""A finished cv run's fold models scored on their test speakers with another number of enrolment clips
(protocol/rescore.py); with several runs (seeds), pooled, with a cluster-bootstrap interval over speakers.

    python benchmarks/score_enrolment.py RUN [RUN ...] --ks 0 10 [--data ../shared/data/ravdess]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import pandas as pd

from emofuse.protocol.rescore import accuracy_with_interval, predictions_at_k
from emofuse.features.cache import default_cache_dir

REPO = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("runs", type=Path, nargs="+")
    parser.add_argument("--ks", type=int, nargs="+", default=[0])
    parser.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data" / "ravdess")
    parser.add_argument("--cache", type=Path, default=default_cache_dir())
    args = parser.parse_args()
    for k in args.ks:
        tables = [predictions_at_k(run, k, args.data, args.cache) for run in args.runs]
        for run, table in zip(args.runs, tables):
            print(f"{run}: k = {k}: {(table['label'] == table['pred']).mean():.4f} ({len(table)} clips)")
        pooled = accuracy_with_interval(pd.concat(tables, ignore_index=True))
        low, high = pooled["interval"]
        print(f"pooled over the {len(tables)} runs, k = {k}: {pooled['accuracy']:.4f} [{low:.4f}, {high:.4f}] "
              f"(95 % cluster bootstrap over {pooled['n_speakers']} test speakers)")


if __name__ == "__main__":
    main()
