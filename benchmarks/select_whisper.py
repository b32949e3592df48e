"""Choose the Whisper model, layer and context of the RAVDESS configs on validation actors only, per fold.

For every (model, context) it cross-validates the config once per hidden-state index (``emofuse sensitivity``
over ``features.audio.params.layers``: one extraction per (model, context), since the cache keeps every layer).
Each fold then takes the variant with the highest validation accuracy on its own validation actors (mean over
seeds), and its test actors are scored with that variant: the nested estimate of the whole recipe, selection
included (protocol/nested.py). Variants within --tolerance of the fold's highest validation accuracy count as
tied (default 0.002, well inside one seed's noise), and the tie goes to the cheaper features: the smaller model,
then the real-length context (4 to 5 times less encoder work than a 30 s window), then the lower layer.

For reference it also prints the choice made once for all folds from the validation accuracy averaged over folds,
with the test accuracy of that variant: not nested, since each fold's test actors are other folds' validation actors.

    python benchmarks/select_whisper.py --data ../shared/data/ravdess --out runs/select_whisper
    python benchmarks/select_whisper.py --variants tiny.en:real base:real --data ... --out ...   # a part
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import pandas as pd

from emofuse.config.loading import load_config
from emofuse.experiments.compare import run_sensitivity
from emofuse.features import EXTRACTORS
from emofuse.features.cache import default_cache_dir

REPO = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", type=Path, default=REPO / "configs" / "ravdess_ce_whisper.yaml")
    parser.add_argument("--variants", nargs="+", default=["tiny.en:real", "tiny.en:30s", "base:real", "base:30s"],
                        metavar="MODEL:CONTEXT", help="(model, context) pairs to try (default: all four)")
    parser.add_argument("--seeds", type=int, default=1)
    parser.add_argument("--tolerance", type=float, default=0.002, help="validation accuracy differences counted as ties")
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--cache", type=Path, default=default_cache_dir())
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    rows, per_fold_rows = [], []
    variants = [tuple(v.split(":")) for v in args.variants]
    for model, context in variants:
        overrides = [f"features.audio.params.model={model}", f"features.audio.params.context={context}"]
        config = load_config(args.config, overrides)
        n_states = EXTRACTORS.create("whisper", config.features.audio.params).n_states
        started = time.perf_counter()
        table = run_sensitivity(config, "features.audio.params.layers", list(range(n_states)), args.data,
                                args.out / f"{model}_{context}", args.cache, seeds=args.seeds, progress=False,
                                jobs=args.jobs)
        seconds = time.perf_counter() - started
        runs = pd.read_csv(args.out / f"{model}_{context}" / "runs.csv")
        runs["layer"] = runs["method"].str.rsplit("=", n=1).str[-1].astype(int)
        per_fold_rows.append(runs.assign(model=model, context=context)[
            ["model", "context", "layer", "seed", "fold", "val_accuracy", "accuracy", "n_test"]])
        for r in table.itertuples(index=False):
            rows.append({"model": model, "context": context, "layer": int(r.value),
                         "val_accuracy": r.val_accuracy_mean, "test_accuracy": r.accuracy_mean,
                         "test_std": r.accuracy_std, "seconds_for_all_layers": seconds})
    table = pd.DataFrame(rows)
    per_fold = pd.concat(per_fold_rows, ignore_index=True)
    model_rank = {m: i for i, m in enumerate(dict.fromkeys(m for m, _ in variants))}
    best = cheapest_tied(table, "val_accuracy", args.tolerance, model_rank)
    folds = per_fold.groupby(["fold", "model", "context", "layer"], as_index=False)[["val_accuracy", "accuracy"]].mean()
    nested = {int(k): cheapest_tied(rows_k, "val_accuracy", args.tolerance, model_rank) for k, rows_k in folds.groupby("fold")}
    n_test = per_fold.groupby("fold")["n_test"].first()
    nested_accuracy = sum(r["accuracy"] * n_test[k] for k, r in nested.items()) / n_test[list(nested)].sum()
    args.out.mkdir(parents=True, exist_ok=True)
    table.to_csv(args.out / "selection.csv", index=False)
    per_fold.to_csv(args.out / "selection_per_fold.csv", index=False)
    (args.out / "selection.json").write_text(json.dumps({"config": str(args.config), "seeds": args.seeds,
        "tolerance": args.tolerance,
        "nested": {"chosen": {k: {"model": r["model"], "context": r["context"], "layer": int(r["layer"]),
                                  "val_accuracy": r["val_accuracy"], "test_accuracy": r["accuracy"]}
                              for k, r in nested.items()},
                   "pooled_test_accuracy": nested_accuracy},
        "not_nested": {"model": best["model"], "context": best["context"], "layer": int(best["layer"]),
                       "val_accuracy": best["val_accuracy"], "test_accuracy": best["test_accuracy"]},
        "rows": rows}, indent=2))
    print(table.to_string(index=False, float_format=lambda x: f"{x:.4f}"))
    for k, r in nested.items():
        print(f"fold {k}: chosen on its own validation actors: {r['model']}, {r['context']}, layer {int(r['layer'])} "
              f"(validation {r['val_accuracy']:.4f}, test {r['accuracy']:.4f})")
    print(f"nested test accuracy (each fold's own choice, pooled over folds): {nested_accuracy:.4f}")
    print(f"not nested, for reference: one choice from the validation accuracy averaged over folds: model "
          f"{best['model']}, context {best['context']}, layer {int(best['layer'])} (validation {best['val_accuracy']:.4f}, "
          f"test {best['test_accuracy']:.4f})")


def cheapest_tied(rows: pd.DataFrame, score: str, tolerance: float, model_rank: dict) -> pd.Series:
    """The cheapest row within ``tolerance`` of the highest ``score``: smaller model, real context, lower layer."""
    tied = rows[rows[score] >= rows[score].max() - tolerance]
    return tied.assign(_size=tied["model"].map(model_rank), _ctx=(tied["context"] != "real").astype(int)).sort_values(
        ["_size", "_ctx", "layer"]).iloc[0]

if __name__ == "__main__":
    main()
