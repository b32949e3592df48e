"""The EMI metric: mean over targets of Pearson over the whole evaluation set (and the loss's batch Pearson)."""

import numpy as np
import pytest
import torch
from scipy.stats import pearsonr

from emofuse.metrics.regression import RegressionEvaluator, pearson
from emofuse.tasks.emi.loss import batch_pearson
from emofuse.tasks.emi.model import EmiOutput
from emofuse.training.batches import TensorData


class Echo(torch.nn.Module):
    """A 'model' whose prediction is its input: lets a test choose every prediction."""

    def __init__(self):
        super().__init__()
        self.unused = torch.nn.Linear(1, 1)

    def forward(self, inputs, lengths=None):
        return EmiOutput(pred=inputs["p"], aux={}, vad=None)


def random_predictions(n=500, k=6, seed=0):
    rng = np.random.default_rng(seed)
    target = rng.random((n, k))
    pred = 0.4 * target + rng.standard_normal((n, k)) * 0.3 + rng.random(k)  # correlated, per-column offsets
    return pred, target


def test_pearson_matches_scipy_per_target():
    pred, target = random_predictions()
    expected = [pearsonr(pred[:, k], target[:, k]).statistic for k in range(target.shape[1])]
    np.testing.assert_allclose(pearson(pred, target), expected, rtol=0, atol=1e-12)


def test_evaluator_scores_the_whole_set_not_a_mean_of_batches():
    pred, target = random_predictions(n=300)
    data = TensorData({"p": pred.astype(np.float32)}, target.astype(np.float32))
    names = [f"t{k}" for k in range(6)]
    metrics = RegressionEvaluator(names)(Echo(), data)
    expected = np.array([pearsonr(pred[:, k], target[:, k]).statistic for k in range(6)])
    assert metrics["pearson_mean"] == pytest.approx(expected.mean(), abs=1e-6)
    for k, name in enumerate(names):
        assert metrics[f"pearson/{name}"] == pytest.approx(expected[k], abs=1e-6)
    per_batch = np.mean([pearson(pred[i : i + 32], target[i : i + 32]).mean() for i in range(0, 300, 32)])
    assert abs(per_batch - metrics["pearson_mean"]) > 1e-3  # a mean of batch values is a different number


def test_constant_column_counts_as_zero(caplog):
    pred, target = random_predictions(n=50, k=3)
    pred[:, 1] = 0.5
    r = pearson(pred, target)
    assert r[1] == 0.0 and r[0] != 0.0 and "undefined" in caplog.text


def test_batch_pearson_matches_scipy_and_survives_a_constant_target():
    pred, target = random_predictions(n=32, k=4)
    target[:, 2] = 0.0  # e.g. an emotion absent from the whole batch
    p = torch.tensor(pred, requires_grad=True)
    r, defined = batch_pearson(p, torch.tensor(target))
    for k in (0, 1, 3):
        assert r[k].item() == pytest.approx(pearsonr(pred[:, k], target[:, k]).statistic, abs=1e-6)
    assert defined.tolist() == [True, True, False, True] and r[2].item() == 0.0
    r[defined].mean().backward()
    assert torch.isfinite(p.grad).all()
