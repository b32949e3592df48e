import numpy as np
import pytest
import torch
from sklearn.metrics import accuracy_score, f1_score

from emofuse.config.schema import ModelConfig
from emofuse.metrics.classification import Predictions, classification_metrics
from emofuse.models import ENCODERS, create_model
from emofuse.training.batches import TensorData


def test_cnn1d_ignores_padding():
    enc = ENCODERS.create("cnn1d", {"channels": [8, 8, 8], "kernel_size": 5, "first_stride": 2}, input_dim=6).eval()
    x = torch.randn(1, 37, 6)
    padded = torch.cat([x, torch.randn(1, 50, 6)], dim=1)
    a = enc(x, torch.tensor([37]))
    b = enc(padded, torch.tensor([37]))
    torch.testing.assert_close(a, b)


def test_average_fusion_is_the_mean_of_branch_probabilities():
    config = ModelConfig(encoders={"audio": {"name": "mlp"}, "visual": {"name": "mlp"}})
    model = create_model(config, {"audio": 5, "visual": 7}, {"audio": False, "visual": False}, n_classes=4).eval()
    out = model({"audio": torch.randn(3, 5), "visual": torch.randn(3, 7)})
    expected = (out.branch_logits["audio"].softmax(-1) + out.branch_logits["visual"].softmax(-1)) / 2
    torch.testing.assert_close(out.probs, expected)
    assert out.probs.shape == (3, 4)


def test_encoders_refuse_the_wrong_input_kind():
    with pytest.raises(ValueError, match="frame sequences"):
        ENCODERS.create("cnn1d", {}, input_dim=4, sequence=False)
    with pytest.raises(ValueError, match="clip-level"):
        ENCODERS.create("mlp", {}, input_dim=4, sequence=True)


def test_metrics_match_sklearn_over_the_whole_set():
    rng = np.random.default_rng(0)
    probs = rng.dirichlet(np.ones(8), size=300).astype(np.float32)
    target = rng.integers(0, 8, 300)
    m = classification_metrics(Predictions(probs, {"audio": probs[::-1].copy()}, target), 8)
    assert m["accuracy"] == pytest.approx(accuracy_score(target, probs.argmax(1)))
    assert m["macro_f1"] == pytest.approx(f1_score(target, probs.argmax(1), average="macro"), abs=1e-6)
    assert m["accuracy/audio"] == pytest.approx(accuracy_score(target, probs[::-1].argmax(1)))


def test_random_crop_keeps_windows_inside_the_sequence():
    seqs = [np.arange(n, dtype=np.float32)[:, None].repeat(2, 1) for n in (5, 40, 12)]
    data = TensorData({"audio": seqs}, np.array([0, 1, 2]))
    batch = data.batch(torch.arange(3), crop=10, generator=torch.Generator().manual_seed(0))
    assert batch.lengths["audio"].tolist() == [5, 10, 10]
    for i, n in enumerate((5, 10, 10)):
        window = batch.inputs["audio"][i, :n, 0]
        assert torch.equal(window, window[0] + torch.arange(n, dtype=torch.float32))  # contiguous frames
