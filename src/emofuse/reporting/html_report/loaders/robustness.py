"""`emofuse robustness` directories: robustness.json/.csv, runs.csv, robustness.png, separation.csv (label-noise
axes) and one cv run per (method, level, seed) in <method>__<axis>=<value>/seed_<s>."""

from __future__ import annotations

import math
from pathlib import Path

from emofuse.metrics.statistics import smallest_p_value
from emofuse.reporting.html_report import figures
from emofuse.reporting.html_report.files import read_csv, read_json, read_optional_json, read_text
from emofuse.reporting.html_report.kinds import run_kind

PLOT_CAPTION = ("Left: pooled test accuracy against the level, one line per method, with its 95 % speaker-bootstrap "
                "interval. Right: each method's difference to the reference on the same clips, with its interval.")


def level_name(value) -> str:
    """A level as the command was given it: 0.2, 0, inf, or a name."""
    return f"{value:g}" if isinstance(value, float) and not math.isnan(value) else str(value)


@run_kind("robustness", title="robustness study", markers=("robustness.json", "runs.csv"))
def load_robustness(run_dir: Path) -> dict:
    summary = read_json(run_dir / "robustness.json")
    table = read_csv(run_dir / "robustness.csv")  # not the JSON copy: pandas writes an SNR of .inf there as null
    levels = list(dict.fromkeys(table["value"]))
    cells = {(r["method"], level_name(r["value"])): r for r in table.to_dict("records")}
    branches = [c[len("accuracy_"):-len("_mean")] for c in table.columns
                if c.startswith("accuracy_") and c.endswith("_mean") and c != "accuracy_mean"]
    runs = read_csv(run_dir / "runs.csv")
    run_columns = [c for c in ("method", "value", "seed", "fold", "accuracy", "macro_f1", "val_accuracy", "best_epoch",
                               "epochs_run", "stop_reason") if c in runs.columns] + [c for c in runs.columns if c.startswith("accuracy_")]
    separation = read_csv(run_dir / "separation.csv") if (run_dir / "separation.csv").is_file() else None
    listed = [run_dir / p for p in summary.get("plots", [])]
    methods = []
    for method in summary["methods"]:
        first = sorted(run_dir.glob(f"{method}__{summary['axis']}=*/seed_0"))
        first = first[0] if first else run_dir / "missing"
        methods.append({"name": method, "level": first.parent.name.rsplit("=", 1)[-1],
                        "config_yaml": read_text(first / "config.yaml", ""),
                        "fingerprint": read_optional_json(first / "data_fingerprint.json") or {},
                        "versions": read_optional_json(first / "versions.json") or {}})
    digests = {m["fingerprint"].get("sha256") for m in methods}
    n_folds = int(table["n_folds"].max())
    return {
        "name": f"{', '.join(summary['methods'])} against {summary['axis']}",
        "summary": summary,
        "levels": [level_name(v) for v in levels],
        "cells": cells,
        "branches": branches,
        "n_folds": n_folds,
        "n_speakers": int(table["n_speakers"].max()),
        "smallest_p_fold": smallest_p_value(n_folds),
        "separation": [] if separation is None else
        separation[separation["branch"] == "mean"].assign(value=lambda t: t["value"].map(level_name)).to_dict("records"),
        "runs": runs[run_columns].assign(value=runs["value"].map(level_name)).to_dict("records"),
        "run_columns": run_columns,
        "figures": [figures.Figure(f"Accuracy against {summary['axis']}", figures.file_uri(p), PLOT_CAPTION)
                    for p in listed if p.is_file()],
        "missing_plots": [str(p.relative_to(run_dir)) for p in listed if not p.is_file()],
        "methods": methods,
        "fingerprint": methods[0]["fingerprint"] if methods else {},
        "same_data": len(digests) == 1,
        "versions": methods[0]["versions"] if methods else {},
    }
