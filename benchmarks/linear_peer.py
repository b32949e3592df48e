"""A linear peer for every neural number: logistic regression on the same features, folds and speaker normalisation.

For a config, prints the test accuracy of scikit-learn logistic regressions trained on each fold's training
actors: audio only, visual only, concatenation (one model on both feature vectors) and late average (the mean of
the two unimodal models' probabilities). The regularisation C of each model is chosen per fold on that fold's
validation actors (the same actors the neural models select their epoch on), and with ``protocol.refit`` the model
is fitted again on training and validation actors; the test actors are scored once.
Clip-level features only (frame sequences are averaged over time first).

    python benchmarks/linear_peer.py configs/ravdess_mars_whisper.yaml --data ../shared/data/ravdess
    python benchmarks/linear_peer.py configs/ravdess_mars.yaml --data ../shared/data/ravdess --json peer.json
"""

from __future__ import annotations

import argparse
import copy
import json
import time
from pathlib import Path

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import StandardScaler

from emofuse.config.loading import load_config
from emofuse.protocol.cross_validation import prepare_inputs, scored_fold
from emofuse.protocol.folds import actor_folds
from emofuse.features.cache import FeatureCache, default_cache_dir
from emofuse.datasets.feature_set import build_ravdess_features

C_GRID = (0.001, 0.003, 0.01, 0.03, 0.1, 0.3, 1.0)


def clip_matrix(values) -> np.ndarray:
    """(N, D) clip vectors; frame sequences are averaged over their frames."""
    if isinstance(values, list):
        return np.stack([np.asarray(v, dtype=np.float64).mean(0) for v in values])
    return np.asarray(values, dtype=np.float64)


def fit_select(train_x, train_y, val_x, val_y, seed: int) -> LogisticRegression:
    """The model of the C (from C_GRID) with the best validation accuracy (the smaller C wins ties). The path over C
    is warm-started (each fit starts from the previous C's solution): the same optima, reached in fewer iterations."""
    best, best_acc = None, -1.0
    model = LogisticRegression(max_iter=3000, random_state=seed, warm_start=True)
    for c in C_GRID:
        model.set_params(C=c).fit(train_x, train_y)
        acc = (model.predict(val_x) == val_y).mean()
        if acc > best_acc:
            best, best_acc = copy.deepcopy(model), acc
    return best


def fold_matrices(inputs, fold, labels: np.ndarray, modalities: list[str]) -> tuple[dict, dict]:
    """Per modality and part (train / val / test), clip vectors standardised with the training part's statistics;
    and the labels per part (a part without clips, such as a refit's validation, is left out). Enrolment clips are
    never scored."""
    parts = {part: split for part, split in zip(("train", "val", "test"), inputs.split(fold)) if len(split[0])}
    x = {}
    for m in modalities:
        matrix = {part: clip_matrix(values[m]) for part, (_, values) in parts.items()}
        scaler = StandardScaler().fit(matrix["train"])
        x[m] = {part: scaler.transform(v) for part, v in matrix.items()}
    if len(modalities) > 1:
        x["concatenation"] = {part: np.hstack([x[m][part] for m in modalities]) for part in parts}
    return x, {part: labels[idx] for part, (idx, _) in parts.items()}


def run(config_path: Path, data_dir: Path, cache: Path, overrides: list[str]) -> dict:
    """With ``protocol.refit`` (as the neural runs do), C is chosen on the validation actors and the model with it is
    fitted again on the training and validation actors."""
    config = load_config(config_path, overrides)
    fs = build_ravdess_features(data_dir, config.data, config.features, FeatureCache(cache), progress=False)
    labels, actors = fs.meta["label"].to_numpy(), fs.meta["actor"].to_numpy()
    modalities = list(config.data.modalities)
    models = [*modalities, "concatenation"] if len(modalities) > 1 else modalities
    rows = {name: [] for name in (*models, "late_average")}
    inputs = prepare_inputs(fs, config)
    for fold in actor_folds(np.unique(actors), config.protocol.n_folds, config.protocol.val_fraction, config.seed):
        x, y = fold_matrices(inputs, fold, labels, modalities)
        final_x, final_y = fold_matrices(inputs, scored_fold(config, fold), labels, modalities) if config.protocol.refit else (x, y)
        probs = {}
        for name in models:
            model = fit_select(x[name]["train"], y["train"], x[name]["val"], y["val"], config.seed)
            if config.protocol.refit:
                model = LogisticRegression(C=model.C, max_iter=3000, random_state=config.seed).fit(
                    final_x[name]["train"], final_y["train"])
            probs[name] = model.predict_proba(final_x[name]["test"])
            rows[name].append(float((probs[name].argmax(1) == final_y["test"]).mean()))
        if len(modalities) > 1:
            late = np.mean([probs[m] for m in modalities], axis=0)
            rows["late_average"].append(float((late.argmax(1) == final_y["test"]).mean()))
    summary = {name: {"folds": accs, "mean": float(np.mean(accs)), "std": float(np.std(accs, ddof=1))}
               for name, accs in rows.items() if accs}
    return {"config": str(config_path), "features": config.features.audio.model_dump(mode="json"),
            "speaker_norm": config.features.speaker_norm, "adapt_clips": config.features.adapt_clips,
            "refit": config.protocol.refit, "accuracy": summary}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("configs", type=Path, nargs="+")
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--cache", type=Path, default=default_cache_dir())
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--json", type=Path, default=None, help="also write the figures here")
    args = parser.parse_args()
    results = []
    for path in args.configs:
        started = time.perf_counter()
        result = run(path, args.data, args.cache, args.overrides)
        result["seconds"] = time.perf_counter() - started
        results.append(result)
        print(f"{path} (speaker_norm {result['speaker_norm']}), linear peer, test accuracy mean ± std over folds:")
        for name, r in result["accuracy"].items():
            print(f"  {name:<14} {r['mean']:.4f} ± {r['std']:.4f}   folds {' '.join(f'{a:.3f}' for a in r['folds'])}")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
