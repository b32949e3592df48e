"""Enrolment from one-sided clips: what a new speaker gets when the clips they enrol with are few and all of one
emotion (a deployment rarely sees a balanced set), against no enrolment on the same clips.

    python benchmarks/bench_one_sided.py RUN [RUN ...] --data DATA [--ks 2 3 10] [--emotions 1 2]

No training: each run's fold models score their test speakers (protocol/rescore.py) with k enrolment clips drawn
(i) at random from all of the speaker's clips (balanced in expectation), (ii) from one emotion only, for every emotion
in turn (pooled, then each emotion on its own: the worst case), and (iii) from two emotions only (every pair), and with no enrolment (the typical training speaker) on exactly
the clips each condition scores. A speaker without enough clips of an emotion (or pair) is left out of that draw.
Accuracy is pooled over runs, emotions and clips; the difference to no enrolment is paired on the same clips, with a
95 % cluster-bootstrap interval over test speakers. Target (issue 30): one-sided enrolment never more than 1 point
below no enrolment.
"""

from __future__ import annotations

import argparse
import itertools
from pathlib import Path

import numpy as np
import pandas as pd

from emofuse.features.cache import default_cache_dir
from emofuse.inference.predict import Predictor
from emofuse.metrics.statistics import paired_difference
from emofuse.protocol.rescore import predictions_at_k


def paired(condition: pd.DataFrame, none: pd.DataFrame) -> dict:
    """Accuracy of ``condition``, of no enrolment on the same (draw, clip) pairs, and the difference with its interval."""
    reference = condition[["seed", "clip"]].merge(none.drop(columns="seed"), on="clip", how="left")
    accuracy = lambda t: float((t["label"] == t["pred"]).mean())  # noqa: E731
    d = paired_difference(condition, reference)
    return {"accuracy": accuracy(condition), "none": accuracy(reference), "delta": d["difference"],
            "interval": (d["ci_low"], d["ci_high"]), "clips": len(condition), "speakers": d["n_speakers"]}


def one_sided(run: Path, k: int, emotions: tuple, data: Path, cache: Path, tag: int) -> pd.DataFrame:
    """Predictions with k enrolment clips drawn from ``emotions`` only; speakers with fewer such clips left out."""
    short: set[str] = set()

    def pool(meta: pd.DataFrame) -> np.ndarray:
        mine = meta["emotion"].isin(emotions).to_numpy()
        if mine.sum() < k:
            short.add(str(meta["actor"].iloc[0]))
            return np.ones(len(meta), bool)
        return mine

    table = predictions_at_k(run, k, data, cache, pool)
    return table[~table["actor"].astype(str).isin(short)].assign(seed=tag)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("runs", type=Path, nargs="+", help="finished cv runs (one per seed)")
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--cache", type=Path, default=None)
    parser.add_argument("--ks", type=int, nargs="+", default=[3, 10])
    parser.add_argument("--emotions", type=int, nargs="+", default=[1], help="emotions a one-sided draw holds (1, 2)")
    args = parser.parse_args()
    cache = args.cache or default_cache_dir()
    for k in args.ks:
        results: dict[str, list[pd.DataFrame]] = {}
        nones = []
        for r, run in enumerate(args.runs):
            none = predictions_at_k(run, 0, args.data, cache).assign(run=r)
            nones.append(none)
            results.setdefault("random", []).append(predictions_at_k(run, k, args.data, cache).assign(seed=r, run=r))
            classes = sorted(set(none["label"]))
            names = pd.Series(Predictor(run).class_names)
            for size in args.emotions:
                for i, group in enumerate(itertools.combinations(classes, size)):
                    emotions = tuple(names[list(group)])
                    table = one_sided(run, k, emotions, args.data, cache, tag=1000 * r + i + 1)
                    results.setdefault(f"{size} emotion{'s' if size > 1 else ''}", []).append(table.assign(run=r))
                    if size == 1:
                        results.setdefault(f"only {emotions[0]}", []).append(table.assign(run=r))
        none = pd.concat(nones, ignore_index=True)
        for condition, tables in results.items():
            table = pd.concat(tables, ignore_index=True)
            # clips of different runs (seeds) are different predictions: one name per (run, clip)
            tagged = lambda t: t.assign(clip=t["clip"].astype(str) + "@" + t["run"].astype(str)).drop(columns="run")  # noqa: E731
            result = paired(tagged(table), tagged(none))
            low, high = result["interval"]
            print(f"k = {k:2d}, {condition:>10}: {result['accuracy']:.4f} against none {result['none']:.4f} on the same "
                  f"{result['clips']} clips ({result['speakers']} speakers): {100 * result['delta']:+.2f} points "
                  f"[{100 * low:+.2f}, {100 * high:+.2f}]", flush=True)


if __name__ == "__main__":
    main()
