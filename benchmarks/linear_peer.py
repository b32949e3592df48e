"""The linear peer of a config without training its network: the logistic regressions `emofuse cv` fits beside it.

For each config, prints the test accuracy of the linear peer (emofuse.protocol.linear_peer, the code `emofuse cv`
runs in every fold): one logistic regression per modality, one on the concatenation of all modalities, and the late
average of the per-modality probabilities, on each fold's inputs as its network sees them (same features, folds,
speaker normalisation; sequences pooled by mean and std over frames), C chosen on each fold's validation speakers and,
with ``protocol.refit``, fitted again on training and validation speakers. A cv run of the same config records the same
figures under ``linear_peer`` in its results.json.

    python benchmarks/linear_peer.py configs/ravdess_mars_whisper.yaml --data ../shared/data/ravdess
    python benchmarks/linear_peer.py configs/ravdess_mars.yaml --data ../shared/data/ravdess --json peer.json
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import pandas as pd

from emofuse.api import locate_data
from emofuse.config.loading import load_config
from emofuse.datasets.build import build_features
from emofuse.features.cache import FeatureCache, default_cache_dir
from emofuse.protocol.cross_validation import peer_fold, prepare_inputs
from emofuse.protocol.folds import dataset_folds
from emofuse.protocol.linear_peer import peer_figures


def run(config_path: Path, data: Path | None, cache: Path, overrides: list[str]) -> dict:
    config, data_dir = locate_data(load_config(config_path, overrides), data)
    fs = build_features(config.data, config.features, data_dir, FeatureCache(cache), progress=False)
    inputs = prepare_inputs(fs, config)
    records, tables = [], []
    for fold in dataset_folds(fs.meta, config.protocol.n_folds, config.protocol.val_fraction, config.seed):
        record, table = peer_fold(config, fs, inputs, fold)
        if record is None:
            raise SystemExit(f"{config_path}: face clips only; the linear peer leaves them out")
        records.append({"fold": fold.index, **record})
        tables.append(table)
    return {"config": str(config_path), "speaker_norm": config.features.speaker_norm,
            "adapt_clips": config.features.adapt_clips, "refit": config.protocol.refit,
            "linear_peer": peer_figures(records, pd.concat(tables, ignore_index=True))}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("configs", type=Path, nargs="+")
    parser.add_argument("--data", type=Path, default=None, help="as `emofuse cv --data` (default: the packaged sample)")
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
        peer = result["linear_peer"]
        print(f"{path} (speaker_norm {result['speaker_norm']}), linear peer, test accuracy pooled; mean ± std over "
              f"folds ({peer['seconds']:.1f} s fitting, {result['seconds']:.1f} s in all):")
        models = {peer["joint"]: peer[peer["joint"]], **({"late_average": peer["late_average"]} if "late_average" in peer else {}),
                  **peer.get("per_modality", {})}
        for name, r in models.items():
            print(f"  {name:<14} {r['pooled_accuracy']:.4f}; {r['accuracy_mean']:.4f} ± {r['accuracy_std']:.4f}   "
                  f"folds {' '.join(f'{a:.3f}' for a in r['folds'])}")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
