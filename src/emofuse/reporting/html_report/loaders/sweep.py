"""`emofuse sweep` directories: sweep.json, trials.csv, each fold's own choice scored in nested/ and, for reference,
the trial best on average over folds in best/."""

from __future__ import annotations

from pathlib import Path

from emofuse.reporting.html_report import figures
from emofuse.reporting.html_report.files import read_csv, read_json, read_text
from emofuse.reporting.html_report.kinds import run_kind
from emofuse.reporting.html_report.loaders.cv import load_cv


@run_kind("sweep", title="hyper-parameter sweep", markers=("sweep.json", "trials.csv"))
def load_sweep(run_dir: Path) -> dict:
    summary = read_json(run_dir / "sweep.json")
    trials = read_csv(run_dir / "trials.csv")
    param_columns = [c for c in trials.columns if c.startswith("params_")]
    shown = []
    if trials["value"].notna().any():
        shown.append(figures.Figure("Search objective per trial", figures.trial_values(trials),
                                    summary.get("objective", "")))
    best, nested = run_dir / "best", run_dir / "nested"
    return {
        "name": summary.get("study", run_dir.name),
        "summary": summary,
        "trials": trials.to_dict("records"),
        "param_columns": param_columns,
        "figures": shown,
        "base_config_yaml": read_text(run_dir / "base_config.yaml", ""),
        "space_yaml": read_text(run_dir / "space.yaml", ""),
        "nested": load_cv(nested) if (nested / "results.json").is_file() else None,
        "best": load_cv(best) if (best / "results.json").is_file() else None,
    }
