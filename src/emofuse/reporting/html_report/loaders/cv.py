"""`emofuse cv` run directories: results.json, predictions.csv and folds/fold_k/."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
from sklearn.metrics import precision_recall_fscore_support

from emofuse.losses import LOSSES
from emofuse.reporting import plots
from emofuse.reporting.html_report import figures
from emofuse.reporting.html_report.files import read_csv, read_json, read_optional_json, read_text
from emofuse.reporting.html_report.kinds import run_kind
from emofuse.core.registry import ConfigError


@run_kind("cv", title="speaker-independent cross-validation", markers=("results.json", "predictions.csv", "folds"))
def load_cv(run_dir: Path) -> dict:
    results = read_json(run_dir / "results.json")
    if "folds" not in results or "accuracy_mean" not in results:
        raise ConfigError(f"{run_dir}/results.json: no 'folds' and 'accuracy_mean'; not the results of `emofuse cv`")
    if isinstance(results.get("speaker_norm"), bool):  # runs from before the modes: the config's aliases
        results["speaker_norm"] = "transductive" if results["speaker_norm"] else "none"
    predictions = read_csv(run_dir / "predictions.csv")
    class_names = [c[len("prob_"):] for c in predictions.columns if c.startswith("prob_")]
    modalities = list(results.get("modality_accuracy_mean", {}))
    folds = results["folds"]
    fold_dirs = {f["fold"]: run_dir / "folds" / f"fold_{f['fold']}" for f in folds}
    histories = {k: read_csv(d / "history.csv") for k, d in fold_dirs.items() if (d / "history.csv").is_file()}
    losses = [read_csv(d / "train_losses.csv") for d in fold_dirs.values() if (d / "train_losses.csv").is_file()]
    loss = results.get("config", {}).get("loss", {})

    shown = [
        figures.Figure("Test accuracy per fold", figures.fold_accuracy(folds, modalities),
                       "Fused decision and each modality's branch; the dashed line is the fused mean over folds."),
        figures.Figure("Confusion matrix", figures.plotted(plots.plot_confusion, predictions, class_names, results["name"]),
                       "Pooled over the test clips of every fold; rows are normalised (recall per true class)."),
    ]
    if histories:
        shown.append(figures.Figure(
            "Validation accuracy per epoch", figures.validation_curves(histories, {f["fold"]: f["best_epoch"] for f in folds}),
            "On each fold's validation actors (taken from its training actors); the dot is the epoch whose weights were tested."))
    weights = [h for h in histories.values() if any(c.startswith("train/weight/") for c in h.columns)]
    kind = LOSSES.get(loss.get("name", "cross_entropy"))
    if kind.records_branch_weights and weights:
        shown.append(figures.Figure(
            "Mars weight per branch", figures.plotted(plots.plot_branch_weights, pd.concat(weights, ignore_index=True),
                                                      f"{results['name']}: mean Mars weight per branch",
                                                      switch_epoch=kind.marked_epoch(loss.get("params"))),
            "Mean per-sample loss weight exp(-gamma_m (1 - p_m[y])) per epoch, mean ± std over folds."))
    if losses and all(f"ce_{m}" in losses[0].columns for m in modalities):
        shown.append(figures.Figure(
            "Training-loss histograms", figures.plotted(plots.plot_loss_histograms, {results["name"]: pd.concat(losses)}, modalities),
            "Per-sample cross-entropy of each branch on the training clips, with the last epoch's weights."))

    precision, recall, f1, support = precision_recall_fscore_support(
        predictions["label"], predictions["pred"], labels=class_names, zero_division=0)
    per_class = [{"name": c, "precision": p, "recall": r, "f1": f, "support": int(s)}
                 for c, p, r, f, s in zip(class_names, precision, recall, f1, support)]
    return {
        "name": results["name"],
        "results": results,
        "folds": folds,
        "stops": all("stop_reason" in f.get("budget", {}) for f in folds),  # what ended each fold's training (newer runs)
        "modalities": modalities,
        "per_class": per_class,
        "figures": shown,
        "config_yaml": read_text(run_dir / "config.yaml", ""),
        "fingerprint": read_optional_json(run_dir / "data_fingerprint.json") or {},
        "versions": read_optional_json(run_dir / "versions.json") or {},
    }

