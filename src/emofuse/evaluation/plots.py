"""The comparison's figures (PNG, matplotlib's Agg backend: no display needed)."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from sklearn.metrics import confusion_matrix


def _save(fig, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.tmp.png")
    fig.savefig(tmp, dpi=120, bbox_inches="tight")
    plt.close(fig)
    tmp.replace(path)
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
    """Distribution of per-sample training losses per branch in the last epoch, one curve per method."""
    fig, axes = plt.subplots(1, len(modalities), figsize=(5 * len(modalities), 3.8), squeeze=False)
    for ax, m in zip(axes[0], modalities):
        values = {method: table[f"ce_{m}"].to_numpy() for method, table in losses.items()}
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
