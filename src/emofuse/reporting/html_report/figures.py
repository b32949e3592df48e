"""Figures embedded in a report as base64 PNG data URIs, so the HTML file needs nothing beside it.

The plots of ``emofuse.reporting.plots`` (which write PNG files) are reused as they are; the few
figures only a report shows are drawn here.
"""

from __future__ import annotations

import base64
import io
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd


@dataclass
class Figure:
    title: str
    uri: str  # data:image/png;base64,...
    caption: str = ""


def png_uri(png: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def file_uri(path: Path) -> str:
    return png_uri(Path(path).read_bytes())


def figure_uri(fig) -> str:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110, bbox_inches="tight", metadata={"Software": None})
    plt.close(fig)
    return png_uri(buffer.getvalue())


def plotted(plot: Callable[..., Path], *args, **kwargs) -> str:
    """Run one of ``emofuse.reporting.plots``' functions (they take the PNG's ``path``) and embed what it drew."""
    with tempfile.TemporaryDirectory(prefix="emofuse-report-") as tmp:
        return file_uri(plot(*args, path=Path(tmp) / "figure.png", **kwargs))


def fold_accuracy(folds: list[dict], modalities: list[str]) -> str:
    """Test accuracy per fold: the fused decision beside each modality's own branch."""
    names = [str(f["fold"]) for f in folds]
    series = {"fused": [f["accuracy"] for f in folds]}
    series.update({m: [f["modality_accuracy"][m] for f in folds] for m in modalities})
    width = 0.8 / len(series)
    fig, ax = plt.subplots(figsize=(max(5.0, 0.9 * len(folds) + 2), 3.6))
    for i, (label, values) in enumerate(series.items()):
        ax.bar(np.arange(len(folds)) + (i - (len(series) - 1) / 2) * width, values, width, label=label)
    ax.axhline(np.mean(series["fused"]), color="black", linewidth=0.8, linestyle="--", label="fused mean")
    ax.set_xticks(range(len(folds)), names)
    ax.set_xlabel("fold")
    ax.set_ylabel("test accuracy")
    ax.set_ylim(0, 1)
    ax.legend(fontsize=8, ncol=len(series) + 1, loc="upper center", bbox_to_anchor=(0.5, -0.18))
    return figure_uri(fig)


def validation_curves(histories: dict[int, pd.DataFrame], best_epochs: dict[int, int], metric: str = "val/accuracy") -> str:
    """Validation accuracy per epoch of every fold, the selected epoch marked: how selection saw the run."""
    fig, ax = plt.subplots(figsize=(6, 3.6))
    for fold, history in histories.items():
        if metric not in history:
            continue
        (line,) = ax.plot(history["epoch"], history[metric], label=f"fold {fold}", linewidth=1.2)
        best = history.loc[history["epoch"] == best_epochs.get(fold)]
        ax.scatter(best["epoch"], best[metric], color=line.get_color(), zorder=3, s=25)
    ax.set_xlabel("epoch")
    ax.set_ylabel("validation accuracy")
    ax.legend(fontsize=7, ncol=2)
    return figure_uri(fig)


def trial_values(trials: pd.DataFrame) -> str:
    """The search objective of every finished trial, in the order the trials were started."""
    fig, ax = plt.subplots(figsize=(6, 3.6))
    for state, marker in (("COMPLETE", "o"), ("PRUNED", "x")):
        rows = trials[(trials["state"] == state) & trials["value"].notna()]
        ax.scatter(rows["number"], rows["value"], marker=marker, label=state.lower())
    done = trials[trials["state"] == "COMPLETE"].sort_values("number")
    if len(done):
        ax.step(done["number"], done["value"].cummax(), where="post", color="grey", linewidth=1, label="best so far")
    ax.set_xlabel("trial")
    ax.set_ylabel("mean validation accuracy")
    ax.legend(fontsize=8)
    return figure_uri(fig)
