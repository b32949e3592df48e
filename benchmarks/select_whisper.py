"""Choose the Whisper model, layer and context of the RAVDESS configs on validation actors only.

For every (model, context) it cross-validates the config once per hidden-state index (``emofuse sensitivity``
over ``features.audio.params.layers``: one extraction per (model, context), since the cache keeps every layer) and
prints the mean over folds of the validation accuracy of each fold's selected epoch, the only number the choice
looks at. The test accuracy of the same runs is printed beside it for the record, never used. Rows within
--tolerance of the highest validation accuracy count as tied (default 0.002: 3 of the 1,440 validation clips of a
6-fold run, well inside one seed's noise), and the tie goes to the cheaper features: the smaller model, then the
real-length context (4 to 5 times less encoder work than a 30 s window), then the lower layer.

    python benchmarks/select_whisper.py --data ../shared/data/ravdess --out runs/select_whisper
    python benchmarks/select_whisper.py --variants tiny.en:real base:real --data ... --out ...   # a part
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import pandas as pd

from emofuse.config import load_config
from emofuse.evaluation.compare import run_sensitivity
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
    rows = []
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
        for r in table.itertuples(index=False):
            rows.append({"model": model, "context": context, "layer": int(r.value),
                         "val_accuracy": r.val_accuracy_mean, "test_accuracy": r.accuracy_mean,
                         "test_std": r.accuracy_std, "seconds_for_all_layers": seconds})
    table = pd.DataFrame(rows)
    size = {m: i for i, m in enumerate(dict.fromkeys(m for m, _ in variants))}
    tied = table[table["val_accuracy"] >= table["val_accuracy"].max() - args.tolerance]
    best = tied.assign(_size=tied["model"].map(size), _ctx=(tied["context"] != "real").astype(int)).sort_values(
        ["_size", "_ctx", "layer"]).iloc[0]
    args.out.mkdir(parents=True, exist_ok=True)
    table.to_csv(args.out / "selection.csv", index=False)
    (args.out / "selection.json").write_text(json.dumps({"config": str(args.config), "seeds": args.seeds,
        "tolerance": args.tolerance,
        "chosen": {"model": best["model"], "context": best["context"], "layer": int(best["layer"])},
        "rows": rows}, indent=2))
    print(table.to_string(index=False, float_format=lambda x: f"{x:.4f}"))
    print(f"{len(tied)} row(s) within {args.tolerance} of the best validation accuracy "
          f"{table['val_accuracy'].max():.4f}; the cheapest of them:")
    print(f"chosen on validation: model {best['model']}, context {best['context']}, layer {int(best['layer'])} "
          f"(validation accuracy {best['val_accuracy']:.4f}); test accuracy of that row, reported only: "
          f"{best['test_accuracy']:.4f}")


if __name__ == "__main__":
    main()
