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
    ua = "ua_mean" in summary  # unweighted average recall beside accuracy (a run from before it has none)
    table = Table(title=f"{summary['name']}: speaker-independent {len(summary['folds'])}-fold CV", box=box.SIMPLE_HEAD,
                  padding=(0, 0, 0, 1), pad_edge=False)
    for col in ["fold", "test actors", "val actors", "accuracy", *(["UA"] if ua else []), "macro-F1",
                *[f"acc {m}" for m in modalities], "best epoch"]:
        table.add_column(col, justify="right", overflow="fold")
    for r in summary["folds"]:
        table.add_row(str(r["fold"]), listed(r["test_actors"]), listed(r["val_actors"]),
                      f"{r['accuracy']:.4f}", *([f"{r['ua']:.4f}"] if ua else []), f"{r['macro_f1']:.4f}",
                      *[f"{r['modality_accuracy'][m]:.4f}" for m in modalities], f"{r['best_epoch']}/{r['epochs_run']}")
    table.add_row("mean ± std", "", "", f"{summary['accuracy_mean']:.4f} ± {summary['accuracy_std']:.4f}",
                  *([f"{summary['ua_mean']:.4f} ± {summary['ua_std']:.4f}"] if ua else []),
                  f"{summary['macro_f1_mean']:.4f}", *[f"{summary['modality_accuracy_mean'][m]:.4f}" for m in modalities], "")
    console = Console(width=table_width(table))
    console.print(table)
    norm = summary["speaker_norm"] + (f" (k={summary['adapt_clips']})" if "adapt_clips" in summary else "")
    console.print(f"{summary['n_clips']} test clips; speaker_norm={norm}; results in {run_dir}/results.json")
    for corpus, r in summary.get("per_corpus", {}).items():  # several corpora: each on its own classes
        console.print(f"{corpus}: accuracy {r['accuracy']:.4f}, UA {r['ua']:.4f} on {r['n']} clips of "
                      f"{len(r['classes'])} classes ({', '.join(r['classes'])})", markup=False, soft_wrap=True)
    if "calibration" in summary:
        console.print(calibration_line(summary["calibration"]), markup=False, soft_wrap=True)
    for line in peer_lines(summary.get("linear_peer")):
        console.print(line, style="bold red" if line.startswith("warning") else None, markup=False, soft_wrap=True)
    for line in condition_lines(summary.get("test_conditions")):  # protocol.test_conditions
        console.print(line, markup=False, soft_wrap=True)
    if "selection" in summary:  # protocol/selection.py: a nested choice among candidates
        chosen = ", ".join(f"fold {k}: {name}" for k, name in summary["selection"]["chosen"].items())
        console.print(f"candidates chosen per fold on its validation speakers (nested): {chosen}; predict and export "
                      f"use {summary['deployed_candidate']}")


def condition_lines(summary: dict | None) -> list[str]:
    """The test clips scored clean and under each recording condition (protocol/test_conditions.py): pooled accuracy,
    its interval over test speakers, UA and the paired difference from clean."""
    if not summary:
        return []
    lines = [f"{'condition':<20} {'accuracy':>8} {'95% CI':>15} {'UA':>6} {'vs clean':>9}"]
    for name, r in summary["conditions"].items():
        low, high = r["accuracy_ci"]
        diff = f"{r['minus_clean']['difference']:+.3f}" if "minus_clean" in r else ""
        lines.append(f"{name:<20} {r['accuracy']:>8.3f} {f'[{low:.3f}, {high:.3f}]':>15} {r['ua']:>6.3f} {diff:>9}")
    return lines


def calibration_line(calibration: dict) -> str:
    """The pooled test ECE and NLL, before and after each fold's temperature where there are any
    (protocol/calibration.py)."""
    before = calibration["uncalibrated"]
    if "calibrated" not in calibration:
        return f"calibration: test ECE {before['ece']:.4f}, NLL {before['nll']:.4f} (no temperature scaling)"
    after = calibration["calibrated"]
    ts = list(calibration["temperature"].values())
    return (f"calibration (a temperature per fold from its validation speakers, {min(ts):.2f} to {max(ts):.2f}): "
            f"test ECE {before['ece']:.4f} -> {after['ece']:.4f}, NLL {before['nll']:.4f} -> {after['nll']:.4f}")


def peer_lines(peer: dict | None) -> list[str]:
    """What a cv run says of its linear peer (protocol/linear_peer.py): the peer's pooled accuracy, the network's
    minus it with its interval and, when the network is below its peer, a warning. None (no peer): nothing."""
    if peer is None:
        return []
    d = peer["network_minus_peer"]
    joint = peer["joint"]
    lines = [f"linear peer ({joint if joint == 'concatenation' else joint + ' only'}): {peer[joint]['pooled_accuracy']:.4f}; "
             f"network - peer: {d['difference']:+.4f} [{d['ci_low']:+.4f}, {d['ci_high']:+.4f}] "
             f"({d['level'] * 100:.0f} % cluster bootstrap over test speakers)"]
    if peer["below_peer"]:
        lines.append(f"warning: the network is {-d['difference'] * 100:.1f} points below its linear peer, a logistic "
                     "regression on the same inputs")
    return lines
