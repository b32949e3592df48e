"""Exact regression metrics over a whole evaluation set: the EMI challenge's mean Pearson.

Pearson is computed once over every prediction of the set (float64), never as a mean of per-batch
values, which is biased and depends on the batch size.
"""

from __future__ import annotations

import logging

import numpy as np
import torch
from torch import nn

from emofuse.training.batches import TensorData

log = logging.getLogger(__name__)


def pearson(pred: np.ndarray, target: np.ndarray) -> np.ndarray:
    """Pearson correlation of each column (K,); 0 where either column is constant (undefined)."""
    p = np.asarray(pred, dtype=np.float64).reshape(len(pred), -1)
    t = np.asarray(target, dtype=np.float64).reshape(len(target), -1)
    p, t = p - p.mean(0), t - t.mean(0)
    denom = np.sqrt((p * p).sum(0) * (t * t).sum(0))
    defined = denom > 0
    if not defined.all():
        log.warning("Pearson undefined (constant predictions or targets) for column(s) %s; counted as 0",
                    np.flatnonzero(~defined).tolist())
    return np.where(defined, (p * t).sum(0) / np.where(defined, denom, 1.0), 0.0)


def regression_metrics(pred: np.ndarray, target: np.ndarray, names: list[str]) -> dict[str, float]:
    r = pearson(pred, target)
    metrics = {"pearson_mean": float(r.mean()), "mse": float(np.mean((np.asarray(pred, np.float64) - target) ** 2))}
    metrics.update({f"pearson/{name}": float(v) for name, v in zip(names, r)})
    return metrics


@torch.no_grad()
def predict(model: nn.Module, data: TensorData, batch_size: int = 256) -> np.ndarray:
    """Fused predictions (N, K) in the data's row order."""
    model.eval()
    device = next(model.parameters()).device
    out = []
    for batch in data.batches(batch_size):
        batch = batch.to(device)
        out.append(model(batch.inputs, batch.lengths).pred.float().cpu())
    return torch.cat(out).numpy()


class RegressionEvaluator:
    """The trainer's validation hook: ``pearson_mean``, ``pearson/<target>`` and ``mse`` over the whole set."""

    selection_metric = ("pearson_mean", "max")  # what the best epoch is chosen by without train.early_stopping

    def __init__(self, target_names: list[str]):
        self.names = list(target_names)

    def __call__(self, model: nn.Module, data: TensorData) -> dict[str, float]:
        target = data.target[:, : len(self.names)].numpy()
        return regression_metrics(predict(model, data), target, self.names)
