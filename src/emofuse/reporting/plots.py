"""The comparison's figures (PNG, matplotlib's Agg backend: no display needed)."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from sklearn.metrics import confusion_matrix

from emofuse.core.atomic import atomic_write


def _save(fig, path: Path) -> Path:
    try:
        atomic_write(path, lambda f: fig.savefig(f, format="png", dpi=120, bbox_inches="tight"))
    finally:
        plt.close(fig)
    return path


def plot_confusion(predictions: pd.DataFrame, class_names: list[str], title: str, path: Path) -> Path:
    """Row-normalised confusion matrix (recall per true class) of the fused predictions."""
    cm = confusion_matrix(predictions["label"], predictions["pred"], labels=class_names, normalize="true")
    fig, ax = plt.subplots(figsize=(6.4, 5.6))
    im = ax.imshow(cm, cmap="Blues", vmin=0, vmax=1)
    ax.set_xticks(range(len(class_names)), class_names, rotation=45, ha="right")
    ax.set_yticks(range(len(class_names)), class_names)
    for i, j in np.ndindex(cm.shape):
        ax.text(j, i, f"{cm[i, j]:.2f}", ha="center", va="center", fontsize=7, color="white" if cm[i, j] > 0.5 else "black")
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(f"{title} ({len(predictions)} test predictions)")
    fig.colorbar(im, ax=ax, fraction=0.046)
    return _save(fig, path)


def plot_accuracy_spread(per_run: pd.DataFrame, path: Path) -> Path:
    """Test accuracy of every (seed, fold) run per method, with the mean."""
    methods = list(dict.fromkeys(per_run["method"]))
    fig, ax = plt.subplots(figsize=(max(6, 0.8 * len(methods)), 4))
    rng = np.random.default_rng(0)
    for i, method in enumerate(methods):
        acc = per_run.loc[per_run["method"] == method, "accuracy"].to_numpy()
        ax.scatter(i + rng.uniform(-0.15, 0.15, len(acc)), acc, s=10, alpha=0.6)
        ax.hlines(acc.mean(), i - 0.3, i + 0.3, color="black")
    ax.set_xticks(range(len(methods)), methods, rotation=45, ha="right")
    ax.set_ylabel("test accuracy per (seed, fold)")
    return _save(fig, path)


def plot_branch_weights(histories: pd.DataFrame, title: str, path: Path, switch_epoch: int | None = None) -> Path:
    """Mean per-sample loss weight of each branch per epoch (the ``train/weight/<m>`` history columns), averaged
    over folds and seeds, with the band of one standard deviation."""
    columns = [c for c in histories.columns if c.startswith("train/weight/")]
    fig, ax = plt.subplots(figsize=(6, 4))
    grouped = histories.groupby("epoch")[columns]
    mean, std = grouped.mean(), grouped.std().fillna(0)
    for c in columns:
        ax.plot(mean.index, mean[c], label=c.rsplit("/", 1)[1])
        ax.fill_between(mean.index, mean[c] - std[c], mean[c] + std[c], alpha=0.2)
    if switch_epoch is not None:
        ax.axvline(switch_epoch, color="grey", linestyle="--", label=f"L = {switch_epoch}")
    ax.set_xlabel("epoch")
    ax.set_ylabel("mean loss weight")
    ax.set_title(title)
    ax.legend()
    return _save(fig, path)


def plot_loss_histograms(losses: dict[str, pd.DataFrame], modalities: list[str], path: Path) -> Path:
    """Distribution of per-sample training losses per branch in the last epoch, one curve per method that has the
    branch (methods compared may differ in their modalities)."""
    fig, axes = plt.subplots(1, len(modalities), figsize=(5 * len(modalities), 3.8), squeeze=False)
    for ax, m in zip(axes[0], modalities):
        values = {method: table[f"ce_{m}"].to_numpy() for method, table in losses.items() if f"ce_{m}" in table}
        top = np.quantile(np.concatenate(list(values.values())), 0.99)
        bins = np.linspace(0, max(top, 1e-3), 40)
        for method, v in values.items():
            ax.hist(v, bins=bins, histtype="step", density=True, linewidth=1.5, label=f"{method} (median {np.median(v):.3f})")
        ax.set_yscale("log")
        ax.set_xlabel(f"{m}: per-sample training CE, last epoch")
        ax.set_ylabel("density")
        ax.legend(fontsize=7)
    return _save(fig, path)


def plot_sensitivity(table: pd.DataFrame, param: str, path: Path) -> Path:
    """Validation accuracy (what a search would use) and test accuracy (reported, not used) against one value."""
    fig, ax = plt.subplots(figsize=(6, 4))
    for column, label in (("val_accuracy", "validation actors (selection)"), ("accuracy", "test actors")):
        ax.errorbar(table["value"], table[f"{column}_mean"], yerr=table[f"{column}_std"], marker="o", capsize=3, label=label)
    ax.set_xlabel(param)
    ax.set_ylabel("accuracy (mean ± std over folds x seeds)")
    ax.legend()
    return _save(fig, path)


def plot_robustness(table: pd.DataFrame, axis: str, reference: str, path: Path) -> Path:
    """Left: test accuracy against a corruption level, one line per method with its 95 % interval. Right: each
    method's difference to the reference on the same clips, with its interval. The levels are evenly spaced in the
    order given (an SNR of .inf, clean, sits beside the finite ones)."""
    methods = list(dict.fromkeys(table["method"]))
    levels = list(dict.fromkeys(table["value"]))
    fig, axes = plt.subplots(1, 2, figsize=(max(10, 2.4 * len(levels)), 4.2))
    width = 0.25 / max(1, len(methods) - 1)
    panels = (("accuracy_pooled", "ci_low", "ci_high", "test accuracy (95 % CI, speaker bootstrap)"),
              ("delta_vs_reference", "delta_ci_low", "delta_ci_high", f"accuracy - {reference} (same clips, 95 % CI)"))
    for ax, (column, low, high, label) in zip(axes, panels):
        for j, method in enumerate(methods):
            if column == "delta_vs_reference" and method == reference:
                continue
            rows = table[table["method"] == method].set_index("value").loc[levels]
            x = np.arange(len(levels)) + (j - (len(methods) - 1) / 2) * width
            mean = rows[column].to_numpy()
            err = np.vstack([mean - rows[low].to_numpy(), rows[high].to_numpy() - mean])
            ax.errorbar(x, mean, yerr=np.nan_to_num(err), marker="o", markersize=4, capsize=3, label=method,
                        color=f"C{j}")
        ax.set_xticks(range(len(levels)), [str(v) for v in levels])
        ax.set_xlabel(axis)
        ax.set_ylabel(label)
        ax.legend(fontsize=7)
    axes[1].axhline(0, color="grey", linewidth=0.8)
    fig.subplots_adjust(wspace=0.3)
    return _save(fig, path)


def plot_cartography(coords: pd.DataFrame, modalities: list[str], path: Path) -> Path:
    """Dataset map per branch: variability against confidence of p_m[y] over the epochs, one point per training
    clip and fold, planted (flipped) labels in red."""
    fig, axes = plt.subplots(1, len(modalities), figsize=(5 * len(modalities), 4.4), squeeze=False)
    flipped = coords["flipped"].to_numpy(dtype=bool)
    for ax, m in zip(axes[0], modalities):
        x, y = coords[f"variability_{m}"].to_numpy(), coords[f"confidence_{m}"].to_numpy()
        ax.scatter(x[~flipped], y[~flipped], s=4, alpha=0.25, color="grey", label=f"clean ({(~flipped).sum()})")
        if flipped.any():
            ax.scatter(x[flipped], y[flipped], s=8, alpha=0.6, color="tab:red", marker="x", label=f"flipped ({flipped.sum()})")
        ax.set_xlabel(f"{m}: variability of p[y] over epochs")
        ax.set_ylabel(f"{m}: confidence (mean p[y])")
        ax.set_ylim(0, 1)
        ax.legend(fontsize=7, loc="lower right")
    return _save(fig, path)
