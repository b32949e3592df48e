"""How much of the cross-validated accuracy comes from knowing the test speakers (issue 12).

    python benchmarks/bench_speaker_adaptation.py [--data ../shared/data/ravdess]
        [--configs configs/ravdess_ce.yaml configs/ravdess_mars.yaml] [--out runs/bench_speaker_adaptation]
        [--frames-run RUN_DIR]

(a) Per config, a 6-fold CV under each way of normalising held-out (validation and test) speakers;
training speakers are standardised as the config says (all of their own clips, or with `features.train_draws`
k random clips of their own per epoch), except under `none`:

    none          no speaker normalisation at all
    k=0           a typical training speaker's statistics (what `emofuse predict` gives a file on its own)
    k=5, 10, 20   k enrolment clips per held-out speaker, drawn at random with the seed, never scored
    all           transductive: all 60 clips of every speaker, scored ones included (the README's main table)
    high k=10     test speakers enrol with high-arousal clips only (angry, happy, fearful, surprised)
    low k=10      test speakers enrol with low-arousal clips only (neutral, calm, sad)

The skewed draws pick by label, so they exist only here, through the `enrolment_pool` hook of
`run_cross_validation`; validation speakers still enrol at random (the model was selected as a
deployment's would be, and then meets users who enrol while angry, or calm). Settings score different
clips (enrolment clips are left out), so `common` also gives each setting's accuracy on the clips that
every setting of the config scores.

(b) The one-sided warning of `emofuse predict --speaker`: the share of 10-clip groups of one speaker
that it flags, for random groups and for high- or low-arousal-only groups, from the k=0 run's
predictions (each clip predicted on its own, as the warning does).

(c) With --frames-run (a finished run of a frame-sequence config, e.g. configs/ravdess_ce_cnn.yaml):
what a file on its own should be normalised with in predict, measured on each finished fold's
*validation* speakers: a typical training speaker, the file's own frame statistics, or (for reference,
what training saw) all clips of its speaker. Visual clip vectors get the typical speaker throughout.

Run directories stay under --out, so an interrupted benchmark resumes. Figures are printed, not asserted.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from emofuse.config.loading import load_config
from emofuse.protocol.cross_validation import run_cross_validation
from emofuse.inference.speaker_groups import HIGH_AROUSAL, LOW_AROUSAL
from emofuse.features.cache import FeatureCache
from emofuse.datasets.feature_set import build_ravdess_features
from emofuse.datasets.normalize import Standardizer, fit_stats, select_rows
from emofuse.inference.predict import Predictor
from emofuse.inference.speaker_groups import one_sided

REPO = Path(__file__).resolve().parents[1]


def only(emotions: tuple[str, ...]):
    return lambda clips: clips["emotion"].isin(emotions).to_numpy()


SETTINGS = {  # name -> (overrides, enrolment pool of the test speakers)
    "none": (["features.speaker_norm=none"], None),
    "k=0": (["features.speaker_norm=inductive", "features.adapt_clips=0"], None),
    "k=5": (["features.speaker_norm=inductive", "features.adapt_clips=5"], None),
    "k=10": (["features.speaker_norm=inductive", "features.adapt_clips=10"], None),
    "k=20": (["features.speaker_norm=inductive", "features.adapt_clips=20"], None),
    "all": (["features.speaker_norm=transductive"], None),
    "high k=10": (["features.speaker_norm=inductive", "features.adapt_clips=10"], only(HIGH_AROUSAL)),
    "low k=10": (["features.speaker_norm=inductive", "features.adapt_clips=10"], only(LOW_AROUSAL)),
}


def markdown(table: pd.DataFrame) -> str:
    lines = ["| " + " | ".join(map(str, table.columns)) + " |", "|" + "---|" * len(table.columns)]
    return "\n".join(lines + ["| " + " | ".join(map(str, row)) + " |" for row in table.itertuples(index=False)])


def load() -> str:
    return "load average {:.1f} / {:.1f} / {:.1f}".format(*os.getloadavg())


def sensitivity(config_path: Path, data: Path, out: Path, cache: Path) -> dict[str, Path]:
    rows, runs = [], {}
    for name, (overrides, pool) in SETTINGS.items():
        config = load_config(config_path, overrides)
        runs[name] = out / config.name / name.replace(" ", "_").replace("=", "")
        started = time.perf_counter()
        summary = run_cross_validation(config, data, runs[name], cache, progress=False, enrolment_pool=pool)
        rows.append({"setting": name, "scored clips": summary["n_clips"],
                     "accuracy": f"{summary['accuracy_mean']:.4f} ± {summary['accuracy_std']:.4f}",
                     "macro-F1": round(summary["macro_f1_mean"], 4),
                     **{m: round(a, 4) for m, a in summary["modality_accuracy_mean"].items()},
                     "seconds": round(time.perf_counter() - started, 1)})
        print(f"  {config.name} {name}: {rows[-1]['accuracy']} ({rows[-1]['seconds']} s, {load()})", flush=True)
    predictions = {name: pd.read_csv(run / "predictions.csv").set_index("clip") for name, run in runs.items()}
    common = sorted(set.intersection(*(set(p.index) for p in predictions.values())))
    for row in rows:
        p = predictions[row["setting"]].loc[common]
        row[f"common ({len(common)})"] = round(float((p["label"] == p["pred"]).mean()), 4)
    print(f"\n{config.name} (6 folds, seed 0; accuracy: mean ± sample std over folds)\n")
    print(markdown(pd.DataFrame(rows)))
    return runs


def warning_rates(predictions: pd.DataFrame, size: int = 10, draws: int = 200, seed: int = 0) -> dict[str, float]:
    """Share of size-clip groups of one speaker flagged one-sided, judged on the clips' predictions on their own."""
    rng = np.random.default_rng(seed)
    flagged = {"random": [], "high-arousal only": [], "low-arousal only": []}
    for _, clips in predictions.groupby("actor"):
        pools = {"random": clips, "high-arousal only": clips[clips["label"].isin(HIGH_AROUSAL)],
                 "low-arousal only": clips[clips["label"].isin(LOW_AROUSAL)]}
        for kind, pool in pools.items():
            for _ in range(draws):
                group = pool.iloc[rng.choice(len(pool), size, replace=False)]
                flagged[kind].append(one_sided(list(group["pred"])) is not None)
    return {kind: float(np.mean(f)) for kind, f in flagged.items()}


@torch.no_grad()
def frames_choice(run: Path, data: Path, cache: Path) -> None:
    config = load_config(run / "config.yaml")
    fs = build_ravdess_features(data, config.data, config.features, FeatureCache(cache), progress=False)
    speakers = fs.meta["actor"].to_numpy()
    frames = [m for m, sequence in fs.sequence.items() if sequence]
    hits: dict[str, list[bool]] = {}
    for result in sorted((run / "folds").glob("fold_*/result.json")):
        fold = json.loads(result.read_text())
        predictor = Predictor(run, fold=fold["fold"])
        val = np.flatnonzero(np.isin(speakers, fold["val_actors"]))
        own_speaker = {(m, s): Standardizer() for m in frames for s in fold["val_actors"]}
        for (m, s), scaler in own_speaker.items():
            scaler.mean, scaler.std = fit_stats(select_rows(fs.features[m], np.flatnonzero(speakers == s)))
        for i in val:
            raw = {m: fs.features[m][i] for m in fs.features}
            label = int(fs.meta["label"].iloc[i])
            for name, stats in {"typical training speaker": {},
                                "the file's own frames": {m: Standardizer().fit(raw[m]) for m in frames},
                                "all clips of its speaker (reference)": {m: own_speaker[m, speakers[i]] for m in frames},
                                }.items():
                fused, branch = predictor.forward(raw, stats)
                hits.setdefault(f"{name}|fused", []).append(int(np.argmax(fused)) == label)
                for m in frames:
                    hits.setdefault(f"{name}|{m}", []).append(int(np.argmax(branch[m])) == label)
    names = dict.fromkeys(k.split("|")[0] for k in hits)
    table = pd.DataFrame([{"statistics of a file on its own": n, "clips": len(hits[f"{n}|fused"]),
                           **{f"{m} branch": round(float(np.mean(hits[f"{n}|{m}"])), 4) for m in frames},
                           "fused": round(float(np.mean(hits[f"{n}|fused"])), 4)} for n in names])
    print(f"\n(c) {config.name}: validation speakers of its {len(list((run / 'folds').glob('fold_*/result.json')))} "
          f"finished folds, each with its fold's model\n")
    print(markdown(table))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data" / "ravdess")
    parser.add_argument("--configs", type=Path, nargs="+",
                        default=[REPO / "configs" / "ravdess_ce.yaml", REPO / "configs" / "ravdess_mars.yaml"])
    parser.add_argument("--out", type=Path, default=REPO / "runs" / "bench_speaker_adaptation")
    parser.add_argument("--cache", type=Path, default=Path(os.environ.get("EMOFUSE_CACHE", Path.home() / ".cache" / "emofuse")))
    parser.add_argument("--frames-run", type=Path, default=None, help="a run of a frame-sequence config, for (c)")
    args = parser.parse_args()
    print(f"machine: {os.cpu_count()} CPUs (shared), torch {torch.__version__}, {torch.get_num_threads()} threads; {load()}")
    started = time.perf_counter()
    for config in args.configs:
        runs = sensitivity(config, args.data, args.out, args.cache)
        rates = warning_rates(pd.read_csv(runs["k=0"] / "predictions.csv"))
        print(f"\n(b) one-sided warning on 10-clip groups of one speaker ({config.stem}, clips predicted on their own): "
              + ", ".join(f"{kind} {rate:.1%}" for kind, rate in rates.items()))
    if args.frames_run:
        frames_choice(args.frames_run, args.data, args.cache)
    print(f"\ntotal {time.perf_counter() - started:.0f} s; {load()}")


if __name__ == "__main__":
    main()
