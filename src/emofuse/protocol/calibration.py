"""Per-fold temperature scaling in cross-validation (``protocol.calibrate``) and how calibrated the folds are.

Each fold's temperature is fitted on its validation speakers' predictions by the model that selected the epoch: held
out from that model's training (they chose its epoch, as in Guo et al., 2017), never its test speakers. Under
``protocol.refit`` the scored model is retrained on the training and validation speakers, so it has no held-out
speakers left; it is given the selection model's temperature, an approximation (the same recipe and epoch, trained on
more speakers). The fused output and each branch get their own temperature. ``calibration.json`` in the fold
directory holds them, and `emofuse predict` applies them (``metrics.calibration.Temperatures``).

Each fold's result and ``results.json`` report the test speakers' ECE, NLL and Brier score before and after (pooled
over every scored clip, and per corpus for a manifest of several).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from emofuse.metrics.calibration import CALIBRATION_FILE, Temperatures, calibration_scores, fit_temperature
from emofuse.metrics.classification import Predictions, among_classes


def fit_fold_temperatures(val: Predictions) -> Temperatures:
    """Temperatures of the fused output and each branch, fitted on a fold's validation-speaker predictions."""
    return Temperatures(fit_temperature(val.probs, val.target),
                        {m: fit_temperature(p, val.target) for m, p in val.branch_probs.items()}, len(val.target))


def fold_calibration(temperatures: Temperatures, test: Predictions) -> dict:
    """A fold's result entry: its temperatures and the fused test predictions' scores before and after them."""
    return {**temperatures.to_dict(),
            "uncalibrated": calibration_scores(test.probs, test.target),
            "calibrated": calibration_scores(temperatures.fused_probs(test.probs), test.target)}


def calibration_summary(fold_results: list[dict], predictions: pd.DataFrame, class_names) -> dict:
    """``results.json``'s ``calibration``: each fold's temperature, and the scores before and after pooled over every
    scored clip of ``predictions`` (its prob_ and label columns; each fold's clips scaled by its own temperature)
    and, with a corpus column, per corpus; without temperatures (``protocol.calibrate: false``), the scores as they
    are."""
    fitted = all("calibration" in r for r in fold_results)
    temperature = {r["fold"]: r["calibration"]["temperature"] for r in fold_results} if fitted else {}
    probs = predictions[[f"prob_{c}" for c in class_names]].to_numpy(np.float64)
    target = predictions["label"].map({c: k for k, c in enumerate(class_names)}).to_numpy()
    calibrated = probs.copy()
    for fold, t in temperature.items():
        rows = (predictions["fold"] == fold).to_numpy()
        calibrated[rows] = Temperatures(t).fused_probs(probs[rows])

    def scores(rows) -> dict:
        found = {"uncalibrated": calibration_scores(probs[rows], target[rows])}
        if temperature:
            found["calibrated"] = calibration_scores(calibrated[rows], target[rows])
        return found

    out = {**({"temperature": temperature} if temperature else {}), **scores(slice(None))}
    if "corpus" in predictions:
        out["per_corpus"] = {str(c): scores((predictions["corpus"] == c).to_numpy())
                             for c in predictions["corpus"].unique()}
    return {"calibration": out}


def cv_temperatures(cv_run: Path) -> Temperatures | None:
    """A final fit's temperatures (``emofuse fit --epochs-from CV_RUN``): with no speaker held out to fit its own, the
    median over the cross-validation's folds of theirs, as its epoch is their selected epochs' median; None where
    the folds have none."""
    folds = [Temperatures.of_fold(d) for d in sorted(Path(cv_run).glob("folds/fold_*"))
             if (d / CALIBRATION_FILE).is_file()]
    if not folds:
        return None
    return Temperatures(float(np.median([t.fused for t in folds])),
                        {m: float(np.median([t.branches[m] for t in folds])) for m in folds[0].branches},
                        sum(t.n_fitted for t in folds))


def other_corpus_calibration(probs: np.ndarray, target: np.ndarray, classes: list[str], shared: list[str]) -> dict:
    """Scores of a run's probabilities over its ``classes`` on another corpus's scored rows (``target``: run class
    names): deciding among all classes, and among the ``shared`` ones (renormalised over them)."""
    among = among_classes(probs, [classes.index(c) for c in shared])
    return {"all_classes": calibration_scores(probs, np.array([classes.index(t) for t in target])),
            "shared_classes": calibration_scores(among, np.array([shared.index(t) for t in target]))}
