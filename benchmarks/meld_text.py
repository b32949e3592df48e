"""MELD's headline figures of finished `emofuse cv` runs on MELD's official split (a manifest from `emofuse manifest
meld`): test weighted-F1 and accuracy of the network and of its linear peer (logistic regression, C chosen on dev),
the dev weighted-F1 the network's epoch was chosen by, and with several runs (seeds) the average of their
probabilities on dev and on test, an ensemble fixed in advance (every run given), not chosen on test.

    python benchmarks/meld_text.py runs/meld_text runs/meld_text_s1 runs/meld_text_s2
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.metrics import accuracy_score, f1_score


def figures(label: pd.Series, pred: pd.Series) -> dict:
    return {"weighted_f1": float(f1_score(label, pred, average="weighted")), "accuracy": float(accuracy_score(label, pred))}


def fold_dir(run: Path) -> Path:
    folds = sorted((run / "folds").glob("fold_*"))
    if len(folds) != 1 or not (folds[0] / "result.json").is_file():
        raise SystemExit(f"{run}: not a finished run on a split (one fold with result.json)")
    return folds[0]


def run_rows(run: Path) -> tuple[list[dict], dict[str, pd.DataFrame]]:
    fold = fold_dir(run)
    result = json.loads((fold / "result.json").read_text())
    net = pd.read_csv(fold / "predictions.csv")
    rows = [{"run": run.name, "model": "network", "dev_weighted_f1": result["val_at_best"].get("weighted_f1"),
             "best_epoch": result["best_epoch"], **figures(net["label"], net["pred"])}]
    peer_path = fold / "peer_predictions.csv"
    if peer_path.is_file():
        peer = pd.read_csv(peer_path)
        for column in [c for c in peer if c == "pred" or c.startswith("pred_")]:
            name = "joint" if column == "pred" else column[len("pred_"):]
            rows.append({"run": run.name, "model": f"linear peer ({name}, C {result['linear_peer']['chosen_C']})"
                         if name == "joint" else f"linear peer ({name})", **figures(peer["label"], peer[column])})
    return rows, {"dev": pd.read_csv(fold / "val_predictions.csv"), "test": net}


def ensemble(tables: list[pd.DataFrame]) -> tuple[pd.Series, pd.Series]:
    """(labels, predictions) of the mean of several runs' class probabilities on the same utterances."""
    tables = [t.set_index("clip").sort_index() for t in tables]
    probs = [c for c in tables[0] if c.startswith("prob_")]
    mean = np.mean([t[probs].to_numpy() for t in tables], axis=0)
    return tables[0]["label"], pd.Series(np.asarray([c[len("prob_"):] for c in probs])[mean.argmax(1)], index=tables[0].index)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("runs", type=Path, nargs="+", help="finished cv run directories")
    args = ap.parse_args()
    rows, parts = [], []
    for run in args.runs:
        found, tables = run_rows(run)
        rows += found
        parts.append(tables)
    if len(parts) > 1:
        dev = figures(*ensemble([p["dev"] for p in parts]))["weighted_f1"]
        rows.append({"run": f"mean of {len(parts)} runs", "model": "network ensemble", "dev_weighted_f1": dev,
                     **figures(*ensemble([p["test"] for p in parts]))})
    table = pd.DataFrame(rows)
    print(table.to_string(index=False, float_format=lambda v: f"{v:.4f}"))


if __name__ == "__main__":
    main()
