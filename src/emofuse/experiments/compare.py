"""Several methods under one protocol: the same folds, validation actors, seeds and training budget for every config.

Each (method, seed) is an ordinary cross-validation run in OUT/<method>/seed_<s> (resumable; selection on the
validation actors only), with early stopping held to the strictest minimum-epoch rule of the compared methods
(training/budget.py). The table reports test accuracy and macro-F1 as mean ± sample std over the folds x seeds
runs, and the statistics of metrics/statistics.py: a speaker-bootstrap interval for each method's accuracy
and for its difference from the reference, and sign-flip p-values over folds and over speakers.
"""

from __future__ import annotations

import json
import logging
import multiprocessing
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import torch

from emofuse.config.schema import ExperimentConfig
from emofuse.reporting import plots
from emofuse.protocol.cross_validation import run_cross_validation
from emofuse.protocol.linear_peer import LEVEL, PEER_PREDICTIONS, RESAMPLES
from emofuse.metrics.statistics import compare_to_reference, paired_difference, smallest_p_value
from emofuse.features.cache import FeatureCache
from emofuse.datasets.build import build_features
from emofuse.losses import LOSSES
from emofuse.core.registry import ConfigError
from emofuse.core.runs import atomic_write_text, write_json
from emofuse.training.budget import config_minimum_epochs, stage_start_epoch, with_minimum_epochs

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
            build_features(config.data, config.features, data_dir, FeatureCache(cache_dir), progress)
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
                "method": label, "seed": seed, "fold": f["fold"], "n_test": f["n_test"], "accuracy": f["accuracy"],
                "macro_f1": f["macro_f1"], "val_accuracy": f["val_at_best"]["accuracy"], "best_epoch": f["best_epoch"], "epochs_run": f["epochs_run"],
                "stop_reason": f.get("budget", {}).get("stop_reason"),
                "stage_start_epoch": f.get("budget", {}).get("stage_start_epoch", 0), "params": f["params"],
                "seconds": f["seconds"], **{f"accuracy_{m}": a for m, a in f["modality_accuracy"].items()},
            })
    per_run = pd.DataFrame(records)
    atomic_write_text(out / "runs.csv", per_run.to_csv(index=False))
    return per_run


def shared_budget(variants: list[Variant]) -> tuple[list[Variant], dict]:
    """Every variant under the strictest minimum-epoch rule among them (training/budget.py: a staged loss is not
    stopped before its last stage has had a full patience window), so that no method is cut shorter than another's
    rule allows. Returns the variants to run and the rule, as comparison.json records it."""
    own = {v.label: config_minimum_epochs(v.config) for v in variants}
    strictest = max(own.values())
    rule = {
        "min_epochs": strictest,
        "set_by": next(label for label, epochs in own.items() if epochs == strictest),
        "own_min_epochs": own,
        "stage_start_epoch": {v.label: stage_start_epoch(v.config) for v in variants},
        "schedule_epochs": {v.label: v.config.train.epochs for v in variants},
    }
    return [Variant(v.label, with_minimum_epochs(v.config, strictest)) for v in variants], rule


def load_predictions(out: Path, label: str, seeds: int) -> pd.DataFrame:
    """A method's test predictions over all its seeds, with a ``seed`` column."""
    return pd.concat([pd.read_csv(out / label / f"seed_{seed}" / "predictions.csv").assign(seed=seed) for seed in range(seeds)],
                     ignore_index=True)


def load_peer_predictions(out: Path, label: str, seeds: int) -> pd.DataFrame | None:
    """A method's linear-peer predictions over all its seeds (``seed`` column), or None where a run has no peer."""
    tables = []
    for seed in range(seeds):
        fold_dirs = sorted((out / label / f"seed_{seed}" / "folds").glob("fold_*"))
        if not fold_dirs or not all((d / PEER_PREDICTIONS).is_file() for d in fold_dirs):
            return None
        tables += [pd.read_csv(d / PEER_PREDICTIONS).assign(seed=seed) for d in fold_dirs]
    return pd.concat(tables, ignore_index=True)


def peer_statistics(out: Path, predictions: dict[str, pd.DataFrame], seeds: int, seed: int) -> pd.DataFrame:
    """Per method with a linear peer in every run: the peer's pooled accuracy (its joint model) and the method's minus
    it on the same (seed, clip) predictions, with a cluster-bootstrap interval over test speakers."""
    rows = []
    for method, network in predictions.items():
        peer = load_peer_predictions(out, method, seeds)
        if peer is None:
            continue
        d = paired_difference(network, peer, LEVEL, RESAMPLES, seed)
        rows.append({"method": method, "peer_accuracy_pooled": float((peer["label"] == peer["pred"]).mean()),
                     "delta_vs_peer": d["difference"], "delta_vs_peer_ci_low": d["ci_low"],
                     "delta_vs_peer_ci_high": d["ci_high"]})
    return pd.DataFrame(rows, columns=["method", "peer_accuracy_pooled", "delta_vs_peer", "delta_vs_peer_ci_low",
                                       "delta_vs_peer_ci_high"])


def summarize(per_run: pd.DataFrame, statistics: pd.DataFrame) -> pd.DataFrame:
    """Descriptive columns over the (seed, fold) runs, then the statistics of the independent units."""
    branch_columns = [c for c in per_run.columns if c.startswith("accuracy_")]
    rows = []
    for method, runs in per_run.groupby("method", sort=False):
        rows.append({
            "method": method, "n_runs": len(runs),
            "accuracy_mean": runs["accuracy"].mean(), "accuracy_std": runs["accuracy"].std(ddof=1),
            "macro_f1_mean": runs["macro_f1"].mean(), "macro_f1_std": runs["macro_f1"].std(ddof=1),
            **{f"{c}_mean": runs[c].mean() for c in branch_columns},
            "val_accuracy_mean": runs["val_accuracy"].mean(),
            "params": int(runs["params"].iloc[0]),
            "epochs_run_median": runs["epochs_run"].median(), "stopped_by_patience": int((runs["stop_reason"] == "patience").sum()),
            "best_epoch_median": runs["best_epoch"].median(),
            "best_in_last_stage": int((runs["best_epoch"] >= runs["stage_start_epoch"]).sum()),
        })
    return pd.DataFrame(rows).merge(statistics, on="method", how="left", validate="one_to_one")


def _p(value: float, adjusted: float) -> str:
    return f"{value:.3g} ({adjusted:.3g})"


def peer_cell(r: dict) -> str:
    if pd.isna(r["delta_vs_peer"]):
        return ""
    return (f"{r['peer_accuracy_pooled']:.4f}; {100 * r['delta_vs_peer']:+.1f} [{100 * r['delta_vs_peer_ci_low']:+.1f}, "
            f"{100 * r['delta_vs_peer_ci_high']:+.1f}]")


def markdown_table(table: pd.DataFrame, reference: str, seeds: int, budget: dict, level: float) -> str:
    branches = [c[len("accuracy_"):-len("_mean")] for c in table.columns if c.startswith("accuracy_") and c.endswith("_mean")
                and c != "accuracy_mean"]
    percent = f"{level:.0%}"
    head = ["method", "accuracy", f"{percent} CI", "macro-F1", *branches, "params", "epochs run / best",
            f"Δ points vs {reference} [{percent} CI]", "p folds (Holm)", "p speakers (Holm)"]
    peers = "delta_vs_peer" in table and table["delta_vs_peer"].notna().any()
    if peers:
        head.append(f"linear peer; Δ points [{percent} CI]")
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in table.itertuples(index=False):
        r = r._asdict()
        is_ref = r["method"] == reference
        delta = (f"{100 * r['delta_vs_reference']:+.1f} [{100 * r['delta_ci_low']:+.1f}, {100 * r['delta_ci_high']:+.1f}]")
        lines.append("| " + " | ".join([
            f"`{r['method']}`", f"{r['accuracy_mean']:.4f} ± {r['accuracy_std']:.4f}",
            f"[{r['ci_low']:.3f}, {r['ci_high']:.3f}]",
            f"{r['macro_f1_mean']:.4f} ± {r['macro_f1_std']:.4f}", *[f"{r[f'accuracy_{b}_mean']:.4f}" for b in branches],
            f"{r['params']:,}", f"{r['epochs_run_median']:g} / {r['best_epoch_median'] + 1:g}",
            "reference" if is_ref else delta,
            "" if is_ref else _p(r["p_fold"], r["p_fold_holm"]), "" if is_ref else _p(r["p_speaker"], r["p_speaker_holm"]),
            *([peer_cell(r)] if peers else []),
        ]) + " |")
    n_runs, n_folds, n_speakers = int(table["n_runs"].max()), int(table["n_folds"].max()), int(table["n_speakers"].max())
    staged = {m: e for m, e in budget["stage_start_epoch"].items() if e > 0}
    selected = "; ".join(f"`{m}` selected an epoch of its last stage (epoch {e + 1} or later, 1-based) in "
                         f"{int(table.set_index('method').loc[m, 'best_in_last_stage'])} of {n_runs} runs" for m, e in staged.items())
    schedules = sorted(set(budget["schedule_epochs"].values()))
    note = (
        f"\nAccuracy / macro-F1: mean ± sample std over {n_runs} runs (folds x {seeds} seeds); epochs selected on "
        f"validation actors only. {percent} CI: percentile cluster bootstrap over the {n_speakers} test speakers "
        f"(speakers resampled with all their clips, correct counts summed over seeds), around the pooled accuracy; "
        f"Δ points: pooled difference in accuracy from `{reference}` (×100) on the same clips, with the same "
        f"bootstrap. p folds: exact two-sided sign-flip test of the {n_folds} per-fold differences in correct-clip "
        f"counts (seeds summed); the smallest p it can give is 2/2^{n_folds} = {smallest_p_value(n_folds):.3g}. p speakers: the same "
        f"over the {n_speakers} per-speaker differences (speakers of a fold share its models, so read it as the more "
        f"liberal of the two). In brackets: Holm-adjusted across the {len(table) - 1} comparison(s) with "
        f"`{reference}`. Branch columns: accuracy of each modality's own classifier (a probe on detached features "
        f"for fusions with their own classifier). docs/statistics.md explains the tests."
        + (" Linear peer: pooled accuracy of logistic regressions on the concatenated inputs each run's network sees "
           "(C chosen on its validation speakers); Δ points: the method's minus its peer's on the same clips, same "
           "bootstrap." if peers else "") + "\n\n"
        f"Budget: every method ran under one rule: early stopping never before {budget['min_epochs']} epochs (the "
        f"strictest of the methods' own minimums max(min_epochs, last-stage start + patience), set by "
        f"`{budget['set_by']}`), learning-rate schedule of {'/'.join(map(str, schedules))} epochs; runs stopped by "
        f"patience: {int(table['stopped_by_patience'].sum())} of {int(table['n_runs'].sum())}, the others at the "
        f"schedule's end. Epochs run / best: medians over runs (best epoch 1-based).{' ' + selected + '.' if selected else ''}\n"
    )
    return "\n".join(lines) + "\n" + note


def draw_plots(variants: list[Variant], per_run: pd.DataFrame, predictions_of: dict[str, pd.DataFrame], out: Path) -> list[Path]:
    made = [plots.plot_accuracy_spread(per_run, out / "plots" / "accuracy.png")]
    loss_tables = {}
    for v in variants:
        run_dirs = sorted((out / v.label).glob("seed_*"))
        predictions = predictions_of[v.label]
        class_names = [c[len("prob_"):] for c in predictions.columns if c.startswith("prob_")]
        made.append(plots.plot_confusion(predictions, class_names, v.label, out / "plots" / f"confusion_{v.label}.png"))
        fold_dirs = [f for d in run_dirs for f in sorted((d / "folds").glob("fold_*"))]
        loss = LOSSES.get(v.config.loss.name)
        if loss.records_branch_weights:
            histories = pd.concat([pd.read_csv(f / "history.csv") for f in fold_dirs], ignore_index=True)
            made.append(plots.plot_branch_weights(histories, f"{v.label}: mean {v.config.loss.name.capitalize()} weight per branch",
                                                  out / "plots" / f"{v.config.loss.name}_weights_{v.label}.png",
                                                  loss.marked_epoch(v.config.loss.params)))
        if loss.comparable_branch_losses and v.config.model.fusion.name == "average":
            loss_tables[v.label] = pd.concat([pd.read_csv(f / "train_losses.csv") for f in fold_dirs], ignore_index=True)
    if loss_tables:
        modalities = list(dict.fromkeys(m for v in variants for m in v.config.data.modalities))
        made.append(plots.plot_loss_histograms(loss_tables, modalities, out / "plots" / "train_loss_histograms.png"))
    return made


STATISTICS = {"level": 0.95, "n_resamples": 10_000, "seed": 0}  # the intervals and tests of every comparison


def checked_reference(methods: list[str], reference: str | None, seeds: int) -> str:
    """The method the others are compared with (default: the first), after checking it and the seed count."""
    if seeds < 1:
        raise ConfigError("--seeds must be at least 1")
    reference = reference or methods[0]
    if reference not in methods:
        raise ConfigError(f"reference {reference!r} is not one of the compared methods {methods}")
    return reference


def run_compare(variants: list[Variant], data_dir: Path, out: Path, cache_dir: Path, seeds: int = 3,
                reference: str | None = None, progress: bool = True, sources: list[str] | None = None, jobs: int = 1) -> dict:
    reference = checked_reference([v.label for v in variants], reference, seeds)
    out.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    variants, budget = shared_budget(variants)
    log.info("budget: no early stop before %d epochs for every method (set by %s)", budget["min_epochs"], budget["set_by"])
    per_run = run_variants(variants, data_dir, out, cache_dir, seeds, progress, jobs)
    predictions = {v.label: load_predictions(out, v.label, seeds) for v in variants}
    statistics = dict(STATISTICS)
    table = summarize(per_run, compare_to_reference(predictions, reference, **statistics))
    table = table.merge(peer_statistics(out, predictions, seeds, statistics["seed"]), on="method", how="left",
                        validate="one_to_one")
    atomic_write_text(out / "comparison.csv", table.to_csv(index=False))
    atomic_write_text(out / "comparison.md", markdown_table(table, reference, seeds, budget, statistics["level"]))
    figures = draw_plots(variants, per_run, predictions, out)
    statistics.update({
        "interval": "percentile cluster bootstrap over test speakers (correct and scored clips summed over seeds)",
        "p_fold": "exact two-sided sign-flip test over per-fold differences in correct-clip counts (seeds summed)",
        "p_speaker": "exact two-sided sign-flip test over per-speaker differences in correct-clip counts (seeds summed)",
        "adjustment": "Holm across the methods compared with the reference",
        "smallest_p_fold": smallest_p_value(int(table["n_folds"].max())),
    })
    summary = {"methods": [v.label for v in variants], "configs": sources, "seeds": seeds, "jobs": jobs, "reference": reference,
               "data_dir": str(data_dir), "seconds": time.perf_counter() - started, "budget": budget, "statistics": statistics,
               "plots": [str(p.relative_to(out)) for p in figures], "table": json.loads(table.to_json(orient="records"))}
    write_json(out / "comparison.json", summary)
    return summary


def run_sensitivity(config: ExperimentConfig, param: str, values: list, data_dir: Path, out: Path, cache_dir: Path,
                    seeds: int = 1, progress: bool = True, jobs: int = 1) -> pd.DataFrame:
    """Cross-validate ``config`` with ``param`` set to each value; validation and test accuracy per value."""
    from emofuse.config.loading import config_from_dict
    from emofuse.config.overrides import set_dotted

    variants = []
    for value in values:
        tree = config.model_dump(mode="json")
        set_dotted(tree, param, value)
        variants.append(Variant(f"{config.name}__{param}={value}", config_from_dict(tree, f"{param}={value}")))
    variants, budget = shared_budget(variants)
    log.info("budget: no early stop before %d epochs for every value (set by %s)", budget["min_epochs"], budget["set_by"])
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
