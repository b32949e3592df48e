"""The linear peer of an EMI run: ridge regressions on the inputs its network sees (protocol/linear_peer.py is the
classification peer). One ridge per modality, one on the concatenation of all modalities, and the late average of
the per-modality predictions; each sequence pooled into the mean and standard deviation of its frames; the
regularisation alpha chosen from ``ALPHAS`` by mean Pearson on the validation rows."""

from __future__ import annotations

import time

import numpy as np
import pandas as pd
from sklearn.linear_model import Ridge
from sklearn.preprocessing import StandardScaler

from emofuse.metrics.regression import pearson
from emofuse.metrics.statistics import bootstrap_indices
from emofuse.protocol.linear_peer import (BELOW_MARGIN, CONCATENATION, LATE_AVERAGE, LEVEL, RESAMPLES, pooled_inputs,
                                          with_concatenation)
from emofuse.training.batches import TensorData

ALPHAS = (0.1, 1.0, 10.0, 100.0, 1000.0, 10000.0)


def fit_ridge(x: np.ndarray, y: np.ndarray, alpha: float):
    scaler = StandardScaler().fit(x)
    return scaler, Ridge(alpha=alpha).fit(scaler.transform(x), y)


def ridge_peer(parts: dict[str, TensorData], targets: dict[str, np.ndarray]) -> tuple[dict, dict[str, np.ndarray]]:
    """``parts``: the train / val / test inputs as the network sees them; ``targets``: each part's targets (test may
    be None: predicted, not scored). Returns the record (mean Pearson per model on val and test, the alpha chosen per
    model) and the joint model's predictions per part."""
    started = time.perf_counter()
    modalities = list(pooled_inputs(parts["train"]))
    x = {name: with_concatenation(pooled_inputs(data), modalities) for name, data in parts.items()}
    score = lambda pred, y: float(pearson(pred, y).mean())
    preds, chosen = {split: {} for split in ("val", "test")}, {}
    for name in x["train"]:
        fits = {a: fit_ridge(x["train"][name], targets["train"], a) for a in ALPHAS}
        val = {a: model.predict(scaler.transform(x["val"][name])) for a, (scaler, model) in fits.items()}
        chosen[name] = max(ALPHAS, key=lambda a: (score(val[a], targets["val"]), -a))  # ties: the stronger alpha
        scaler, model = fits[chosen[name]]
        preds["val"][name], preds["test"][name] = val[chosen[name]], model.predict(scaler.transform(x["test"][name]))
    if len(modalities) > 1:
        for split in preds:
            preds[split][LATE_AVERAGE] = np.mean([preds[split][m] for m in modalities], axis=0)
    joint = CONCATENATION if len(modalities) > 1 else modalities[0]
    record = {"joint": joint, "modalities": modalities, "chosen_alpha": chosen,
              "pearson_mean": {split: ({name: score(p, targets[split]) for name, p in preds[split].items()}
                                       if targets.get(split) is not None else None) for split in preds},
              "seconds": time.perf_counter() - started}
    return record, {split: preds[split][joint] for split in preds}


def compared(record: dict, network: dict) -> dict:
    """The record with the network's test mean Pearson minus the joint peer's (``network``: the run's results), and
    whether the network is below its peer."""
    test = record["pearson_mean"]["test"]
    if test is None or not network["test"].get("scored"):
        return record
    difference = network["test"]["pearson_mean"] - test[record["joint"]]
    return {**record, "network_minus_peer": difference, "below_peer": difference < -BELOW_MARGIN}


def peer_lines(record: dict) -> list[str]:
    """What `emofuse train` prints of the peer: its test mean Pearson, the network's minus it, and a warning when the
    network is below its peer."""
    test = record["pearson_mean"]["test"]
    if test is None:
        return [f"linear peer (ridge, {record['joint']}): validation mean Pearson "
                f"{record['pearson_mean']['val'][record['joint']]:.4f}; test not scored"]
    lines = [f"linear peer (ridge, {record['joint']}): test mean Pearson {test[record['joint']]:.4f}"
             + (f"; network - peer: {record['network_minus_peer']:+.4f}" if "network_minus_peer" in record else "")]
    if record.get("below_peer"):
        lines.append(f"warning: the network is {-record['network_minus_peer']:.4f} mean Pearson below its linear peer, "
                     "a ridge regression on the same inputs")
    return lines


def pooled_comparison(network: pd.DataFrame, peer: pd.DataFrame, targets: list[str], seed: int = 0) -> dict:
    """Folds pooled (``network`` and ``peer``: one row per test clip with ``actor``, the targets and ``pred_<target>``,
    rows aligned): each one's mean Pearson over the pooled clips, and the network's minus the peer's with a percentile
    cluster-bootstrap interval over test speakers (speakers resampled with all their clips)."""
    y, actors = network[targets].to_numpy(), network["actor"].to_numpy()
    columns = [f"pred_{t}" for t in targets]
    net, lin = network[columns].to_numpy(), peer[columns].to_numpy()
    speakers = np.unique(actors)
    rows_of = [np.flatnonzero(actors == s) for s in speakers]
    differences = []
    for draw in bootstrap_indices(len(speakers), RESAMPLES, seed):
        rows = np.concatenate([rows_of[i] for i in draw])
        differences.append(pearson(net[rows], y[rows]).mean() - pearson(lin[rows], y[rows]).mean())
    low, high = np.quantile(differences, [(1 - LEVEL) / 2, (1 + LEVEL) / 2])
    peer_score = float(pearson(lin, y).mean())
    difference = float(pearson(net, y).mean()) - peer_score
    return {"peer_pooled_test_pearson_mean": peer_score, "network_minus_peer": difference,
            "ci_low": float(low), "ci_high": float(high), "level": LEVEL, "n_speakers": len(speakers),
            "interval": "cluster bootstrap over test speakers", "below_peer": difference < -BELOW_MARGIN}

