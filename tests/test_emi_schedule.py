"""The EMA warm-up, rates given in passes over the training rows, epochs of several passes (min_epoch_steps) and
early stopping that waits for the EMA; resume stays exact with all of them."""

import logging

import numpy as np
import pandas as pd
import pytest
import torch
from torch import nn

from emofuse.config.schema import Passes
from emofuse.tasks.emi.fixture import write_emi_fixture
from emofuse.tasks.emi.config import EmiTrainConfig, load_emi_config
from emofuse.tasks.emi.experiment import run_emi
from emofuse.metrics.regression import RegressionEvaluator
from emofuse.tasks.emi.loss import EmiLoss, EmiLossConfig
from emofuse.tasks.emi.model import EmiModelConfig, EmiRegressor
from emofuse.core.registry import ConfigError
from emofuse.training.batches import TensorData
from emofuse.training.ema import ema_decay, ema_horizon
from emofuse.training.timescales import resolve_ema_decay, resolve_weight_decay
from emofuse.training.trainer import Trainer

from conftest import REPO


def test_ema_decay_warms_up_to_the_configured_decay():
    assert [ema_decay(0.999, n, warmup=True) for n in (1, 2, 3)] == [1 / 2, 2 / 3, 3 / 4]  # the running mean
    assert ema_decay(0.999, 998, warmup=True) < 0.999 == ema_decay(0.999, 999, warmup=True) == ema_decay(0.999, 10**6, True)
    assert ema_decay(0.999, 1, warmup=False) == 0.999
    assert ema_horizon(0.999, 400, warmup=True) == pytest.approx(401.0)  # every update so far
    assert ema_horizon(0.999, 10**6, warmup=True) == pytest.approx(1000.0)


def test_rates_in_passes_span_the_same_share_of_the_data_at_every_size():
    four, twenty = Passes(passes=4), Passes(passes=20)
    assert resolve_ema_decay(four, 252) == pytest.approx(0.999, abs=1e-5)  # Hume-Vidmimic2's 8,072 clips, batch 32
    assert resolve_ema_decay(four, 15) == pytest.approx(1 - 1 / 60)  # 500 clips: the average spans 60 steps
    assert ema_horizon(resolve_ema_decay(four, 15), 10**6, warmup=True) == pytest.approx(4 * 15)
    assert resolve_weight_decay(twenty, 3e-4, 252) == pytest.approx(1 / (3e-4 * 20 * 252))
    assert resolve_weight_decay(twenty, 3e-4, 15) == pytest.approx(resolve_weight_decay(twenty, 3e-4, 252) * 252 / 15)
    assert (resolve_ema_decay(0.99, 15), resolve_ema_decay(None, 15), resolve_weight_decay(0.01, 3e-4, 15)) == (0.99, None, 0.01)
    with pytest.raises(ConfigError, match="spans 0.5 optimiser steps"):
        resolve_ema_decay(Passes(passes=0.5), 1)  # fewer rows than a batch: one step per pass


@pytest.mark.parametrize("override, message", [
    ("train.weight_decay={passes: 0}", "train.weight_decay"), ("train.ema_decay={pases: 4}", "pases"),
    ("train.ema_decay=1.5", "train.ema_decay"),
])
def test_rates_in_passes_are_validated(override, message):
    with pytest.raises(ConfigError, match=message):
        load_emi_config(REPO / "configs" / "emi_hume.yaml", [override])


def tiny_data(n=40, seed=0):
    rng = np.random.default_rng(seed)
    return TensorData({"audio": [rng.standard_normal((6, 3)).astype(np.float32) for _ in range(n)]},
                      rng.random((n, 2)).astype(np.float32))


class RowsLoss(nn.Module):
    """The recipe's loss, recording the rows of every training batch."""

    def __init__(self):
        super().__init__()
        self.inner = EmiLoss(EmiLossConfig(vad=0), 2)
        self.batches = []

    def forward(self, output, target, epoch):
        self.batches.append((epoch, target[:, 0].clone()))
        return self.inner(output, target, epoch)


def fit(config, evaluate, data=None):
    torch.manual_seed(0)
    data = data if data is not None else tiny_data()
    model = EmiRegressor(EmiModelConfig(seq_len=4, hidden=8, vad=False), {"audio": 3}, 2)
    loss = RowsLoss()
    return Trainer(config, evaluate).fit(model, loss, data, data), loss


def test_min_epoch_steps_makes_whole_passes_and_sizes_the_cosine_to_them():
    data = tiny_data(40)  # batch 8: 5 steps per pass
    config = EmiTrainConfig(epochs=3, batch_size=8, min_epoch_steps=12, early_stopping=None)
    result, loss = fit(config, lambda m, d: {"pearson_mean": 0.0, "accuracy": 0.0}, data)
    assert result.steps_per_epoch == 15  # 3 passes of 5 steps reach 12
    assert [e for e, _ in loss.batches] == [e for e in range(3) for _ in range(15)]
    for start in range(0, 45, 5):  # every pass shows each row once
        rows = torch.cat([t for _, t in loss.batches[start:start + 5]])
        assert len(set(rows.tolist())) == 40
    assert result.history[-1]["lr"] == pytest.approx(0.0, abs=1e-9)  # the cosine ends with the last step run
    plain, _ = fit(EmiTrainConfig(epochs=3, batch_size=8, min_epoch_steps=None, early_stopping=None),
                   lambda m, d: {"pearson_mean": 0.0, "accuracy": 0.0}, data)
    assert plain.steps_per_epoch == 5  # one pass per epoch, as for every classification config


@pytest.mark.parametrize("decay, warmup, ema_start, min_epochs, epochs_run", [
    (None, False, 0, 0, 2), (0.95, False, 0, 0, 5), (0.95, True, 0, 0, 5), (0.5, True, 0, 0, 2),
    (0.95, False, 3, 0, 2),  # the EMA not yet evaluated (raw weights until ema_start_epoch): nothing to wait for
    (0.5, True, 0, 7, 7), (0.95, True, 0, 3, 5),  # the budget's minimum epochs and the EMA's wait: the later one
    ({"passes": 1.5}, False, 0, 0, 3),  # 1.5 passes of 5 steps: an EMA over 7.5 steps
])
def test_early_stopping_waits_one_ema_horizon_after_the_best_epoch(decay, warmup, ema_start, min_epochs, epochs_run):
    scores = iter([0.9] + [0.5] * 30)  # best at epoch 0, worse ever after
    config = EmiTrainConfig(epochs=30, batch_size=8, ema_decay=decay, ema_warmup=warmup, ema_start_epoch=ema_start,
                            early_stopping={"monitor": "pearson_mean", "patience": 1, "min_epochs": min_epochs})
    result, _ = fit(config, lambda m, d: {"pearson_mean": next(scores)})
    # 5 steps per epoch. Without EMA: stop after `patience` bad epochs. EMA 0.95 spans 20 steps (warmed up: all n
    # updates so far, at most 20): the stop waits until they lie behind the best epoch (epoch 4). EMA 0.5 spans 2 steps.
    assert result.best_epoch == 0 and result.epochs_run == epochs_run
    assert result.budget["min_epochs"] == max(min_epochs, 1) and result.budget["stop_reason"] == "patience"


def test_the_trainer_optimises_with_the_resolved_rates(caplog):
    config = EmiTrainConfig(epochs=1, batch_size=8, lr=1e-3, weight_decay={"passes": 50}, ema_decay={"passes": 2},
                            early_stopping=None)
    with caplog.at_level(logging.INFO, logger="emofuse.training.trainer"):
        fit(config, lambda m, d: {"pearson_mean": 0.0, "accuracy": 0.0})
    # 40 rows, batch 8: 5 steps per pass; 1 / (1e-3 * 50 * 5) = 4; 1 - 1 / (2 * 5) = 0.9
    assert "5 optimiser steps per pass over the training rows; weight decay 4, EMA decay 0.90000" in caplog.text


class Interrupt(Exception):
    pass


def test_emi_resume_is_exact_with_warmup_and_several_passes_per_epoch(tmp_path):
    data = write_emi_fixture(tmp_path / "data", n_train=48, n_val=24, n_test=8)
    config = load_emi_config(REPO / "configs" / "emi_hume.yaml",
                             ["train.epochs=4", "train.batch_size=16", "train.min_epoch_steps=7", "model.hidden=16"])
    assert config.train.ema_warmup
    whole = run_emi(config, data, tmp_path / "whole")

    def stop_after_epoch_1(epoch, record):
        if epoch == 1:
            raise Interrupt

    with pytest.raises(Interrupt):
        run_emi(config, data, tmp_path / "cut", epoch_callbacks=[stop_after_epoch_1])
    resumed = run_emi(config, data, tmp_path / "cut")
    assert whole["steps_per_epoch"] == 9 and resumed["test"]["pearson_mean"] == whole["test"]["pearson_mean"]
    a, b = (torch.load(tmp_path / d / "best.pt") for d in ("whole", "cut"))
    assert all(torch.equal(a[k], b[k]) for k in a)
    history = [pd.read_csv(tmp_path / d / "history.csv").drop(columns="seconds") for d in ("whole", "cut")]
    pd.testing.assert_frame_equal(*history)


def test_without_early_stopping_the_regression_evaluator_selects_by_its_own_metric():
    """train.early_stopping: null with the real EMI evaluator (which reports no accuracy) selects by pearson_mean."""
    config = EmiTrainConfig(epochs=3, batch_size=8, early_stopping=None)
    result, _ = fit(config, RegressionEvaluator(["a", "b"]))
    assert result.epochs_run == 3 and "pearson_mean" in result.best_metrics
    scores = [h["val/pearson_mean"] for h in result.history]
    assert result.best_epoch == int(np.argmax(scores))
