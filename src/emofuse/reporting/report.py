"""Console tables of results (rich)."""

from __future__ import annotations

from pathlib import Path

from rich import box
from rich.console import Console
from rich.table import Table

from emofuse.core.console import listed, table_width


def print_cv_summary(summary: dict, run_dir: Path) -> None:
    """The folds as a table that fits 80 columns of a terminal by wrapping at spaces (a number folds rather than being
    cut), and is printed whole to a file or a pipe."""
    modalities = list(summary["modality_accuracy_mean"])
    table = Table(title=f"{summary['name']}: speaker-independent {len(summary['folds'])}-fold CV", box=box.SIMPLE_HEAD,
                  padding=(0, 0, 0, 1), pad_edge=False)
    for col in ["fold", "test actors", "val actors", "accuracy", "macro-F1", *[f"acc {m}" for m in modalities], "best epoch"]:
        table.add_column(col, justify="right", overflow="fold")
    for r in summary["folds"]:
        table.add_row(str(r["fold"]), listed(r["test_actors"]), listed(r["val_actors"]),
                      f"{r['accuracy']:.4f}", f"{r['macro_f1']:.4f}",
                      *[f"{r['modality_accuracy'][m]:.4f}" for m in modalities], f"{r['best_epoch']}/{r['epochs_run']}")
    table.add_row("mean ± std", "", "", f"{summary['accuracy_mean']:.4f} ± {summary['accuracy_std']:.4f}",
                  f"{summary['macro_f1_mean']:.4f}", *[f"{summary['modality_accuracy_mean'][m]:.4f}" for m in modalities], "")
    console = Console(width=table_width(table))
    console.print(table)
    norm = summary["speaker_norm"] + (f" (k={summary['adapt_clips']})" if "adapt_clips" in summary else "")
    console.print(f"{summary['n_clips']} test clips; speaker_norm={norm}; results in {run_dir}/results.json")
    if "selection" in summary:  # protocol/selection.py: a nested choice among candidates
        chosen = ", ".join(f"fold {k}: {name}" for k, name in summary["selection"]["chosen"].items())
        console.print(f"candidates chosen per fold on its validation speakers (nested): {chosen}; predict and export "
                      f"use {summary['deployed_candidate']}")
