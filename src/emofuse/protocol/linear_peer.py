"""The linear peer of a cross-validation: logistic regressions on the inputs each fold's network sees.

A network's figure means little without the figure of a linear model on the same features, folds, speaker
normalisation and refit: on data unlike the corpus a method was shaped on, a logistic regression can beat it. Per
fold the peer fits, on the fold's training speakers' standardised inputs (sequences pooled over their frames: mean
and standard deviation), one logistic regression per modality and one on the concatenation of all modalities, and
averages the per-modality probabilities (late average). C is chosen from ``C_GRID`` by accuracy on the fold's
validation speakers; under ``protocol.refit`` the model with that C is fitted again on training and validation
speakers, as the network is. Face clips (pixels) are no linear model's input: those modalities are left out.

A modality some clips lack (a training corpus without it): its model is fitted, chosen and scored on the clips that
have it, and the late average of a clip is over the modalities it has, as the network's branches are. The
concatenation model reads every clip, an absent modality's inputs being the training mean (mean imputation), as a
feature-level fusion does.
"""

from __future__ import annotations

import logging
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import StandardScaler

from emofuse.metrics.statistics import paired_difference
from emofuse.training.batches import TensorData

C_GRID = (0.001, 0.003, 0.01, 0.03, 0.1, 0.3, 1.0)
MAX_ITER = 3000
CONCATENATION, LATE_AVERAGE = "concatenation", "late_average"
BELOW_MARGIN = 0.005  # a network further than this below its peer (pooled accuracy) is reported as below it
LEVEL, RESAMPLES = 0.95, 10_000
PEER_PREDICTIONS = "peer_predictions.csv"

log = logging.getLogger(__name__)


def pooled_inputs(data: TensorData) -> dict[str, np.ndarray]:
    """(N, D) clip vectors per modality: vectors as they are; frame sequences as the mean and the standard deviation of
    their valid frames, side by side (2 D). Face clips are left out."""
    out = {}
    for m, x in data.inputs.items():
        values, lengths = x.double().numpy(), data.lengths[m]
        if lengths is None:
            out[m] = values
            continue
        n = lengths.double().numpy()[:, None]
        valid = (np.arange(values.shape[1])[None, :] < n)[..., None]
        mean = (values * valid).sum(1) / n
        std = np.sqrt((((values - mean[:, None]) ** 2) * valid).sum(1) / n)
        out[m] = np.hstack([mean, std])
    return out


def with_concatenation(x: dict[str, np.ndarray], modalities: list[str]) -> dict[str, np.ndarray]:
    return {**x, CONCATENATION: np.hstack([x[m] for m in modalities])} if len(modalities) > 1 else x


def fit(x: np.ndarray, y: np.ndarray, c: float, model: LogisticRegression | None = None):
    """(scaler, model) on standardised ``x``; ``model`` is fitted again in place (warm start along the C path)."""
    scaler = StandardScaler().fit(x)
    model = model if model is not None else LogisticRegression(max_iter=MAX_ITER)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        model.set_params(C=c).fit(scaler.transform(x), y)
    return scaler, model


def restrict(probs: np.ndarray, class_mask: torch.Tensor | None) -> np.ndarray:
    """Probabilities with the classes outside each clip's corpus (several corpora: its ``class_mask`` row) at 0, so
    that the argmax is one of its corpus's classes, as the network's prediction is."""
    return probs if class_mask is None else probs * class_mask.numpy()


def choose_c(train_x, train_y, val_x, val_y, val_mask: torch.Tensor | None = None) -> float:
    """The C of ``C_GRID`` with the best validation accuracy (the smaller C wins ties). The path is warm-started: each
    fit starts from the previous C's solution, the same optima in fewer iterations."""
    best_c, best_acc = C_GRID[0], -1.0
    model = LogisticRegression(max_iter=MAX_ITER, warm_start=True)
    for c in C_GRID:
        scaler, model = fit(train_x, train_y, c, model)
        probs = model.predict_proba(scaler.transform(val_x))
        mask = val_mask[:, model.classes_] if val_mask is not None else None
        acc = float((model.classes_[restrict(probs, mask).argmax(1)] == val_y).mean())
        if acc > best_acc:
            best_c, best_acc = c, acc
    return best_c


def probabilities(scaler, model: LogisticRegression, x: np.ndarray, n_classes: int) -> np.ndarray:
    """(N, n_classes) class probabilities, a class the training clips lacked at 0."""
    out = np.zeros((len(x), n_classes))
    out[:, model.classes_] = model.predict_proba(scaler.transform(x))
    return out


def fit_peer(selection, scored, class_names, test_meta: pd.DataFrame, fold: int) -> tuple[dict, pd.DataFrame]:
    """The peer of one fold: C chosen with ``selection``'s train / val parts, fitted on ``scored``'s train part (the
    refit's, or ``selection`` itself) and scored on its test part. Both are fold data as the network sees them
    (``train`` / ``val`` / ``test`` TensorData). Returns the fold's record (accuracy per model, chosen C) and its
    per-clip predictions (``test_meta``: the scored test clips' clip, take and actor)."""
    started = time.perf_counter()
    modalities = list(pooled_inputs(selection.train))
    if not modalities:
        raise ValueError("the linear peer needs a modality other than face clips")
    part = {name: with_concatenation(pooled_inputs(getattr(data, name)), modalities)
            for data, name in ((selection, "train"), (selection, "val"))}
    final_train = part["train"] if scored is selection else with_concatenation(pooled_inputs(scored.train), modalities)
    final_test = with_concatenation(pooled_inputs(scored.test), modalities)
    y_train, y_val = selection.train.target.numpy(), selection.val.target.numpy()
    y_final, y_test = scored.train.target.numpy(), scored.test.target.numpy()
    probs, chosen = {}, {}
    for name in final_test:  # NaN probabilities where a clip lacks the modality
        # the rows the model reads: a modality's, those that have it; the concatenation's, all
        tr, va, ft, te = (data.present(name) for data in (selection.train, selection.val, scored.train, scored.test))
        val_mask, test_mask = (d.class_mask[torch.as_tensor(r)] if d.class_mask is not None else None
                               for d, r in ((selection.val, va), (scored.test, te)))
        probs[name] = np.full((len(y_test), len(class_names)), np.nan)
        if not (tr.any() and ft.any()):  # no training clip has the modality: no model of it
            chosen[name] = None
            continue
        if not va.any():  # no validation speaker has it (a corpus without it): C chosen on the training clips
            log.warning("linear peer %s, fold %d: no validation clip has it; C chosen on the training clips", name, fold)
            va_x, va_y, val_mask = part["train"][name][tr], y_train[tr], None
        else:
            va_x, va_y = part["val"][name][va], y_val[va]
        chosen[name] = choose_c(part["train"][name][tr], y_train[tr], va_x, va_y, val_mask)
        scaler, model = fit(final_train[name][ft], y_final[ft], chosen[name])
        if te.any():
            probs[name][te] = restrict(probabilities(scaler, model, final_test[name][te], len(class_names)), test_mask)
    if len(modalities) > 1:
        probs[LATE_AVERAGE] = np.nanmean([probs[m] for m in modalities], axis=0)
    joint = CONCATENATION if len(modalities) > 1 else modalities[0]
    names = np.asarray(class_names)
    scored_on = {name: ~np.isnan(p).any(1) for name, p in probs.items()}
    answers = {name: np.where(scored_on[name], names[np.nan_to_num(p, nan=-1).argmax(1)], "") for name, p in probs.items()}
    table = pd.DataFrame({"clip": test_meta["clip"], "take": test_meta["take"], "actor": test_meta["actor"], "fold": fold,
                          "label": names[y_test], "pred": answers[joint]})
    for name in probs:
        if name != joint:
            table[f"pred_{name}"] = answers[name]
    record = {"modalities": modalities,
              "accuracy": {name: float((p.argmax(1) == y_test)[scored_on[name]].mean()) if scored_on[name].any()
                           else float("nan") for name, p in probs.items()},
              "chosen_C": chosen, "n_train": len(y_final), "seconds": time.perf_counter() - started}
    return record, table


def peer_figures(records: list[dict], peer: pd.DataFrame) -> dict:
    """Per model (``joint``: the one on every modality, ``concatenation``, or the only modality's; with several
    modalities also ``late_average`` and ``per_modality``): accuracy pooled over the peer's predictions (``peer``: the
    folds' per-clip tables) and mean and sample std over folds; and the C chosen per fold. ``records``: each fold's
    record of ``fit_peer`` with its ``fold``."""
    modalities = records[0]["modalities"]
    joint = CONCATENATION if len(modalities) > 1 else modalities[0]

    def figures(name: str) -> dict:
        column = "pred" if name == joint else f"pred_{name}"
        folds = np.array([r["accuracy"][name] for r in records])
        scored = peer[peer[column].fillna("") != ""]  # a modality's model: the clips that have it
        folds_scored = folds[~np.isnan(folds)]  # a fold none of whose test clips has the modality scores none
        return {"pooled_accuracy": float((scored[column] == scored["label"]).mean()),
                "accuracy_mean": float(folds_scored.mean()) if len(folds_scored) else float("nan"),
                "accuracy_std": float(folds_scored.std(ddof=1)) if len(folds_scored) > 1 else 0.0,
                "folds": [float(a) for a in folds]}

    return {
        "joint": joint,
        joint: figures(joint),
        **({LATE_AVERAGE: figures(LATE_AVERAGE), "per_modality": {m: figures(m) for m in modalities}}
           if len(modalities) > 1 else {}),
        "chosen_C": {str(r["fold"]): r["chosen_C"] for r in records},
        "seconds": float(sum(r["seconds"] for r in records)),
    }


def peer_summary(fold_dirs: list[Path], fold_results: list[dict], predictions: pd.DataFrame, seed: int = 0) -> dict | None:
    """The run's peer (``peer_figures``) and the network's pooled accuracy minus the joint model's, with a
    cluster-bootstrap interval over test speakers (the paired difference of correct clips per speaker). None when a
    fold has no peer (turned off, or a fold from before it)."""
    if not all((d / PEER_PREDICTIONS).is_file() for d in fold_dirs) or not all("linear_peer" in r for r in fold_results):
        return None
    peer = pd.concat([pd.read_csv(d / PEER_PREDICTIONS, dtype={"clip": str, "take": str, "actor": str}) for d in fold_dirs],
                     ignore_index=True)
    summary = peer_figures([{"fold": r["fold"], **r["linear_peer"]} for r in fold_results], peer)
    network = predictions.assign(clip=predictions["clip"].astype(str), actor=predictions["actor"].astype(str))
    difference = paired_difference(network.assign(seed=0), peer.assign(seed=0), LEVEL, RESAMPLES, seed)
    return {**summary, "network_minus_peer": difference, "below_peer": difference["difference"] < -BELOW_MARGIN}
