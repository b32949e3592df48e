"""Exact epoch-level classification metrics (torchmetrics' counts, float64) for the fused and each branch's output."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from torch import nn

from emofuse.losses.base import restrict_classes
from emofuse.training.batches import TensorData


@dataclass
class Predictions:
    probs: np.ndarray  # (N, K) fused
    branch_probs: dict[str, np.ndarray]  # modality -> (N, K)
    target: np.ndarray
    presence: dict[str, np.ndarray] | None = None  # modality -> (N,) booleans, for a branch some rows lack

    def present(self, m: str) -> np.ndarray:
        """(N,) booleans: the rows that have modality ``m`` (a branch is scored on those only)."""
        return self.presence[m] if self.presence and m in self.presence else np.ones(len(self.target), bool)


@torch.no_grad()
def predict(model: nn.Module, data: TensorData, batch_size: int = 256) -> Predictions:
    """Fused and branch probabilities of every row; where the data carries a class mask (several corpora), over the
    row's corpus's classes only, so that its prediction is one of them."""
    model.eval()
    device = next(model.parameters()).device
    probs, branch, targets = [], {}, []
    for batch in data.batches(batch_size):
        batch = batch.to(device)
        out = restrict_classes(model(batch.inputs, batch.lengths, **batch.model_kwargs), batch.class_mask)
        probs.append(out.probs.float().cpu())
        for m, z in out.branch_logits.items():
            branch.setdefault(m, []).append(z.float().softmax(-1).cpu())
        targets.append(batch.target)
    presence = getattr(data, "presence", None)
    return Predictions(
        probs=torch.cat(probs).numpy(),
        branch_probs={m: torch.cat(v).numpy() for m, v in branch.items()},
        target=torch.cat(targets).numpy(),
        presence={m: p.numpy() for m, p in presence.items()} if presence else None,
    )


def _class_counts(probs: np.ndarray, target: torch.Tensor, n_classes: int) -> tuple[torch.Tensor, ...]:
    """torchmetrics' per-class (tp, fp, tn, fn, support) in float64; imported here, as it takes seconds to import and
    predict, which loads this module, counts nothing."""
    from torchmetrics.classification import MulticlassStatScores

    return tuple(c.double() for c in MulticlassStatScores(n_classes, average=None)(torch.as_tensor(probs), target).T)


def headline_scores(probs: np.ndarray, target: torch.Tensor, n_classes: int) -> tuple[float, float, float]:
    """Micro accuracy, macro-F1 and UA as torchmetrics defines them, from its exact per-class counts in float64 (its
    own ratios are float32: 13/30 would be 0.4333333373069763). Classes absent from both predictions and targets are
    left out of the macro-F1 mean, as torchmetrics does. UA, the unweighted average recall (EmoBox's headline;
    sklearn's balanced accuracy), is the mean over the classes the targets have of each one's recall."""
    tp, fp, _, fn, _ = _class_counts(probs, target, n_classes)
    f1 = 2 * tp / (2 * tp + fp + fn).clamp_min(1)  # counts: a zero denominator has tp = 0
    support = (tp + fn) > 0
    return float(tp.sum() / len(target)), float(f1[(tp + fp + fn) > 0].mean()), float((tp / (tp + fn))[support].mean())


def weighted_f1(probs: np.ndarray, target: torch.Tensor, n_classes: int) -> float:
    """The F1 of each class weighted by its share of the targets (sklearn's average="weighted"; MELD's headline), from
    torchmetrics' exact counts in float64."""
    tp, fp, _, fn, _ = _class_counts(probs, target, n_classes)
    f1 = 2 * tp / (2 * tp + fp + fn).clamp_min(1)
    return float((f1 * (tp + fn)).sum() / len(target))


def classification_metrics(pred: Predictions, n_classes: int) -> dict[str, float]:
    target = torch.as_tensor(pred.target)
    accuracy, macro_f1, ua = headline_scores(pred.probs, target, n_classes)
    probs = torch.as_tensor(pred.probs, dtype=torch.float64)
    metrics = {"accuracy": accuracy, "macro_f1": macro_f1, "ua": ua,
               "weighted_f1": weighted_f1(pred.probs, target, n_classes),
               "nll": F.nll_loss(probs.clamp_min(1e-12).log(), target).item()}
    for m, p in pred.branch_probs.items():  # over the rows that have the branch's modality
        present = pred.present(m)
        metrics[f"accuracy/{m}"] = (headline_scores(p[present], target[torch.as_tensor(present)], n_classes)[0]
                                    if present.any() else float("nan"))
    return metrics


class ClassificationEvaluator:
    """The trainer's validation hook: metrics over the whole validation set, never per-batch means."""

    selection_metric = ("accuracy", "max")  # what the best epoch is chosen by without train.early_stopping

    def __init__(self, n_classes: int, batch_size: int = 256):
        self.n_classes, self.batch_size = n_classes, batch_size

    def __call__(self, model: nn.Module, data: TensorData) -> dict[str, float]:
        return classification_metrics(predict(model, data, self.batch_size), self.n_classes)


def among_classes(probs: np.ndarray, keep: list[int]) -> np.ndarray:
    """Probabilities (..., K) restricted to the classes at ``keep`` and renormalised to sum to 1 over them: the answer of
    a model asked to choose among some of its classes only."""
    kept = np.asarray(probs, dtype=np.float64)[..., keep]
    return kept / np.clip(kept.sum(-1, keepdims=True), np.finfo(np.float64).tiny, None)


def unweighted_recall(table: pd.DataFrame) -> float:
    """UA of a predictions table (label and pred columns): the mean over its labels of each one's recall."""
    return float((table["label"] == table["pred"]).groupby(table["label"]).mean().mean())


def per_corpus(table: pd.DataFrame) -> dict[str, dict] | None:
    """Per corpus of a predictions table of several (its corpus column): accuracy and UA on its clips, their number,
    and its classes (in the order of the table's prob_ columns); None without a corpus column."""
    if "corpus" not in table:
        return None
    order = [c[len("prob_"):] for c in table if c.startswith("prob_")]
    return {str(corpus): {"accuracy": float((rows["label"] == rows["pred"]).mean()), "ua": unweighted_recall(rows),
                          "n": int(len(rows)), "classes": [c for c in order if c in set(rows["label"])]}
            for corpus, rows in table.groupby("corpus", sort=False)}


def fold_figures(fold_results: list[dict], predictions: pd.DataFrame) -> dict:
    """A cross-validation's headline figures: accuracy, UA and macro-F1 mean and sample std over folds (UA where every
    fold records it), each branch's mean accuracy, accuracy and UA pooled over every scored clip (``predictions``:
    label and pred columns) and, for several corpora, per corpus (``per_corpus``)."""
    def mean_std(key: str) -> dict:
        values = np.array([r[key] for r in fold_results])
        return {f"{key}_mean": float(values.mean()), f"{key}_std": float(values.std(ddof=1)) if len(values) > 1 else 0.0}

    corpora = per_corpus(predictions)
    return {
        **mean_std("accuracy"),
        **(mean_std("ua") if all("ua" in r for r in fold_results) else {}),
        **mean_std("macro_f1"),
        "modality_accuracy_mean": {m: float(np.mean([r["modality_accuracy"][m] for r in fold_results]))
                                   for m in fold_results[0]["modality_accuracy"]},
        "pooled_accuracy": float((predictions["label"] == predictions["pred"]).mean()),
        "pooled_ua": unweighted_recall(predictions),
        "n_clips": int(len(predictions)),
        **({"per_corpus": corpora} if corpora is not None else {}),
    }
