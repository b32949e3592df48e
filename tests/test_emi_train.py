"""`emofuse train` / `evaluate` on the synthetic Hume-Vidmimic2-shaped directory, and the trainer's EMA."""

import json

import numpy as np
import pandas as pd
import pytest
import torch
from torch import nn

from emofuse.cli import main
from emofuse.tasks.emi.fixture import HUME_TARGETS, write_emi_fixture
from emofuse.tasks.emi.feature_dir import load_feature_dir
from emofuse.tasks.emi.config import EmiTrainConfig
from emofuse.tasks.emi.loss import EmiLoss, EmiLossConfig
from emofuse.tasks.emi.model import EmiModelConfig, EmiRegressor
from emofuse.training.batches import TensorData
from emofuse.training.trainer import Trainer

from conftest import REPO

HUME = str(REPO / "configs" / "emi_hume.yaml")
TARGETS = list(HUME_TARGETS)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """One full-recipe run on the default fixture (12 epochs; EMA 0.99 suits its 7 steps per epoch).

    One thread: as fast for a model this small, and several times faster when other work shares the cores.
    """
    root = tmp_path_factory.mktemp("emi")
    data = write_emi_fixture(root / "data")
    out = root / "run"
    argv = ["train", HUME, "--data", str(data), "--out", str(out), "--set", "train.epochs=12", "--set", "train.ema_decay=0.99"]
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        assert main(argv) == 0
    finally:
        torch.set_num_threads(threads)
    return data, out


@pytest.mark.slow
def test_full_recipe_recovers_the_planted_signal(trained):
    _, out = trained
    results = json.loads((out / "results.json").read_text())
    # Pearson of an unrelated predictor on 80 rows: about 0 +- 0.05 for the mean over 6 targets;
    # the fixture's ceiling is about 0.8 and a linear ridge on all three modalities reaches about 0.7.
    assert results["test"]["pearson_mean"] > 0.5
    assert results["val"]["pearson_mean"] > 0.5


def test_train_output_contract(trained):
    data, out = trained
    results = json.loads((out / "results.json").read_text())
    labels = pd.read_csv(data / "labels.csv", dtype={"id": str})
    for split in ("val", "test"):
        entry = results[split]
        assert entry["scored"] and set(entry["pearson"]) == set(TARGETS)
        assert entry["pearson_mean"] == pytest.approx(np.mean(list(entry["pearson"].values())))
    predictions = pd.read_csv(out / "test_predictions.csv", dtype={"id": str})
    assert list(predictions.columns) == ["id", *TARGETS]
    assert predictions["id"].tolist() == labels.loc[labels.split == "test", "id"].tolist()
    truth = labels.set_index("id").loc[predictions["id"], TARGETS].to_numpy()
    from scipy.stats import pearsonr

    assert results["test"]["pearson"]["Joy"] == pytest.approx(pearsonr(predictions["Joy"], truth[:, 5]).statistic, abs=1e-6)
    for name in ("config.yaml", "versions.json", "data_fingerprint.json", "log.txt", "history.csv", "best.pt", "last.pt"):
        assert (out / name).is_file(), name
    assert json.loads((out / "data_fingerprint.json").read_text())["feature_dims"] == {"visual": 32, "audio": 24, "text": 48}
    history = pd.read_csv(out / "history.csv")
    assert len(history) == results["epochs_run"]
    for term in ("loss", "mse", "pearson", "aux", "vad"):  # every loss term is logged per epoch
        assert history[f"train/{term}"].notna().all()
    assert {"val/pearson_mean", "val/pearson/Joy"} <= set(history.columns)


def test_evaluate_reproduces_the_run_and_writes_predictions(trained, tmp_path):
    data, out = trained
    assert main(["evaluate", str(out), "--data", str(data), "--split", "test", "--out", str(tmp_path)]) == 0
    again = json.loads((tmp_path / "test.json").read_text())
    assert again["pearson_mean"] == pytest.approx(json.loads((out / "results.json").read_text())["test"]["pearson_mean"], abs=1e-6)
    assert len(pd.read_csv(tmp_path / "test_predictions.csv")) == 80


def test_blank_test_targets_give_predictions_without_a_score(tmp_path):
    data = write_emi_fixture(tmp_path / "data", n_train=64, n_val=32, n_test=16, blank_test_targets=True, fmt="npz")
    out = tmp_path / "run"
    assert main(["train", HUME, "--data", str(data), "--out", str(out), "--set", "train.epochs=1",
                 "--set", "loss.pearson=0", "--set", "model.hidden=32"]) == 0
    results = json.loads((out / "results.json").read_text())
    assert "pearson_mean" not in results["test"] and not results["test"]["scored"] and results["val"]["scored"]
    predictions = pd.read_csv(out / "test_predictions.csv")
    assert list(predictions.columns) == ["id", *TARGETS] and len(predictions) == 16
    assert predictions[TARGETS].notna().all().all()
    history = pd.read_csv(out / "history.csv")
    assert "train/pearson" not in history.columns and "train/mse" in history.columns  # a term switched off


def test_npz_and_npy_layouts_hold_the_same_data(tmp_path):
    a = load_feature_dir(write_emi_fixture(tmp_path / "a", 8, 4, 4, fmt="npy"), ["visual", "audio", "text"], TARGETS)
    b = load_feature_dir(write_emi_fixture(tmp_path / "b", 8, 4, 4, fmt="npz"), ["visual", "audio", "text"], TARGETS)
    assert a.fingerprint == b.fingerprint and a.dims == b.dims
    assert [len(x) for x in a.features["audio"]] == [len(x) for x in b.features["audio"]]
    assert len({len(x) for x in a.features["audio"]}) > 1  # variable lengths


class SnapshotLoss(nn.Module):
    """The recipe's loss, recording the raw weights each training step starts from."""

    def __init__(self, model):
        super().__init__()
        self.inner = EmiLoss(EmiLossConfig(), 2)
        self.model = [model]  # a list, so the model is not registered as a sub-module
        self.snapshots = []

    def forward(self, output, target, epoch):
        self.snapshots.append((epoch, {k: v.detach().clone() for k, v in self.model[0].state_dict().items()}))
        return self.inner(output, target, epoch)


@pytest.mark.parametrize("decay, warmup", [(0.8, False), (0.8, True)])
def test_ema_weights_follow_a_hand_update_and_are_what_is_evaluated(decay, warmup):
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    data = TensorData({"audio": [rng.standard_normal((6, 3)).astype(np.float32) for _ in range(40)]},
                      rng.random((40, 2)).astype(np.float32))
    model = EmiRegressor(EmiModelConfig(seq_len=4, hidden=8), {"audio": 3}, 2)
    loss = SnapshotLoss(model)
    evaluated = []

    def evaluate(eval_model, _data):
        evaluated.append({k: v.detach().clone() for k, v in eval_model.state_dict().items()})
        return {"pearson_mean": float(len(evaluated))}  # always improving: the last epoch is selected

    config = EmiTrainConfig(epochs=3, batch_size=8, lr=1e-2, ema_decay=decay, ema_start_epoch=1, ema_warmup=warmup,
                            min_epoch_steps=None)
    fit = Trainer(config, evaluate).fit(model, loss, data, data)

    steps = loss.snapshots
    after = [steps[i + 1][1] for i in range(len(steps) - 1)] + [model.state_dict()]  # weights after each step
    hand, per_epoch, n = None, {}, 0
    for (epoch, _), weights in zip(steps, after):
        if epoch >= 1:  # ema_start_epoch: the first update copies the weights, later ones blend
            d = min(decay, n / (n + 1)) if warmup else decay  # warmed up: 1/2, 2/3, 3/4, then 0.8
            hand = dict(weights) if hand is None else {k: d * hand[k] + (1 - d) * weights[k] for k in hand}
            n += 1
        per_epoch[epoch] = hand if hand is not None else weights
    assert fit.best_epoch == 2 and len(steps) == 15
    for k in fit.best_state:
        torch.testing.assert_close(fit.best_state[k], hand[k], rtol=1e-5, atol=1e-6)
    for epoch in range(3):  # epoch 0 evaluates the raw weights, later epochs the EMA weights
        for k in evaluated[epoch]:
            torch.testing.assert_close(evaluated[epoch][k], per_epoch[epoch][k], rtol=1e-5, atol=1e-6)
    assert not torch.allclose(fit.best_state["head.3.weight"], model.state_dict()["head.3.weight"])


def test_the_run_records_its_ridge_peer(trained):
    """Ridge regressions on the same inputs beside the network: per modality, concatenated, late average."""
    data, out = trained
    results = json.loads((out / "results.json").read_text())
    peer = results["linear_peer"]
    assert peer["joint"] == "concatenation" and set(peer["chosen_alpha"]) == {*peer["modalities"], "concatenation"}
    test = peer["pearson_mean"]["test"]
    assert set(test) == {*peer["modalities"], "concatenation", "late_average"}
    assert test["concatenation"] > 0.5  # the fixture's signal is linear in the clip means
    assert peer["network_minus_peer"] == pytest.approx(results["test"]["pearson_mean"] - test["concatenation"])
    predictions = pd.read_csv(out / "test_peer_predictions.csv", dtype={"id": str})
    labels = pd.read_csv(data / "labels.csv", dtype={"id": str})
    assert sorted(predictions["id"]) == sorted(labels.loc[labels["split"] == "test", "id"])


def test_a_ridge_peer_on_a_linear_signal_is_near_perfect():
    from emofuse.tasks.emi.peer import ridge_peer

    rng = np.random.default_rng(0)
    weights = rng.normal(size=(4, 2))

    def part(n):
        frames = [rng.normal(size=(int(rng.integers(3, 9)), 4)) + rng.normal(size=4) for _ in range(n)]
        y = np.stack([f.mean(0) for f in frames]) @ weights
        return TensorData({"audio": frames, "face": rng.normal(size=(n, 3))}, y), y

    (train, y_train), (val, y_val), (test, y_test) = part(200), part(50), part(50)
    record, predictions = ridge_peer({"train": train, "val": val, "test": test}, {"train": y_train, "val": y_val, "test": y_test})
    assert record["pearson_mean"]["test"]["audio"] > 0.99 and record["pearson_mean"]["test"]["concatenation"] > 0.99
    assert record["pearson_mean"]["test"]["face"] < 0.5  # noise
    assert predictions["test"].shape == (50, 2)
