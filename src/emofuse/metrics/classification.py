"""Exact epoch-level classification metrics (torchmetrics' counts, float64) for the fused and each branch's output."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from torch import nn
from torchmetrics.classification import MulticlassStatScores

from emofuse.training.batches import TensorData


@dataclass
class Predictions:
    probs: np.ndarray  # (N, K) fused
    branch_probs: dict[str, np.ndarray]  # modality -> (N, K)
    target: np.ndarray


@torch.no_grad()
def predict(model: nn.Module, data: TensorData, batch_size: int = 256) -> Predictions:
    model.eval()
    device = next(model.parameters()).device
    probs, branch, targets = [], {}, []
    for batch in data.batches(batch_size):
        batch = batch.to(device)
        out = model(batch.inputs, batch.lengths)
        probs.append(out.probs.float().cpu())
        for m, z in out.branch_logits.items():
            branch.setdefault(m, []).append(z.float().softmax(-1).cpu())
        targets.append(batch.target)
    return Predictions(
        probs=torch.cat(probs).numpy(),
        branch_probs={m: torch.cat(v).numpy() for m, v in branch.items()},
        target=torch.cat(targets).numpy(),
    )


def accuracy_and_macro_f1(probs: np.ndarray, target: torch.Tensor, n_classes: int) -> tuple[float, float]:
    """Micro accuracy and macro-F1 as torchmetrics defines them, from its exact per-class counts in float64 (its own
    ratios are float32: 13/30 would be 0.4333333373069763). Classes absent from both predictions and targets are
    left out of the macro mean, as torchmetrics does."""
    tp, fp, _, fn, _ = (c.double() for c in MulticlassStatScores(n_classes, average=None)(torch.as_tensor(probs), target).T)
    f1 = 2 * tp / (2 * tp + fp + fn).clamp_min(1)  # counts: a zero denominator has tp = 0
    return float(tp.sum() / len(target)), float(f1[(tp + fp + fn) > 0].mean())


def classification_metrics(pred: Predictions, n_classes: int) -> dict[str, float]:
    target = torch.as_tensor(pred.target)
    accuracy, macro_f1 = accuracy_and_macro_f1(pred.probs, target, n_classes)
    probs = torch.as_tensor(pred.probs, dtype=torch.float64)
    metrics = {"accuracy": accuracy, "macro_f1": macro_f1, "nll": F.nll_loss(probs.clamp_min(1e-12).log(), target).item()}
    for m, p in pred.branch_probs.items():
        metrics[f"accuracy/{m}"] = accuracy_and_macro_f1(p, target, n_classes)[0]
    return metrics


class ClassificationEvaluator:
    """The trainer's validation hook: metrics over the whole validation set, never per-batch means."""

    selection_metric = ("accuracy", "max")  # what the best epoch is chosen by without train.early_stopping

    def __init__(self, n_classes: int, batch_size: int = 256):
        self.n_classes, self.batch_size = n_classes, batch_size

    def __call__(self, model: nn.Module, data: TensorData) -> dict[str, float]:
        return classification_metrics(predict(model, data, self.batch_size), self.n_classes)


def fold_figures(fold_results: list[dict], predictions: pd.DataFrame) -> dict:
    """A cross-validation's headline figures: accuracy and macro-F1 mean and sample std over folds, each branch's mean
    accuracy, and the accuracy pooled over every scored clip (``predictions``: label and pred columns)."""
    acc = np.array([r["accuracy"] for r in fold_results])
    f1 = np.array([r["macro_f1"] for r in fold_results])
    return {
        "accuracy_mean": float(acc.mean()),
        "accuracy_std": float(acc.std(ddof=1)) if len(acc) > 1 else 0.0,
        "macro_f1_mean": float(f1.mean()),
        "macro_f1_std": float(f1.std(ddof=1)) if len(f1) > 1 else 0.0,
        "modality_accuracy_mean": {m: float(np.mean([r["modality_accuracy"][m] for r in fold_results]))
                                   for m in fold_results[0]["modality_accuracy"]},
        "pooled_accuracy": float((predictions["label"] == predictions["pred"]).mean()),
        "n_clips": int(len(predictions)),
    }
