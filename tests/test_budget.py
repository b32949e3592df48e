"""The training budget: staged losses are not stopped before their last stage had a full patience window, runs
record their schedule and why they stopped, and selection may be held to the last stage."""

import json

import numpy as np
import pandas as pd
import pytest

from emofuse.config.loading import config_from_dict
from emofuse.config.schema import EarlyStoppingConfig, ModelConfig, TrainConfig
from emofuse.protocol.cross_validation import run_cross_validation
from emofuse.losses import LOSSES
from emofuse.models import create_model
from emofuse.core.registry import ConfigError
from emofuse.training.batches import TensorData
from emofuse.training.budget import minimum_epochs, stage_start_epoch
from emofuse.training.trainer import Trainer

MODALITIES = ["audio", "visual"]


def test_minimum_epochs_rule():
    es = EarlyStoppingConfig(patience=10, min_epochs=15)
    assert minimum_epochs(es, 30, stage_start_epoch=10) == 20  # Mars, L = 10: L + patience
    assert minimum_epochs(es, 30, stage_start_epoch=0) == 15  # one stage: the configured minimum
    assert minimum_epochs(None, 30, stage_start_epoch=10) == 30  # no early stopping: the whole schedule
    assert LOSSES.create("mars", {"switch_epoch": 7}, modalities=MODALITIES).stage_start_epoch == 7
    assert LOSSES.create("cross_entropy", {}, modalities=MODALITIES).stage_start_epoch == 0
    assert LOSSES.create("focal", {}, modalities=MODALITIES).stage_start_epoch == 0


def fit_on_a_plateau(loss_name: str, loss_params: dict, epochs: int = 20, patience: int = 2, select_from_last_stage=False):
    """A real model and loss trained on random data, with a validation score that never improves after epoch 0, so
    early stopping ends the run as soon as its rule allows."""
    rng = np.random.default_rng(0)
    dims = {"audio": 6, "visual": 5}
    data = TensorData({m: rng.standard_normal((40, d)).astype(np.float32) for m, d in dims.items()}, rng.integers(0, 3, 40))
    mlp = {"name": "mlp", "params": {"hidden": [8]}}
    model = create_model(ModelConfig(encoders={m: mlp for m in dims}), dims, {m: False for m in dims}, n_classes=3)
    loss = LOSSES.create(loss_name, loss_params, modalities=MODALITIES)
    config = TrainConfig(epochs=epochs, batch_size=16, device="cpu", select_from_last_stage=select_from_last_stage,
                         early_stopping=EarlyStoppingConfig(patience=patience, min_epochs=0))
    return Trainer(config, lambda model, val: {"accuracy": 0.5}).fit(model, loss, data, data)


def test_a_staged_loss_is_not_stopped_before_its_last_stage_had_a_patience_window():
    ce = fit_on_a_plateau("cross_entropy", {})
    assert ce.epochs_run == 3  # epoch 0 is the best, epochs 1 and 2 exhaust the patience of 2
    mars = fit_on_a_plateau("mars", {"switch_epoch": 4})
    assert mars.epochs_run == 4 + 2  # L + patience
    assert mars.budget == {"schedule_epochs": 20, "min_epochs": 6, "stage_start_epoch": 4, "epochs_run": 6,
                           "stop_reason": "patience", "selection_from_epoch": 0, "best_epoch_in_last_stage": False}
    assert mars.best_epoch == 0
    whole = fit_on_a_plateau("mars", {"switch_epoch": 4}, epochs=5)
    assert whole.epochs_run == 5 and whole.budget["stop_reason"] == "budget_end"


def test_selection_can_be_held_to_the_last_stage():
    mars = fit_on_a_plateau("mars", {"switch_epoch": 4}, select_from_last_stage=True)
    assert mars.best_epoch == 4  # the first epoch of stage 2 (ties go to the first), never a stage-1 epoch
    assert mars.budget["selection_from_epoch"] == 4 and mars.budget["best_epoch_in_last_stage"]
    with pytest.raises(ConfigError, match="select_from_last_stage"):
        fit_on_a_plateau("mars", {"switch_epoch": 4}, epochs=4, select_from_last_stage=True)


def test_cross_validation_records_the_budget_of_each_fold(ravdess_fixture, tmp_path):
    config = config_from_dict({
        "name": "mars_budget", "seed": 0,
        "features": {"audio": {"name": "mfcc", "params": {"n_mfcc": 13, "deltas": False}}, "speaker_norm": True, "workers": 1},
        "model": {"encoders": {"audio": {"name": "cnn1d", "params": {"channels": [8], "kernel_size": 3}},
                               "visual": {"name": "mlp", "params": {"hidden": [16]}}}},
        "loss": {"name": "mars", "params": {"switch_epoch": 3}},
        "train": {"epochs": 9, "batch_size": 16, "early_stopping": {"patience": 2, "min_epochs": 0}},
        "protocol": {"n_folds": 3, "val_fraction": 0.25},
    })
    assert stage_start_epoch(config) == 3
    run = tmp_path / "run"
    summary = run_cross_validation(config, ravdess_fixture, run, tmp_path / "cache", progress=False)
    for fold in summary["folds"]:
        budget = fold["budget"]
        assert budget["epochs_run"] == fold["epochs_run"] >= 3 + 2
        assert budget["schedule_epochs"] == 9 and budget["min_epochs"] == 5 and budget["stage_start_epoch"] == 3
        assert budget["stop_reason"] == ("budget_end" if fold["epochs_run"] == 9 else "patience")
        assert budget["best_epoch_in_last_stage"] == (fold["best_epoch"] >= 3)
        history = pd.read_csv(run / "folds" / f"fold_{fold['fold']}" / "history.csv")
        assert len(history) == fold["epochs_run"]
    written = json.loads((run / "results.json").read_text())["budget"]
    assert written["schedule_epochs"] == 9 and written["min_epochs"] == 5
    assert written["epochs_run"] == [f["epochs_run"] for f in summary["folds"]]
    assert sum(written["stop_reasons"].values()) == written["n_folds"] == 3
