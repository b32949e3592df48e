"""Reduced runs of the real pipeline on real RAVDESS: the packaged sample and ../shared/data."""

import json

import numpy as np
import pandas as pd
import pytest
import yaml

from emofuse.cli import main
from emofuse.data.audio import load_audio
from emofuse.features import EXTRACTORS

from conftest import RAVDESS, REPO, requires_shared_data

REDUCED = ["--set", "train.epochs=2", "--set", "train.early_stopping.min_epochs=0", "--no-progress"]


def check_run_directory(out, n_clips, n_folds):
    results = json.loads((out / "results.json").read_text())
    assert len(results["folds"]) == n_folds
    for key in ("accuracy_mean", "accuracy_std", "macro_f1_mean", "config", "speaker_norm"):
        assert key in results
    predictions = pd.read_csv(out / "predictions.csv")
    assert len(predictions) == n_clips and predictions["clip"].is_unique  # every clip tested exactly once
    for fold in results["folds"]:
        test, val = set(fold["test_actors"]), set(fold["val_actors"])
        assert not test & val and not test & set(fold["train_actors"])
        assert set(predictions.loc[predictions.fold == fold["fold"], "actor"]) == test
        assert {"fold", "test_actors", "val_actors", "accuracy", "macro_f1", "modality_accuracy"} <= set(fold)
        assert set(fold["modality_accuracy"]) == {"audio", "visual"}
    assert {"clip", "actor", "fold", "label", "pred", "prob_angry", "pred_audio", "pred_visual"} <= set(predictions.columns)
    probs = predictions.filter(like="prob_").to_numpy()
    np.testing.assert_allclose(probs.sum(1), 1.0, atol=1e-4)
    accuracy = (predictions.label == predictions.pred).groupby(predictions.fold).mean()
    np.testing.assert_allclose(accuracy.to_numpy(), [f["accuracy"] for f in results["folds"]], atol=1e-6)
    assert yaml.safe_load((out / "config.yaml").read_text())["name"] == results["name"]
    assert json.loads((out / "versions.json").read_text())["torch"]
    assert len(json.loads((out / "data_fingerprint.json").read_text())["sha256"]) == 64
    assert (out / "log.txt").stat().st_size > 0
    return results


@pytest.mark.slow
def test_readme_main_job_on_the_packaged_sample(tmp_path):
    """The README's main job (Whisper audio features + AUs, Mars) on the packaged sample, shortened."""
    out = tmp_path / "demo"
    assert main(["cv", str(REPO / "configs" / "ravdess_mars.yaml"), "--out", str(out), "--cache", str(tmp_path / "c"), *REDUCED]) == 0
    results = check_run_directory(out, n_clips=6 * (30 - 10), n_folds=6)  # each actor's 10 enrolment clips are not scored
    assert results["speaker_norm"] == "inductive" and results["adapt_clips"] == 10 and results["train_draws"]
    assert all(len(clips) == 10 for clips in results["enrolment_clips"].values())


@pytest.mark.slow
@requires_shared_data()
def test_reduced_cv_on_all_1440_real_clips(tmp_path):
    out = tmp_path / "run"
    argv = ["cv", str(REPO / "configs" / "ravdess_mars_egemaps.yaml"), "--data", str(RAVDESS), "--out", str(out),
            "--cache", str(tmp_path / "c"), *REDUCED]
    assert main(argv) == 0
    results = check_run_directory(out, n_clips=1440, n_folds=6)
    assert [f["test_actors"] for f in results["folds"]] == [list(range(s, s + 4)) for s in range(1, 25, 4)]
    assert results["accuracy_mean"] > 0.3  # two epochs already beat chance (0.125) by far
    # a second invocation resumes: nothing is recomputed and the numbers are the same
    assert main(argv) == 0
    assert json.loads((out / "results.json").read_text())["accuracy_mean"] == results["accuracy_mean"]


@requires_shared_data()
def test_egemaps_on_real_audio():
    files = sorted((RAVDESS / "audio16k" / "Actor_01").glob("*.flac"))[:3]
    extractor = EXTRACTORS.create("egemaps", {})
    features = np.stack([extractor(load_audio(f, 16000)) for f in files])
    assert features.shape == (3, 88) and np.isfinite(features).all()
    assert not np.allclose(features[0], features[1])


def test_cli_help_for_every_command(capsys):
    for command in ([], ["cv"], ["extract"], ["registry"]):
        with pytest.raises(SystemExit) as info:
            main([*command, "--help"])
        assert info.value.code == 0
        assert "usage: emofuse" in capsys.readouterr().out


def test_cli_reports_a_bad_config_key(tmp_path, capsys):
    bad = tmp_path / "bad.yaml"
    bad.write_text((REPO / "configs" / "ravdess_ce_egemaps.yaml").read_text().replace("seed: 0", "sead: 0"))
    assert main(["cv", str(bad), "--out", str(tmp_path / "o")]) == 2
    assert "unknown key 'sead'" in capsys.readouterr().err
