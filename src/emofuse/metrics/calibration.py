"""Calibration: temperature scaling (Guo et al., 2017) and how far a model's confidence is from its accuracy.

A temperature acts on log-probabilities, ``softmax(log p / T)``, which for a model with fused logits is
``softmax(logits / T)`` (the log-softmax differs from the logits by a constant per row) and is also defined for a
decision-level fusion, whose fused output is a mean of branch probabilities with no logits. T > 1 softens the
answer, T < 1 sharpens it; the predicted class never changes. A class with probability 0 (a class the sample's corpus
lacks, in a run of several corpora) stays at 0.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from emofuse.core.registry import ConfigError

N_BINS = 15  # equal-width confidence bins of the expected calibration error, as in Guo et al. (2017)
LOG_T_BOUNDS = (-4.0, 4.0)  # T from 0.018 to 55: wide enough for any model the trainer makes, and a bounded search
CALIBRATION_FILE = "calibration.json"  # a fold directory's temperatures (protocol/calibration.py writes it)


def temperature_scaled(probs, temperature: float):
    """``softmax(log probs / T)`` along the last axis, for a tensor (kept a tensor) or an array (float64 array)."""
    if temperature == 1.0:
        return probs
    if isinstance(probs, torch.Tensor):
        return torch.softmax(probs.clamp_min(0).log() / temperature, -1)
    return temperature_scaled(torch.tensor(np.asarray(probs, dtype=np.float64)), temperature).numpy()


def nll(probs: np.ndarray, target: np.ndarray) -> float:
    """Mean negative log-likelihood of the targets (probabilities floored at 1e-12)."""
    p = np.asarray(probs, dtype=np.float64)[np.arange(len(target)), np.asarray(target)]
    return float(-np.log(np.clip(p, 1e-12, None)).mean())


def fit_temperature(probs: np.ndarray, target: np.ndarray) -> float:
    """The T that minimises the mean NLL of ``target`` under ``softmax(log probs / T)``: a one-dimensional search
    over log T (scipy's bounded Brent), so T stays positive. Fit it on predictions the model was not trained on. A
    target's probability is floored at 1e-12 (one that underflowed to 0 would make every T infinitely bad); other
    zeros (classes a sample's corpus lacks) stay 0 at every T."""
    log_p = torch.tensor(np.asarray(probs, dtype=np.float64)).clamp_min(0).log()
    target = torch.tensor(np.asarray(target), dtype=torch.long)
    if len(target) == 0:
        raise ValueError("fit_temperature needs at least one prediction")
    rows = torch.arange(len(target))
    log_p[rows, target] = log_p[rows, target].clamp_min(np.log(1e-12))

    def loss(log_t: float) -> float:
        return float(torch.nn.functional.cross_entropy(log_p / np.exp(log_t), target))

    from scipy.optimize import minimize_scalar  # here, not at import: predict loads this module, never fits

    found = minimize_scalar(loss, bounds=LOG_T_BOUNDS, method="bounded", options={"xatol": 1e-6})
    return float(np.exp(found.x))


def expected_calibration_error(probs: np.ndarray, target: np.ndarray, n_bins: int = N_BINS) -> float:
    """ECE: over ``n_bins`` equal-width bins of the top probability, the share of samples in a bin times the gap
    between their accuracy and their mean top probability, summed (torchmetrics' top-label L1 calibration error)."""
    from torchmetrics.functional.classification import multiclass_calibration_error  # seconds to import: predict needs none

    p = torch.tensor(np.clip(np.asarray(probs, dtype=np.float64), 0.0, 1.0))
    t = torch.tensor(np.asarray(target), dtype=torch.long)
    return float(multiclass_calibration_error(p, t, num_classes=p.shape[1], n_bins=n_bins, norm="l1"))


def brier(probs: np.ndarray, target: np.ndarray) -> float:
    """Multiclass Brier score: mean over samples of the squared distance between the probabilities and the one-hot
    target (0 is perfect, 2 the worst)."""
    p = np.asarray(probs, dtype=np.float64)
    onehot = np.eye(p.shape[1])[np.asarray(target)]
    return float(((p - onehot) ** 2).sum(1).mean())


def calibration_scores(probs: np.ndarray, target: np.ndarray) -> dict[str, float]:
    """ECE (15 bins), NLL and Brier score of probabilities against integer targets."""
    return {"ece": expected_calibration_error(probs, target), "nll": nll(probs, target), "brier": brier(probs, target)}


@dataclass(frozen=True)
class Temperatures:
    """A fold model's temperatures: its fused output's and each branch's (1, no change, where none was fitted: a run
    from before calibration, or with ``protocol.calibrate: false``); ``n_fitted``: the predictions they were fitted on."""

    fused: float = 1.0
    branches: dict[str, float] = field(default_factory=dict)
    n_fitted: int = 0

    def fused_probs(self, probs):
        return temperature_scaled(probs, self.fused)

    def branch_probs(self, modality: str, probs):
        return temperature_scaled(probs, self.branches.get(modality, 1.0))

    def to_dict(self) -> dict:
        return {"temperature": self.fused, "branch_temperatures": dict(self.branches), "n_fitted": self.n_fitted}

    @classmethod
    def of_fold(cls, fold_dir: str | Path) -> Temperatures:
        """The temperatures in ``fold_dir/calibration.json``; none (all 1) where the file is absent."""
        path = Path(fold_dir) / CALIBRATION_FILE
        if not path.is_file():
            return cls()
        try:
            state = json.loads(path.read_text())
            found = cls(float(state["temperature"]), {str(m): float(t) for m, t in state["branch_temperatures"].items()},
                        int(state["n_fitted"]))
        except (ValueError, KeyError, TypeError, AttributeError) as err:
            raise ConfigError(f"{path}: not a calibration record ({type(err).__name__}: {err}); expected temperature, "
                              "branch_temperatures and n_fitted") from None
        if not all(math.isfinite(t) and t > 0 for t in (found.fused, *found.branches.values())):
            raise ConfigError(f"{path}: every temperature must be a positive number, got {found.to_dict()}")
        return found
