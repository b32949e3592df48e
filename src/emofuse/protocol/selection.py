"""Nested choice among a config's variants (``selection.candidates``): features, layers, estimators, any setting.

Every candidate is cross-validated on the same folds (``RUN/candidates/<name>``, each a complete, resumable run).
Each fold then keeps the candidate whose selected epoch scored best on that fold's own validation speakers, drawn
from its training speakers (``selection.monitor``: accuracy, or the log-loss, which varies less between candidates
of equal worth on a few hundred validation clips); ties go to the candidate listed first. No test speaker's label
reaches the choice made for its fold, and the choice may differ between folds, so the pooled test accuracy is a
nested estimate of the whole recipe, selection included. (Averaging validation scores over folds and picking one candidate for all would
let each fold's test speakers, who are validation speakers of other folds, take part in its choice.)

``RUN/folds/fold_k`` links to the chosen candidate's fold directory, so reports, plots and diagnostics read the chosen
folds; ``emofuse predict`` and ``emofuse export`` use the candidate that most folds chose (``deployed_candidate``),
whose folds all share one feature extractor.
"""

from __future__ import annotations

import logging
from collections import Counter
from pathlib import Path
from typing import Callable

import pandas as pd

from emofuse.config.loading import dump_config, recorded_config
from emofuse.config.schema import ExperimentConfig, candidate_config
from emofuse.metrics.classification import ClassificationEvaluator, fold_figures
from emofuse.protocol.linear_peer import peer_summary
from emofuse.protocol.nested import choose_per_fold, link_fold, fold_predictions
from emofuse.core.registry import ConfigError
from emofuse.core.runs import atomic_write_text, start_run, write_json

log = logging.getLogger(__name__)

CandidateRunner = Callable[[ExperimentConfig, Path], dict]
"""(a candidate's config, its run directory) -> its results.json summary (a plain cross-validation)."""


def choice_metric(config: ExperimentConfig) -> tuple[str, str]:
    """(metric, 'max' or 'min') each fold chooses by: ``selection.monitor``, else the metric each candidate's epoch
    was selected by."""
    if config.selection.monitor is not None:
        return config.selection.monitor, "min" if config.selection.monitor == "nll" else "max"
    stopping = config.train.early_stopping
    return (stopping.monitor, stopping.mode) if stopping else ClassificationEvaluator.selection_metric


def deployed_candidate(chosen: list[str], names: list[str]) -> str:
    counts = Counter(chosen)
    return max(names, key=lambda name: counts[name])


def run_selection(config: ExperimentConfig, run_dir: Path, run_candidate: CandidateRunner) -> dict:
    run_dir = Path(run_dir)
    start_run(run_dir, dump_config(config), recorded_config)
    names = list(config.selection.candidates)
    summaries = {name: run_candidate(candidate_config(config, name), run_dir / "candidates" / name) for name in names}
    monitor, mode = choice_metric(config)
    by_fold = {name: {r["fold"]: r for r in s["folds"]} for name, s in summaries.items()}
    lacking = sorted({name for name, results in by_fold.items() for r in results.values() if monitor not in r["val_at_best"]})
    if lacking:
        raise ConfigError(f"selection.monitor {monitor!r}: no validation {monitor} recorded for candidate(s) "
                          f"{', '.join(lacking)} (recorded: {', '.join(sorted(next(iter(by_fold[lacking[0]].values()))['val_at_best']))})")
    val = {name: {k: float(r["val_at_best"][monitor]) for k, r in results.items()} for name, results in by_fold.items()}
    chosen = choose_per_fold(val, mode)
    folds, tables, fold_dirs = [], [], []
    for k, best in chosen.items():
        log.info("fold %d: candidate %s (validation %s %s)", k, best, monitor,
                 ", ".join(f"{n} {v[k]:.4f}" for n, v in val.items()))
        fold_dir = run_dir / "candidates" / best / "folds" / f"fold_{k}"
        link_fold(run_dir / "folds" / f"fold_{k}", fold_dir)
        folds.append({**by_fold[best][k], "candidate": best, "candidate_val": {n: v[k] for n, v in val.items()},
                      "candidate_test_accuracy": {name: by_fold[name][k]["accuracy"] for name in names}})
        tables.append(fold_predictions(fold_dir).assign(candidate=best))
        fold_dirs.append(fold_dir)
    predictions = pd.concat(tables, ignore_index=True)
    deployed = deployed_candidate(list(chosen.values()), names)
    peer = peer_summary(fold_dirs, folds, predictions, config.seed) if config.protocol.linear_peer else None
    summary = {
        **{key: value for key, value in summaries[deployed].items() if key != "linear_peer"},
        **({"linear_peer": peer} if peer is not None else {}),  # the peer of each fold's chosen candidate
        "name": config.name,
        "folds": folds,
        **fold_figures(folds, predictions),
        "selection": {"nested": True, "monitor": monitor, "chosen": chosen,
                      "candidates": {name: {"overrides": config.selection.candidates[name],
                                            "pooled_accuracy": summaries[name]["pooled_accuracy"]} for name in names}},
        "deployed_candidate": deployed,
        "seconds": sum(s.get("seconds", 0.0) for s in summaries.values()),
        "config": config.model_dump(mode="json"),
    }
    fingerprint = run_dir / "candidates" / deployed / "data_fingerprint.json"
    atomic_write_text(run_dir / "data_fingerprint.json", fingerprint.read_text())
    atomic_write_text(run_dir / "predictions.csv", predictions.to_csv(index=False))
    write_json(run_dir / "results.json", summary)
    return summary
