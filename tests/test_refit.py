"""protocol.refit: the epoch is selected on the validation actors, then the fold is trained again on training and
validation actors up to that epoch, and those weights (with statistics of the same actors) are scored."""

import json

import numpy as np
import pandas as pd
import pytest
import torch

from emofuse.config.loading import load_config
from emofuse.data.sample import sample_dir
from emofuse.protocol.cross_validation import peer_fold, refit_fold, run_cross_validation
from emofuse.protocol.enrolment import SpeakerInputs
from emofuse.protocol.rescore import predictions_at_k
from emofuse.protocol.folds import Fold
from emofuse.config.schema import FeaturesConfig

from conftest import REPO
from test_speaker_adaptation import feature_set


def test_the_refit_fold_trains_on_validation_actors_and_tests_the_same():
    fold = Fold(2, test_actors=(5, 6), val_actors=(10, 3), train_actors=(1, 2, 4))
    refit = refit_fold(fold)
    assert refit.test_actors == (5, 6) and refit.val_actors == () and refit.train_actors == (1, 2, 3, 4, 10)
    refit.check_disjoint()


def test_a_refit_fold_has_its_own_typical_speaker():
    """Speaker statistics are cached per fold, not per fold number: the refit's typical speaker includes the
    validation actors it trains on."""
    fs = feature_set()
    inputs = SpeakerInputs(fs, FeaturesConfig(speaker_norm="inductive", adapt_clips=4, enrolment="mean"), seed=0)
    fold = Fold(1, test_actors=(1, 2), val_actors=(3,), train_actors=(4, 5, 6))
    selection, refit = inputs.fold_statistics(fold)[0]["audio"], inputs.fold_statistics(refit_fold(fold))[0]["audio"]
    assert not torch.allclose(torch.as_tensor(selection.mean), torch.as_tensor(refit.mean))


@pytest.mark.slow
def test_a_refit_run_scores_the_weights_trained_on_every_actor_outside_the_test_fold(tmp_path):
    config = load_config(REPO / "configs" / "ravdess_mars_egemaps.yaml", [
        "protocol.n_folds=2", "train.epochs=4", "train.early_stopping.min_epochs=0", "loss.params.switch_epoch=1",
        "features.workers=1", "features.speaker_norm=inductive", "features.adapt_clips=5", "protocol.refit=true"])
    out = tmp_path / "run"
    result = run_cross_validation(config, sample_dir(), out, tmp_path / "cache", progress=False)
    for fold in result["folds"]:
        fold_dir = out / "folds" / f"fold_{fold['fold']}"
        refit = fold["refit"]
        assert sorted(refit["train_actors"]) == sorted(fold["train_actors"] + fold["val_actors"])
        assert refit["epoch"] == fold["best_epoch"] and refit["n_train"] == 30 * len(refit["train_actors"])
        last = torch.load(fold_dir / "refit" / "last.pt", weights_only=False)
        assert last["epoch"] == fold["best_epoch"] and last["finished"]
        scored = torch.load(fold_dir / "best.pt", weights_only=False)
        assert all(torch.equal(scored[k], v) for k, v in last["model"].items())  # no EMA: the last refit epoch
        selected = torch.load(fold_dir / "last.pt", weights_only=False)["best_state"]
        assert not all(torch.equal(scored[k], v) for k, v in selected.items())
        state = json.loads((fold_dir / "standardizer.json").read_text())
        assert state["enrolment"].keys() == fold["enrolment_estimator"].keys()
        val = pd.read_csv(fold_dir / "val_predictions.csv")  # the selection model's, on actors the refit trained on
        assert set(val["actor"]) == set(fold["val_actors"])
    again = run_cross_validation(config, sample_dir(), out, tmp_path / "cache", progress=False)  # resumes: nothing to do
    assert again["pooled_accuracy"] == result["pooled_accuracy"]
    # rescored at the run's own k, the fold models see the test speakers as the run did (the refit's statistics)
    predictions = pd.read_csv(out / "predictions.csv", dtype={"clip": str})
    rescored = predictions_at_k(out, 5, sample_dir(), tmp_path / "cache").astype({"clip": str})
    names = [c[len("prob_"):] for c in predictions.columns if c.startswith("prob_")]
    rescored["pred"] = [names[i] for i in rescored["pred"]]
    assert rescored.set_index("clip")["pred"].to_dict() == predictions.set_index("clip")["pred"].to_dict()


@pytest.mark.parametrize("setting,draws", [("inductive", True), ("inductive", False), ("transductive", False)])
def test_augmented_copies_are_speaker_normalised_with_statistics_of_the_copies(setting, draws):
    """A copy that moves every clip of the training speakers by the same affine map (another microphone) trains on
    exactly the clean inputs: the speaker's statistics, their enrolment draw included, come from the epoch's copies."""
    fs = feature_set()
    inputs = SpeakerInputs(fs, FeaturesConfig(speaker_norm=setting, adapt_clips=4, enrolment="full", train_draws=draws),
                           seed=0)
    fold = Fold(1, test_actors=(1, 2), val_actors=(3,), train_actors=(4, 5, 6))
    train, _ = inputs.split(fold)[0]
    copy = {"audio": 3.0 * fs.features["audio"][train] - 7.0}
    drawn = inputs.training_values(fold, 2, copy)
    expected = inputs.training_draw(fold, 2)["audio"] if draws else inputs.own["audio"][train]
    np.testing.assert_allclose(drawn["audio"], expected, atol=1e-4)
    # the face keeps its inputs: this epoch's enrolment draw with draws, else the fixed training ones (not returned)
    assert set(drawn) == ({"audio", "visual"} if draws else {"audio"})
    if draws:  # each epoch its own enrolment draw
        assert not np.allclose(expected, inputs.training_draw(fold, 3)["audio"])


def test_the_linear_peer_refits_on_training_and_validation_speakers():
    """C is chosen on the validation speakers; with protocol.refit the peer is fitted again on training and
    validation speakers and scores the test speakers less their enrolment clips."""
    fs = feature_set()
    inputs = SpeakerInputs(fs, FeaturesConfig(speaker_norm="inductive", adapt_clips=4, enrolment="mean"), seed=0)
    fold = Fold(1, test_actors=(1, 2), val_actors=(3,), train_actors=(4, 5, 6))
    for refit, n_train in (("true", 4 * 16), ("false", 3 * 16)):
        config = load_config(REPO / "configs" / "ravdess_mars_egemaps.yaml", [f"protocol.refit={refit}"])
        record, table = peer_fold(config, fs, inputs, fold)
        assert record["n_train"] == n_train and len(table) == 2 * (16 - 4)
        assert set(record["chosen_C"]) == {"audio", "visual", "concatenation"}
