"""train.speaker_adversary: a gradient-reversal speaker head per branch (Ganin & Lempitsky 2015)."""

import pandas as pd
import pytest
import torch

from emofuse.config.loading import load_config
from emofuse.config.schema import SpeakerAdversaryConfig
from emofuse.protocol.cross_validation import run_cross_validation
from emofuse.data.sample import sample_dir
from emofuse.training.speaker_adversary import GradientReversal, SpeakerAdversary, reversal_strength

from conftest import REPO


def test_the_reversal_is_the_identity_forward_and_minus_scale_backward():
    x = torch.randn(4, 3, requires_grad=True)
    y = GradientReversal.apply(x, 0.7)
    assert torch.equal(y, x)
    (y * torch.arange(3.0)).sum().backward()
    assert torch.allclose(x.grad, -0.7 * torch.arange(3.0).expand(4, 3))


def test_the_strength_ramps_from_zero_to_one():
    values = [reversal_strength(p / 10) for p in range(11)]
    assert values[0] == 0 and values[-1] == pytest.approx(1, abs=1e-4) and values == sorted(values)


def test_the_heads_learn_the_speaker_while_the_encoder_gradient_points_away():
    torch.manual_seed(0)
    adversary = SpeakerAdversary(SpeakerAdversaryConfig(weight=1.0, hidden=8), {"audio": 4}, n_speakers=2)
    speakers = torch.tensor([0, 1] * 16)
    h = (speakers[:, None].float() * 2 - 1) * torch.ones(32, 4)  # the embedding carries the speaker
    h.requires_grad_(True)
    loss, terms = adversary({"audio": h}, speakers, progress=1.0)
    loss.backward()
    head_only = SpeakerAdversary(SpeakerAdversaryConfig(weight=1.0, hidden=8), {"audio": 4}, n_speakers=2)
    head_only.load_state_dict(adversary.state_dict())
    plain = h.detach().clone().requires_grad_(True)
    torch.nn.functional.cross_entropy(head_only.heads["audio"](plain), speakers).backward()
    assert torch.allclose(h.grad, -reversal_strength(1.0) * plain.grad, atol=1e-6)  # the encoder is pushed the other way
    assert set(terms) == {"speaker_ce/audio", "speaker_acc/audio"}


@pytest.mark.slow
def test_a_cv_run_with_the_adversary_logs_its_speaker_terms(tmp_path):
    config = load_config(REPO / "configs" / "ravdess_mars_adversary.yaml", [
        "protocol.n_folds=2", "train.epochs=3", "train.early_stopping.min_epochs=0", "loss.params.switch_epoch=1",
        "features.workers=1", "features.adapt_clips=5"])
    result = run_cross_validation(config, sample_dir(), tmp_path / "run", tmp_path / "cache", progress=False)
    history = pd.read_csv(tmp_path / "run" / "folds" / "fold_1" / "history.csv")
    assert {"train/speaker_acc/audio", "train/speaker_ce/visual"} <= set(history.columns)
    again = run_cross_validation(config, sample_dir(), tmp_path / "again", tmp_path / "cache", progress=False)
    assert again["pooled_accuracy"] == result["pooled_accuracy"]  # the seed fixes the run, adversary included
