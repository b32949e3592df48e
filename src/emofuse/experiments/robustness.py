"""Accuracy against a corruption level, per method: `emofuse robustness CONFIG... --axis KEY --values ...`.

Every (config, value, seed) is an ordinary cross-validation run in OUT/<config>__<axis>=<value>/seed_<s>, so a
rerun reads finished runs back, and the same folds, validation actors, seeds and training budget (the strictest
minimum-epoch rule among all the runs, training/budget.py) serve every method and level. At each level the
methods are compared as `emofuse compare` compares them (metrics/statistics.py): pooled accuracy with a
cluster-bootstrap interval over test speakers, the difference to a reference method on the same clips with its
interval, and exact sign-flip tests over folds and over speakers, Holm-adjusted across the methods of the level.
With a label-noise axis the runs' training dynamics also give the noisy-versus-hard separation
(experiments/diagnose.py) per method and level.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import yaml

from emofuse.config.loading import load_config
from emofuse.config.schema import ExperimentConfig
from emofuse.reporting import plots
from emofuse.experiments.compare import (STATISTICS, Variant, checked_reference, load_predictions, run_variants,
                                       shared_budget, summarize)
from emofuse.experiments.diagnose import separation, separation_markdown, summarize_separation
from emofuse.metrics.statistics import compare_to_reference, smallest_p_value
from emofuse.core.registry import ConfigError
from emofuse.core.runs import atomic_write_text, write_json

log = logging.getLogger(__name__)


@dataclass
class Level:
    """One method at one corruption level: the config with the axis key set to ``value``."""

    method: str
    value: object
    config: ExperimentConfig


def load_levels(paths: list[Path], axis: str, raw_values: list[str], overrides: list[str] | None = None) -> list[Level]:
    """Every config at every level, each validated with the level in place (so a bad level is an error naming the key
    before anything runs, and a corruption section needs no placeholder level of its own)."""
    values = [yaml.safe_load(v) for v in raw_values]
    bad = [r for r, v in zip(raw_values, values) if not isinstance(v, (int, float, str)) or isinstance(v, bool)]
    if bad:
        raise ConfigError(f"--values: not numbers or names: {bad}")
    if len(set(map(str, values))) != len(values):
        raise ConfigError(f"--values repeats a value: {raw_values}")
    levels = []
    for path in paths:
        for raw, value in zip(raw_values, values):
            config = load_config(path, [*(overrides or []), f"{axis}={raw}"])
            levels.append(Level(config.name, value, config))
    return levels


def robustness_table(per_run: pd.DataFrame, labels: dict[str, tuple[str, object]], out: Path, seeds: int,
                     reference: str) -> pd.DataFrame:
    """One row per (method, value): compare's summary of that level's runs (descriptive means over the (seed, fold)
    runs, then the level's statistics against the reference method)."""
    tables = []
    for value in dict.fromkeys(v for _, v in labels.values()):
        at_level = {method: label for label, (method, v) in labels.items() if v == value}
        predictions = {method: load_predictions(out, label, seeds) for method, label in at_level.items()}
        table = summarize(per_run[per_run["value"] == value], compare_to_reference(predictions, reference, **STATISTICS))
        table.insert(1, "value", value)
        tables.append(table)
    return pd.concat(tables, ignore_index=True)


def markdown_tables(table: pd.DataFrame, axis: str, reference: str, seeds: int) -> str:
    values = list(dict.fromkeys(table["value"]))
    methods = list(dict.fromkeys(table["method"]))
    cell = {(r["method"], r["value"]): r for r in table.to_dict("records")}
    head = ["method", *[f"{axis} = {v}" for v in values]]
    out = []
    for title, fmt in (
        ("Test accuracy, pooled over seeds and folds [95 % CI: bootstrap over test speakers]",
         lambda r: f"{r['accuracy_pooled']:.4f} [{r['ci_low']:.3f}, {r['ci_high']:.3f}]"),
        (f"Difference to `{reference}` in points [95 % CI]; p: sign-flip test over folds (Holm within the level)",
         lambda r: "reference" if r["method"] == reference else
         f"{100 * r['delta_vs_reference']:+.1f} [{100 * r['delta_ci_low']:+.1f}, {100 * r['delta_ci_high']:+.1f}], "
         f"p {r['p_fold']:.3g} ({r['p_fold_holm']:.3g})"),
    ):
        out += [f"{title}\n", "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        out += ["| " + " | ".join([f"`{m}`", *[fmt(cell[(m, v)]) for v in values]]) + " |" for m in methods]
        out.append("")
    n_folds, n_speakers = int(table["n_folds"].max()), int(table["n_speakers"].max())
    out.append(f"{int(table['n_runs'].max())} runs per cell ({n_folds} folds x {seeds} seeds), epochs selected on validation "
               f"actors only. Intervals: percentile cluster bootstrap over the {n_speakers} test speakers (correct clips "
               f"summed over seeds); the difference is taken on the same clips. p: exact two-sided sign-flip test of the "
               f"{n_folds} per-fold differences (smallest possible {smallest_p_value(n_folds):.3g}); per-speaker p-values "
               f"are in robustness.csv (`p_speaker`). docs/statistics.md explains the tests.\n")
    return "\n".join(out)


def label_noise_separation(labels: dict[str, tuple[str, object]], out: Path, seeds: int) -> tuple[pd.DataFrame, list[str]]:
    """The noisy-versus-hard separation of every (method, level) whose runs flipped training labels, and the runs
    left out because they recorded no training dynamics (frame-sequence inputs under ``train.record_dynamics: auto``)."""
    per_fold, without_dynamics = [], []
    for label, (method, value) in labels.items():
        for seed in range(seeds):
            run_dir = out / label / f"seed_{seed}"
            if not any((run_dir / "folds").glob("fold_*/dynamics.npz")):
                without_dynamics.append(f"{label}/seed_{seed}")
                continue
            table = separation(run_dir)
            if len(table):
                per_fold.append(table.assign(method=method, value=value))
    if not per_fold:
        return pd.DataFrame(), without_dynamics
    return summarize_separation(pd.concat(per_fold, ignore_index=True), ["method", "value"]), without_dynamics


def run_robustness(levels: list[Level], axis: str, data_dir: Path, out: Path, cache_dir: Path, seeds: int = 3,
                   reference: str | None = None, progress: bool = True, jobs: int = 1, sources: list[str] | None = None) -> dict:
    names = list(dict.fromkeys(level.method for level in levels))
    reference = checked_reference(names, reference, seeds)
    values = list(dict.fromkeys(level.value for level in levels))
    variants = [Variant(f"{level.method}__{axis}={level.value}", level.config) for level in levels]  # run directories
    labels = {v.label: (level.method, level.value) for v, level in zip(variants, levels)}
    variants, budget = shared_budget(variants)
    out.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    per_run = run_variants(variants, data_dir, out, cache_dir, seeds, progress, jobs)
    per_run.insert(1, "value", [labels[m][1] for m in per_run["method"]])
    per_run["method"] = [labels[m][0] for m in per_run["method"]]
    atomic_write_text(out / "runs.csv", per_run.to_csv(index=False))
    table = robustness_table(per_run, labels, out, seeds, reference)
    atomic_write_text(out / "robustness.csv", table.to_csv(index=False))
    text = markdown_tables(table, axis, reference, seeds)
    figure = plots.plot_robustness(table, axis, reference, out / "robustness.png")
    summary = {"axis": axis, "values": values, "methods": names, "configs": sources, "seeds": seeds, "jobs": jobs,
               "reference": reference, "data_dir": str(data_dir), "budget": budget, "statistics": STATISTICS,
               "plots": [str(figure.relative_to(out))], "table": json.loads(table.to_json(orient="records"))}
    if axis.startswith("data.label_noise"):
        sep, without_dynamics = label_noise_separation(labels, out, seeds)
        if without_dynamics:
            log.warning("no training dynamics in %d runs, left out of the separation (set train.record_dynamics: on): %s",
                        len(without_dynamics), ", ".join(without_dynamics))
            summary["separation_without_dynamics"] = without_dynamics
        if len(sep):
            atomic_write_text(out / "separation.csv", sep.to_csv(index=False))
            text += ("\nSeparating flipped from clean training clips, both branches together (AUROC: mean over folds "
                     "of the seed-averaged value, 95 % CI over folds; per branch in separation.csv):\n\n"
                     + separation_markdown(sep[sep["branch"] == "mean"], ["method", "value"]))
            summary["separation"] = json.loads(sep.to_json(orient="records"))
    atomic_write_text(out / "robustness.md", text)
    summary["seconds"] = time.perf_counter() - started
    write_json(out / "robustness.json", summary)
    return summary

