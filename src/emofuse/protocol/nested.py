"""Per-fold choice among configurations cross-validated on the same folds: a nested estimate of a search.

Each fold keeps the configuration that scored best on that fold's own validation speakers, drawn from its
training speakers, so no test speaker's label reaches the choice its fold is scored with. The choice may differ
between folds; the pooled test predictions of the chosen folds estimate the whole recipe, selection included.
Averaging validation scores over folds and picking one configuration for all would not be nested: fold k's test
speakers are validation speakers of other folds. Used by ``selection.candidates`` (protocol/selection.py) and
``emofuse sweep``; ``benchmarks/select_whisper.py`` applies the same rule.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pandas as pd

from emofuse.metrics.classification import fold_figures
from emofuse.protocol.linear_peer import peer_summary
from emofuse.core.runs import atomic_write_text, write_json


def choose_per_fold(val_scores: dict, mode: str = "max") -> dict[int, object]:
    """{candidate: {fold: validation score}} -> {fold: chosen candidate}. Ties go to the candidate listed first; a
    candidate without a score for a fold (a trial pruned before it) is no choice there."""
    sign = 1 if mode == "max" else -1
    folds = sorted({k for scores in val_scores.values() for k in scores})
    chosen = {}
    for k in folds:
        scored = [c for c in val_scores if k in val_scores[c]]
        chosen[k] = max(scored, key=lambda c: sign * val_scores[c][k])  # max keeps the first of equal scores
    return chosen


def link_fold(link: Path, target: Path) -> None:
    """``link`` -> ``target`` (a fold directory), relative so the run directory can move; a copy where links fail."""
    link.parent.mkdir(parents=True, exist_ok=True)
    if link.is_symlink() or link.is_file():
        link.unlink()
    elif link.is_dir():
        shutil.rmtree(link)
    try:
        os.symlink(os.path.relpath(target, link.parent), link, target_is_directory=True)
    except OSError:
        shutil.copytree(target, link)


def fold_predictions(fold_dir: Path) -> pd.DataFrame:
    return pd.read_csv(fold_dir / "predictions.csv", dtype={"clip": str, "take": str, "actor": str})


def write_nested_run(run_dir: Path, name: str, chosen_dirs: dict[int, tuple[str, Path]], extra: dict) -> dict:
    """A cv-like run directory (results.json, predictions.csv, folds/fold_k links) of each fold's chosen
    configuration: ``chosen_dirs`` {fold: (candidate name, its fold directory)}. Reports read it as a cv run."""
    folds, tables = [], []
    for k, (candidate, fold_dir) in sorted(chosen_dirs.items()):
        result, table = json.loads((fold_dir / "result.json").read_text()), fold_predictions(fold_dir)
        link_fold(run_dir / "folds" / f"fold_{k}", fold_dir)
        folds.append({**result, "candidate": candidate})
        tables.append(table.assign(candidate=candidate))
    predictions = pd.concat(tables, ignore_index=True)
    summary = {"name": name, "nested": True, "folds": folds, **fold_figures(folds, predictions), **extra}
    peer = peer_summary([fold_dir for _, fold_dir in (chosen_dirs[k] for k in sorted(chosen_dirs))], folds, predictions)
    if peer is not None:  # each fold's peer is its chosen configuration's
        summary["linear_peer"] = peer
    atomic_write_text(run_dir / "predictions.csv", predictions.to_csv(index=False))
    write_json(run_dir / "results.json", summary)
    return summary
