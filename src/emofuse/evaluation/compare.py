"""Several methods under one protocol: the same folds, validation actors and seeds for every config.

Each (method, seed) is an ordinary cross-validation run in OUT/<method>/seed_<s> (resumable; selection on the
validation actors only). The table reports test accuracy and macro-F1 as mean ± sample std over the
folds x seeds runs, and a paired Wilcoxon signed-rank test of each method against a reference over the same
(seed, fold) pairs.
"""

from __future__ import annotations

import json
import logging
import multiprocessing
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from scipy.stats import wilcoxon

from emofuse.config import ExperimentConfig
from emofuse.evaluation import plots
from emofuse.evaluation.cross_validation import run_cross_validation
from emofuse.features.cache import FeatureCache
from emofuse.features.dataset import build_ravdess_features
from emofuse.losses import LOSSES
from emofuse.registry import ConfigError
from emofuse.runs import atomic_write_text, write_json

log = logging.getLogger(__name__)


@dataclass
class Variant:
    label: str
    config: ExperimentConfig


def _cross_validate_single_thread(config: ExperimentConfig, data_dir: Path, run_dir: Path, cache_dir: Path) -> dict:
    """One (method, seed) run in a worker process; one thread each, since several small models side by side use
    the cores better than one model on all of them."""
    torch.set_num_threads(1)
    return run_cross_validation(config, data_dir, run_dir, cache_dir, progress=False)


def run_variants(variants: list[Variant], data_dir: Path, out: Path, cache_dir: Path, seeds: int,
                 progress: bool = True, jobs: int = 1) -> pd.DataFrame:
    """Cross-validate every variant with seeds 0..seeds-1 (``jobs`` runs at a time); one row per (method, seed, fold)."""
    labels = [v.label for v in variants]
    if len(set(labels)) != len(labels):
        raise ConfigError(f"two configs share a name, so their runs would collide: {labels}")
    tasks = [(v.label, seed, v.config.model_copy(update={"seed": seed})) for v in variants for seed in range(seeds)]
    if jobs > 1:
        # features are extracted here first, so the workers only read the cache
        for config in {v.config.features.audio.model_dump_json(): v.config for v in variants}.values():
            build_ravdess_features(data_dir, config.data, config.features, FeatureCache(cache_dir), progress)
        with ProcessPoolExecutor(jobs, mp_context=multiprocessing.get_context("spawn")) as pool:
            futures = [pool.submit(_cross_validate_single_thread, config, data_dir, out / label / f"seed_{seed}", cache_dir)
                       for label, seed, config in tasks]
            summaries = [f.result() for f in futures]
    else:
        summaries = [run_cross_validation(config, data_dir, out / label / f"seed_{seed}", cache_dir, progress)
                     for label, seed, config in tasks]
    records = []
    for (label, seed, _), summary in zip(tasks, summaries):
        for f in summary["folds"]:
            records.append({
                "method": label, "seed": seed, "fold": f["fold"], "accuracy": f["accuracy"], "macro_f1": f["macro_f1"],
                "val_accuracy": f["val_at_best"]["accuracy"], "best_epoch": f["best_epoch"], "params": f["params"],
                "seconds": f["seconds"], **{f"accuracy_{m}": a for m, a in f["modality_accuracy"].items()},
            })
    per_run = pd.DataFrame(records)
    atomic_write_text(out / "runs.csv", per_run.to_csv(index=False))
    return per_run


def paired_p_value(runs: pd.DataFrame, reference: pd.DataFrame) -> tuple[float, float]:
    """(mean accuracy difference, two-sided Wilcoxon signed-rank p) over the (seed, fold) pairs both have."""
    pairs = runs.merge(reference, on=["seed", "fold"], suffixes=("", "_ref"))
    diff = (pairs["accuracy"] - pairs["accuracy_ref"]).to_numpy()
    if not len(diff):
        return float("nan"), float("nan")
    if np.allclose(diff, 0):
        return 0.0, 1.0
    return float(diff.mean()), float(wilcoxon(diff, zero_method="zsplit").pvalue)


def summarize(per_run: pd.DataFrame, reference: str) -> pd.DataFrame:
    branch_columns = [c for c in per_run.columns if c.startswith("accuracy_")]
    ref_runs = per_run.loc[per_run["method"] == reference, ["seed", "fold", "accuracy"]]
    rows = []
    for method, runs in per_run.groupby("method", sort=False):
        delta, p = (float("nan"), float("nan")) if method == reference else paired_p_value(runs, ref_runs)
        rows.append({
            "method": method, "n_runs": len(runs),
            "accuracy_mean": runs["accuracy"].mean(), "accuracy_std": runs["accuracy"].std(ddof=1),
            "macro_f1_mean": runs["macro_f1"].mean(), "macro_f1_std": runs["macro_f1"].std(ddof=1),
            **{f"{c}_mean": runs[c].mean() for c in branch_columns},
            "val_accuracy_mean": runs["val_accuracy"].mean(),
            "params": int(runs["params"].iloc[0]),
            "delta_vs_reference": delta, "p_value": p,
        })
    return pd.DataFrame(rows)


def markdown_table(table: pd.DataFrame, reference: str, seeds: int) -> str:
    branches = [c[len("accuracy_"):-len("_mean")] for c in table.columns if c.startswith("accuracy_") and c.endswith("_mean")
                and c != "accuracy_mean"]
    head = ["method", "accuracy", "macro-F1", *branches, "params", f"Δ acc vs {reference}", "p (Wilcoxon)"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in table.itertuples(index=False):
        r = r._asdict()
        is_ref = r["method"] == reference
        lines.append("| " + " | ".join([
            f"`{r['method']}`", f"{r['accuracy_mean']:.4f} ± {r['accuracy_std']:.4f}",
            f"{r['macro_f1_mean']:.4f} ± {r['macro_f1_std']:.4f}", *[f"{r[f'accuracy_{b}_mean']:.4f}" for b in branches],
            f"{r['params']:,}", "reference" if is_ref else f"{r['delta_vs_reference']:+.4f}",
            "" if is_ref else f"{r['p_value']:.3g}",
        ]) + " |")
    n = int(table["n_runs"].max())
    note = (f"\nTest accuracy / macro-F1: mean ± sample std over {n} runs (folds x {seeds} seeds); epochs selected on "
            f"validation actors only. Branch columns: accuracy of each modality's own classifier (a probe on detached "
            f"features for fusions with their own classifier). p: two-sided Wilcoxon signed-rank test of the paired "
            f"(seed, fold) accuracies against `{reference}`.\n")
    return "\n".join(lines) + "\n" + note


def draw_plots(variants: list[Variant], per_run: pd.DataFrame, out: Path) -> list[Path]:
    made = [plots.plot_accuracy_spread(per_run, out / "plots" / "accuracy.png")]
    loss_tables = {}
    for v in variants:
        run_dirs = sorted((out / v.label).glob("seed_*"))
        predictions = pd.concat([pd.read_csv(d / "predictions.csv") for d in run_dirs], ignore_index=True)
        class_names = [c[len("prob_"):] for c in predictions.columns if c.startswith("prob_")]
        made.append(plots.plot_confusion(predictions, class_names, v.label, out / "plots" / f"confusion_{v.label}.png"))
        fold_dirs = [f for d in run_dirs for f in sorted((d / "folds").glob("fold_*"))]
        if v.config.loss.name == "mars":
            histories = pd.concat([pd.read_csv(f / "history.csv") for f in fold_dirs], ignore_index=True)
            made.append(plots.plot_branch_weights(histories, f"{v.label}: mean Mars weight per branch",
                                                  out / "plots" / f"mars_weights_{v.label}.png",
                                                  LOSSES.validate_params("mars", v.config.loss.params).switch_epoch))
        if v.config.loss.name in ("cross_entropy", "mars") and v.config.model.fusion.name == "average":
            loss_tables[v.label] = pd.concat([pd.read_csv(f / "train_losses.csv") for f in fold_dirs], ignore_index=True)
    if loss_tables:
        modalities = list(variants[0].config.data.modalities)
        made.append(plots.plot_loss_histograms(loss_tables, modalities, out / "plots" / "train_loss_histograms.png"))
    return made


def run_compare(variants: list[Variant], data_dir: Path, out: Path, cache_dir: Path, seeds: int = 3,
                reference: str | None = None, progress: bool = True, sources: list[str] | None = None, jobs: int = 1) -> dict:
    if seeds < 1:
        raise ConfigError("--seeds must be at least 1")
    reference = reference or variants[0].label
    if reference not in [v.label for v in variants]:
        raise ConfigError(f"reference {reference!r} is not one of the compared methods {[v.label for v in variants]}")
    out.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    per_run = run_variants(variants, data_dir, out, cache_dir, seeds, progress, jobs)
    table = summarize(per_run, reference)
    atomic_write_text(out / "comparison.csv", table.to_csv(index=False))
    atomic_write_text(out / "comparison.md", markdown_table(table, reference, seeds))
    figures = draw_plots(variants, per_run, out)
    summary = {"methods": [v.label for v in variants], "configs": sources, "seeds": seeds, "jobs": jobs, "reference": reference,
               "data_dir": str(data_dir), "seconds": time.perf_counter() - started,
               "plots": [str(p.relative_to(out)) for p in figures], "table": json.loads(table.to_json(orient="records"))}
    write_json(out / "comparison.json", summary)
    return summary


def run_sensitivity(config: ExperimentConfig, param: str, values: list, data_dir: Path, out: Path, cache_dir: Path,
                    seeds: int = 1, progress: bool = True, jobs: int = 1) -> pd.DataFrame:
    """Cross-validate ``config`` with ``param`` set to each value; validation and test accuracy per value."""
    from emofuse.config import config_from_dict, set_dotted

    variants = []
    for value in values:
        tree = config.model_dump(mode="json")
        set_dotted(tree, param, value)
        variants.append(Variant(f"{config.name}__{param}={value}", config_from_dict(tree, f"{param}={value}")))
    per_run = run_variants(variants, data_dir, out, cache_dir, seeds, progress, jobs)
    grouped = per_run.groupby("method", sort=False)
    table = pd.DataFrame({
        "value": values,
        "val_accuracy_mean": grouped["val_accuracy"].mean().to_numpy(), "val_accuracy_std": grouped["val_accuracy"].std(ddof=1).to_numpy(),
        "accuracy_mean": grouped["accuracy"].mean().to_numpy(), "accuracy_std": grouped["accuracy"].std(ddof=1).to_numpy(),
        "macro_f1_mean": grouped["macro_f1"].mean().to_numpy(), "n_runs": grouped.size().to_numpy(),
    })
    atomic_write_text(out / "sensitivity.csv", table.to_csv(index=False))
    plots.plot_sensitivity(table, param, out / "sensitivity.png")
    return table
