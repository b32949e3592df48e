"""A finished cv run's fold models scored on their test speakers with another number of enrolment clips.

    python benchmarks/score_enrolment.py RUN [RUN ...] --ks 0 10 [--data ../shared/data/ravdess]

No training: each fold's selected weights and input statistics (standardizer.json) are read back, and its test
speakers are normalised as `features.speaker_norm: inductive` with k enrolment clips would (the run's seed and
estimator setting; k = 0: the typical training speaker, what `emofuse predict` gives a file on its own). With the
run's own k the pooled accuracy is the run's own (a check). Answers: what does a model trained for k = 10 give a
speaker who records fewer clips, or none?
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch

from emofuse.config import load_config
from emofuse.evaluation.classification import predict
from emofuse.evaluation.cross_validation import prepare_inputs
from emofuse.evaluation.folds import dataset_folds
from emofuse.features.cache import FeatureCache, default_cache_dir
from emofuse.features.datasets import build_features
from emofuse.features.normalize import Standardizer
from emofuse.models import create_model
from emofuse.training.batches import TensorData

REPO = Path(__file__).resolve().parents[1]


def score(run: Path, k: int, data: Path, cache: Path) -> tuple[int, int]:
    """(correct, scored) test clips of the run's finished folds with k enrolment clips per test speaker."""
    config = load_config(run / "config.yaml")
    fs = build_features(config.data, config.features, data, FeatureCache(cache), progress=False)
    features = config.features.model_copy(update={"speaker_norm": "inductive", "adapt_clips": k})
    inputs = prepare_inputs(fs, config.model_copy(update={"features": features}))
    correct = total = 0
    for fold in dataset_folds(fs.meta, config.protocol.n_folds, config.protocol.val_fraction, config.seed):
        fold_dir = run / "folds" / f"fold_{fold.index}"
        state = json.loads((fold_dir / "standardizer.json").read_text())
        scalers = {m: Standardizer.from_dict(s) for m, s in state["inputs"].items()}
        rows, values = inputs.split(fold)[2]
        model = create_model(config.model, fs.input_dims, fs.sequence, len(fs.class_names))
        model.load_state_dict(torch.load(fold_dir / "best.pt", weights_only=True))
        preds = predict(model.eval(), TensorData({m: scalers[m].transform(v) for m, v in values.items()},
                                                 fs.meta["label"].to_numpy()[rows]), config.train.eval_batch_size)
        correct += int((preds.probs.argmax(1) == preds.target).sum())
        total += len(preds.target)
    return correct, total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("runs", type=Path, nargs="+")
    parser.add_argument("--ks", type=int, nargs="+", default=[0])
    parser.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data" / "ravdess")
    parser.add_argument("--cache", type=Path, default=default_cache_dir())
    args = parser.parse_args()
    for k in args.ks:
        counts = [score(run, k, args.data, args.cache) for run in args.runs]
        for run, (correct, total) in zip(args.runs, counts):
            print(f"{run}: k = {k}: {correct / total:.4f} ({total} clips)")
        print(f"pooled over the {len(counts)} runs, k = {k}: {sum(c for c, _ in counts) / sum(t for _, t in counts):.4f}")


if __name__ == "__main__":
    main()
