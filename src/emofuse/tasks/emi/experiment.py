"""One EMI regression run on a feature directory: train on ``train``, select on ``val``, predict ``test``.

The run directory holds what the classification runs hold (resolved config, versions, data
fingerprint, log, per-epoch history, selected weights, resume checkpoint) plus the feature
standardisation fitted on the training rows, so that ``evaluate_run`` scores new data exactly as
the run saw its own.
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from emofuse.core.threads import thread_budget
from emofuse.config.loading import dump_config
from emofuse.core.atomic import atomic_torch_save, atomic_write
from emofuse.core.errors import DataError
from emofuse.tasks.emi.feature_dir import FeatureDirData, load_feature_dir
from emofuse.tasks.emi.config import EmiConfig, load_emi_config
from emofuse.metrics.regression import RegressionEvaluator, pearson, predict
from emofuse.datasets.normalize import Standardizer, select_rows
from emofuse.tasks.emi.loss import EmiLoss
from emofuse.tasks.emi.model import EmiRegressor, adaptive_avg_pool_time
from emofuse.tasks.emi.peer import compared, peer_lines, ridge_peer
from emofuse.core.runs import atomic_write_text, logging_to, record_fingerprint, start_run, write_json
from emofuse.training.batches import TensorData
from emofuse.training.seeding import seed_everything
from emofuse.training.trainer import Trainer, resolve_device

log = logging.getLogger(__name__)


def fit_standardizers(data: FeatureDirData) -> dict[str, Standardizer]:
    return {m: Standardizer().fit(select_rows(values, data.rows("train"))) for m, values in data.features.items()}


def save_standardizers(scalers: dict[str, Standardizer], path: Path) -> None:
    arrays = {f"{m}/{k}": getattr(s, k) for m, s in scalers.items() for k in ("mean", "std")}
    atomic_write(path, lambda f: np.savez(f, **arrays))


def load_standardizers(path: Path) -> dict[str, Standardizer]:
    scalers: dict[str, Standardizer] = {}
    with np.load(path) as arrays:
        for key in arrays.files:
            m, k = key.rsplit("/", 1)
            setattr(scalers.setdefault(m, Standardizer()), k, arrays[key])
    return scalers


def tensor_data(config: EmiConfig, data: FeatureDirData, split: str, scalers: dict[str, Standardizer] | None) -> TensorData:
    """One split as model input: standardised, and sequences longer than ``model.seq_len`` pooled to it.

    Pooling here only bounds memory: the model pools every row to ``seq_len`` steps anyway, and
    adaptive pooling of an already ``seq_len``-step row to ``seq_len`` steps is the identity.
    """
    rows = data.rows(split)
    steps = config.model.seq_len
    features = {}
    for m, values in data.features.items():
        seqs = select_rows(values, rows)
        if scalers is not None:
            seqs = scalers[m].transform(seqs)
        features[m] = [
            adaptive_avg_pool_time(torch.from_numpy(s)[None], None, steps)[0].numpy() if len(s) > steps else s
            for s in seqs
        ]
    target = np.concatenate([data.targets[rows], data.extra[rows]], axis=1).astype(np.float32)
    return TensorData(features, target)


def score(pred: np.ndarray, data: FeatureDirData, split: str) -> dict:
    """``pearson_mean`` and per-target ``pearson`` over the whole split, or no score when it has no targets."""
    rows = data.rows(split)
    if not data.has_targets(split):
        return {"n": len(rows), "scored": False, "note": "no targets for this split in labels.csv: predictions only"}
    r = pearson(pred, data.targets[rows])
    return {"n": len(rows), "scored": True, "pearson_mean": float(r.mean()),
            "pearson": {t: float(v) for t, v in zip(data.target_names, r)}}


def predictions_table(data: FeatureDirData, split: str, pred: np.ndarray) -> pd.DataFrame:
    table = pd.DataFrame({"id": [data.ids[i] for i in data.rows(split)]})
    for k, name in enumerate(data.target_names):
        table[name] = pred[:, k]
    return table


def run_emi(config: EmiConfig, data_dir: Path, run_dir: Path, epoch_callbacks=None) -> dict:
    """Train (or resume, or read back a finished run) and write results.json; returns its content."""
    run_dir = Path(run_dir)
    with logging_to(run_dir), thread_budget(parallel=False):  # a few linear layers per step (core/threads.py)
        return _run(config, Path(data_dir), run_dir, epoch_callbacks)


def _run(config: EmiConfig, data_dir: Path, run_dir: Path, epoch_callbacks) -> dict:
    started = time.perf_counter()
    start_run(run_dir, dump_config(config))
    log.info("run %s: config %s, data %s", run_dir, config.name, data_dir)

    data = load_feature_dir(data_dir, config.data.modalities, config.data.targets, config.extra_columns)
    fingerprint = {
        "sha256": data.fingerprint, "data_dir": str(data_dir), "feature_dims": data.dims,
        "n": {s: int(len(data.rows(s))) for s in ("train", "val", "test")},
        "max_length": {m: max(len(a) for a in v) for m, v in data.features.items()},
    }
    record_fingerprint(run_dir, fingerprint)
    done = run_dir / "results.json"
    if done.is_file():
        log.info("%s is finished; reading it back", run_dir)
        return json.loads(done.read_text())
    log.info("data: %s rows, feature dims %s", fingerprint["n"], data.dims)

    seed_everything(config.seed)
    scalers = fit_standardizers(data) if config.data.standardize else None
    if scalers is not None:
        save_standardizers(scalers, run_dir / "standardizer.npz")
    train, val = (tensor_data(config, data, s, scalers) for s in ("train", "val"))
    model = EmiRegressor(config.model, data.dims, len(config.data.targets))
    loss = EmiLoss(config.loss, len(config.data.targets))
    trainer = Trainer(config.train, RegressionEvaluator(config.data.targets), run_dir, seed=config.seed,
                      epoch_callbacks=epoch_callbacks)
    fit = trainer.fit(model, loss, train, val)
    model.load_state_dict(fit.best_state)
    atomic_torch_save(run_dir / "best.pt", fit.best_state)
    atomic_write_text(run_dir / "history.csv", pd.DataFrame(fit.history).to_csv(index=False))

    results = {"name": config.name, "description": config.description}
    for split in ("val", "test"):
        has_rows = len(data.rows(split)) > 0
        pred = predict(model, tensor_data(config, data, split, scalers)) if has_rows else np.zeros((0, len(data.target_names)))
        atomic_write_text(run_dir / f"{split}_predictions.csv", predictions_table(data, split, pred).to_csv(index=False))
        results[split] = score(pred, data, split)
    if config.linear_peer and data.has_targets("val") and len(data.rows("test")):
        parts = {"train": train, "val": val, "test": tensor_data(config, data, "test", scalers)}
        targets = {s: data.targets[data.rows(s)] if data.has_targets(s) else None for s in parts}
        record, peer_pred = ridge_peer(parts, targets)
        atomic_write_text(run_dir / "test_peer_predictions.csv", predictions_table(data, "test", peer_pred["test"]).to_csv(index=False))
        results["linear_peer"] = compared(record, results)
        for line in peer_lines(results["linear_peer"]):
            (log.warning if line.startswith("warning") else log.info)("%s", line)
    results.update({
        "best_epoch": fit.best_epoch, "epochs_run": fit.epochs_run, "steps_per_epoch": fit.steps_per_epoch,
        "val_at_best": fit.best_metrics,
        "feature_dims": data.dims, "data_fingerprint": data.fingerprint, "seconds": time.perf_counter() - started,
        "config": config.model_dump(mode="json"),
    })
    log.info("%s: val pearson_mean %.4f, test %s (best epoch %d of %d)", config.name, results["val"]["pearson_mean"],
             f"{results['test']['pearson_mean']:.4f}" if results["test"]["scored"] else "not scored",
             fit.best_epoch, fit.epochs_run)
    write_json(done, results)  # written last: its presence marks the run finished
    return results


def evaluate_run(run_dir: Path, data_dir: Path, split: str = "test", out_dir: Path | None = None) -> dict:
    """Predict (and score, where it has targets) one split of a feature directory with a finished run's model."""
    run_dir = Path(run_dir)
    for name in ("config.yaml", "best.pt", "data_fingerprint.json"):
        if not (run_dir / name).is_file():
            raise DataError(run_dir / name, "missing: not a finished `emofuse train` run directory")
    config = load_emi_config(run_dir / "config.yaml")
    trained = json.loads((run_dir / "data_fingerprint.json").read_text())
    data = load_feature_dir(data_dir, config.data.modalities, config.data.targets, splits=(split,), required=(split,))
    for m, d in data.dims.items():
        if d != trained["feature_dims"][m]:
            raise DataError(Path(data_dir) / m, f"feature dimension {d}, but the model was trained on {trained['feature_dims'][m]}")
    scalers = load_standardizers(run_dir / "standardizer.npz") if config.data.standardize else None
    model = EmiRegressor(config.model, data.dims, len(config.data.targets))
    model.load_state_dict(torch.load(run_dir / "best.pt", map_location="cpu"))
    model.to(resolve_device(config.train.device))
    pred = predict(model, tensor_data(config, data, split, scalers))
    out_dir = Path(out_dir) if out_dir else run_dir / "evaluation"
    atomic_write_text(out_dir / f"{split}_predictions.csv", predictions_table(data, split, pred).to_csv(index=False))
    result = {"run": str(run_dir), "data_dir": str(data_dir), "split": split, **score(pred, data, split),
              "data_fingerprint": data.fingerprint}
    write_json(out_dir / f"{split}.json", result)
    return result
