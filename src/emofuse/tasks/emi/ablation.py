"""The EMI ablation table: several configs on one feature directory, one row per config.

Each config is an ordinary ``emofuse train`` run in ``OUT/<config name>/`` (finished runs are read
back, so an interrupted table resumes); the table goes to ``OUT/ablation.md`` and ``OUT/ablation.csv``.
"""

from __future__ import annotations

import logging
from pathlib import Path

import pandas as pd

from emofuse.tasks.emi.config import load_emi_config
from emofuse.tasks.emi.experiment import run_emi
from emofuse.core.registry import ConfigError
from emofuse.core.runs import atomic_write_text

log = logging.getLogger(__name__)


def ablation_row(results: dict) -> dict:
    config = results["config"]
    row = {
        "run": results["name"], "description": results["description"],
        "modalities": "+".join(config["data"]["modalities"]),
        "val_pearson_mean": results["val"]["pearson_mean"],
        "test_pearson_mean": results["test"].get("pearson_mean"),
        "best_epoch": results["best_epoch"], "epochs_run": results["epochs_run"],
    }
    for split in ("val", "test"):
        for target, value in (results[split].get("pearson") or {}).items():
            row[f"{split}/{target}"] = value
    return row


def _fmt(value) -> str:
    return "-" if pd.isna(value) else f"{value:.4f}"


def markdown_table(table: pd.DataFrame) -> str:
    """Mean Pearson per row; a test split without targets shows '-'. Epochs are 0-based, as in history.csv."""
    lines = ["| run | description | modalities | val mean Pearson | test mean Pearson | best epoch / epochs run |",
             "|---|---|---|---:|---:|---:|"]
    for r in table.itertuples():
        lines.append(f"| {r.run} | {r.description} | {r.modalities} | {_fmt(r.val_pearson_mean)} | "
                     f"{_fmt(r.test_pearson_mean)} | {r.best_epoch} / {r.epochs_run} |")
    return "\n".join(lines) + "\n"


def run_ablation(config_paths: list[Path], data_dir: Path, out_dir: Path, overrides: list[str] | None = None) -> pd.DataFrame:
    configs = [load_emi_config(p, overrides) for p in config_paths]  # all validated before any training
    names = [c.name for c in configs]
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        raise ConfigError(f"config name(s) {dup} used more than once: each row needs its own run directory")
    rows = []
    for config in configs:
        log.info("ablation row %s (%s)", config.name, config.description)
        rows.append(ablation_row(run_emi(config, data_dir, Path(out_dir) / config.name)))
    table = pd.DataFrame(rows)
    atomic_write_text(Path(out_dir) / "ablation.csv", table.to_csv(index=False))
    atomic_write_text(Path(out_dir) / "ablation.md", markdown_table(table))
    return table
