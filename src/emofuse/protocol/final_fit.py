"""One model trained on every speaker of a corpus, for deployment (``emofuse fit``).

Cross-validation estimates how a recipe does on new speakers; the model a user runs should then learn from every
speaker. With no speaker left to select an epoch on, the epoch comes from a finished cross-validation of the same
config: the median over folds of the selected epoch (the same schedule is run up to it, and its weights kept), or
it is given; a config with ``selection`` fits the candidate most of that cross-validation's folds chose, at its
epochs. Its temperatures (``protocol.calibrate``) are the median of that cross-validation's folds' (none with a given
epoch; protocol/calibration.py).
Speaker statistics (the typical training speaker, the enrolment estimator) come from every speaker;
the estimator choice under ``enrolment: auto`` is label-free.

The output reads like a cv run with one member, ``folds/fold_0`` (trained on every speaker), so `emofuse predict`,
`serve`, `export` and :func:`emofuse.inference.predict.Predictor` load it unchanged. ``result.json`` records the epoch, where
it came from and the run whose figures estimate the model.
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path

import numpy as np
import pandas as pd

from emofuse.core.threads import thread_budget
from emofuse.models.encoders import compute_bound
from emofuse.config.loading import dump_config, load_run_config, recorded_config
from emofuse.config.schema import ExperimentConfig, candidate_config
from emofuse.metrics.calibration import CALIBRATION_FILE
from emofuse.protocol.calibration import cv_temperatures
from emofuse.protocol.augment import training_copies
from emofuse.protocol.cross_validation import data_record, fold_standardizers, prepare_inputs, train_fold
from emofuse.protocol.folds import Fold
from emofuse.features.cache import FeatureCache
from emofuse.datasets.build import build_features
from emofuse.core.registry import ConfigError
from emofuse.core.atomic import atomic_torch_save
from emofuse.core.runs import atomic_write_text, logging_to, record_fingerprint, start_run, write_json

log = logging.getLogger(__name__)


def _trained_alike(config: ExperimentConfig) -> ExperimentConfig:
    """The config less what only reports beside the network (its linear peer, its calibration): a cross-validation
    that differs in those alone selected its epochs as this config would."""
    return config.model_copy(update={"protocol": config.protocol.model_copy(update={"linear_peer": True,
                                                                                     "calibrate": False})})


def epoch_from_cv(cv_run: Path, config: ExperimentConfig) -> tuple[int, list[int]]:
    """The median (rounded down) of the epochs the folds of ``cv_run`` selected; its config must be ``config``."""
    cv_run = Path(cv_run)
    results = cv_run / "results.json"
    if not results.is_file():
        raise ConfigError(f"{cv_run}: no results.json; --epochs-from needs a finished `emofuse cv` run of this config")
    if dump_config(_trained_alike(load_run_config(cv_run))) != dump_config(_trained_alike(config)):
        raise ConfigError(f"{cv_run} is a cross-validation of another config; its selected epochs say nothing of this one")
    selected = [int(f["best_epoch"]) for f in json.loads(results.read_text())["folds"]]
    return int(np.floor(np.median(selected))), selected


def deployed_choice(config: ExperimentConfig, cv_run: Path | None) -> tuple[ExperimentConfig, Path]:
    """A config with ``selection``: the candidate most of its cv run's folds chose (what predict deploys) and that
    candidate's own cv run, whose folds give the epoch."""
    if cv_run is None:
        raise ConfigError("a config with selection.candidates is fitted from its cv run (--epochs-from), which says "
                          "which candidate the folds chose")
    results = Path(cv_run) / "results.json"
    if not results.is_file():
        raise ConfigError(f"{cv_run}: no results.json; --epochs-from needs a finished `emofuse cv` run of this config")
    if dump_config(_trained_alike(load_run_config(cv_run))) != dump_config(_trained_alike(config)):
        raise ConfigError(f"{cv_run} is a cross-validation of another config; its choice says nothing of this one")
    chosen = json.loads(results.read_text())["deployed_candidate"]
    log.info("final fit of candidate %s, the one most folds of %s chose", chosen, cv_run)
    return candidate_config(config, chosen), Path(cv_run) / "candidates" / chosen


def fit_final(config: ExperimentConfig, data_dir: Path, out: Path, cache_dir: Path, epoch: int | None = None,
              cv_run: Path | None = None, progress: bool = True) -> dict:
    if (epoch is None) == (cv_run is None):
        raise ConfigError("a final fit needs its epoch: --epochs-from a cv run of the config, or --epoch N")
    if config.selection is not None:
        config, cv_run = deployed_choice(config, cv_run)
    selected = None
    if cv_run is not None:
        epoch, selected = epoch_from_cv(cv_run, config)
    out = Path(out)
    done = out / "folds" / "fold_0" / "result.json"
    if done.is_file() and (out / "config.yaml").read_text() == dump_config(config):
        log.info("%s: final fit already done", out)
        return json.loads(done.read_text())
    with logging_to(out), thread_budget(compute_bound(config.model.encoders)):
        started = time.perf_counter()
        start_run(out, dump_config(config), recorded_config)
        cache = FeatureCache(cache_dir)
        fs = build_features(config.data, config.features, data_dir, cache, progress)
        record_fingerprint(out, data_record(fs, data_dir))
        speakers = tuple(sorted(pd.unique(fs.meta["actor"])))
        fold = Fold(0, (), (), speakers)
        inputs = prepare_inputs(fs, config)
        fold_dir = out / "folds" / "fold_0"
        fold_dir.mkdir(parents=True, exist_ok=True)
        log.info("final fit on all %d speakers (%d clips), epochs 0..%d%s", len(speakers), len(fs.meta), epoch,
                 f" (median of the folds' selected epochs {selected} in {cv_run})" if selected else "")
        augment = training_copies(config, fs, data_dir, cache, progress)
        model, fit, data = train_fold(config, fs, inputs, fold, fold_dir, final_epoch=epoch, augment=augment)
        atomic_torch_save(fold_dir / "best.pt", fit.best_state)
        write_json(fold_dir / "standardizer.json", fold_standardizers(inputs, data.scalers, fold))
        atomic_write_text(fold_dir / "history.csv", pd.DataFrame(fit.history).to_csv(index=False))
        result = {
            "fold": 0, "final_fit": True, "train_actors": list(speakers), "test_actors": [], "val_actors": [],
            "n_train": len(data.train), "epoch": epoch, "epochs_run": fit.epochs_run,
            "epoch_from": {"cv_run": str(cv_run), "selected_epochs": selected} if selected else "given",
            "params": model.n_parameters(), "seconds": time.perf_counter() - started,
        }
        if inputs.normalized:
            result["enrolment_estimator"] = {m: {"name": e.name, **e.to_dict()}
                                             for m, e in inputs.fold_statistics(fold)[1].items()}
        temperatures = cv_temperatures(cv_run) if cv_run is not None and config.protocol.calibrate else None
        if temperatures is not None:
            write_json(fold_dir / CALIBRATION_FILE, temperatures.to_dict())
            result["calibration"] = {**temperatures.to_dict(), "from": f"median over the folds of {cv_run}"}
        write_json(fold_dir / "result.json", result)  # written last: its presence marks the model done
        (fold_dir / "last.pt").unlink(missing_ok=True)  # the resume point of an unfinished fit; the weights are best.pt
    return result
