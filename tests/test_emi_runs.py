"""The ablation table and the RAVDESS real-data check, on tiny inputs (reduced epochs and widths)."""

import json

import numpy as np
import pandas as pd
import pytest

from emofuse.cli import main
from emofuse.tasks.emi.fixture import write_emi_fixture
from emofuse.tasks.emi.config import load_emi_config
from emofuse.tasks.emi.ravdess import TARGETS, RavdessSource, intensity_targets, load_ravdess_source, run_ravdess_emi
from emofuse.core.registry import ConfigError

from conftest import REPO

SMALL = ["--set", "train.epochs=1", "--set", "model.hidden=16", "--set", "model.seq_len=16"]


def test_ablation_writes_one_row_per_config(tmp_path, capsys):
    data = write_emi_fixture(tmp_path / "data", n_train=32, n_val=16, n_test=16)
    configs = [str(REPO / "configs" / "emi_ablation" / n) for n in ("1_average.yaml", "3_concat_temporal.yaml", "6_visual.yaml")]
    assert main(["ablation", *configs, "--data", str(data), "--out", str(tmp_path / "ab"), *SMALL]) == 0
    table = pd.read_csv(tmp_path / "ab" / "ablation.csv")
    assert table["run"].tolist() == ["average", "concat_temporal", "visual_only"]
    assert table["modalities"].tolist() == ["visual+audio+text", "visual+audio+text", "visual"]
    assert table[["val_pearson_mean", "test_pearson_mean", "val/Joy", "test/Joy"]].notna().all().all()
    markdown = (tmp_path / "ab" / "ablation.md").read_text()
    assert markdown.count("\n") == 2 + 3 and "| concat_temporal | concat + temporal module, MSE |" in markdown
    assert "| average |" in capsys.readouterr().out


def test_ablation_refuses_two_configs_with_one_name(tmp_path, capsys):
    config = str(REPO / "configs" / "emi_ablation" / "2_concat.yaml")
    assert main(["ablation", config, config, "--data", str(tmp_path), "--out", str(tmp_path / "ab")]) == 2
    assert "['concat'] used more than once" in capsys.readouterr().err


def test_ravdess_intensity_targets():
    meta = pd.DataFrame({"emotion": ["neutral", "happy", "angry", "surprised"], "intensity": [1, 1, 2, 2]})
    targets = intensity_targets(meta)
    assert list(targets.columns) == list(TARGETS) == ["calm", "happy", "sad", "angry", "fearful", "disgust", "surprised"]
    expected = np.zeros((4, 7))
    expected[1, 1], expected[2, 3], expected[3, 6] = 0.5, 1.0, 1.0
    np.testing.assert_array_equal(targets.to_numpy(), expected)


RAVDESS_FEATURES = {
    "data": {"modalities": ["audio", "visual"]},
    "features": {"audio": {"name": "mfcc", "params": {"n_mfcc": 13}}, "speaker_norm": True, "workers": 1},
    "protocol": {"n_folds": 3, "val_fraction": 0.25},
}


def test_feature_source_reads_its_sections_from_any_ravdess_config(tmp_path):
    assert load_ravdess_source(REPO / "configs" / "emi_ravdess_features.yaml").features.audio.name == "mfcc"
    load_ravdess_source(REPO / "configs" / "ravdess_ce.yaml")  # a classification config: other sections ignored
    bad = tmp_path / "bad.yaml"
    bad.write_text((REPO / "configs" / "emi_ravdess_features.yaml").read_text().replace("n_mfcc: 40", "n_mfc: 40"))
    with pytest.raises(ConfigError, match="features.audio.params.n_mfc"):
        load_ravdess_source(bad)


def test_ravdess_check_is_speaker_independent_and_scores_every_clip_once(ravdess_fixture, tmp_path):
    config = load_emi_config(REPO / "configs" / "emi_ravdess.yaml", ["train.epochs=2", "model.hidden=16", "model.seq_len=16"])
    out = tmp_path / "run"
    summary = run_ravdess_emi(config, RavdessSource.model_validate(RAVDESS_FEATURES), ravdess_fixture, out, tmp_path / "cache", progress=False)
    assert [f["test_actors"] for f in summary["folds"]] == [[1, 2], [3, 4], [5, 6]]
    for fold in summary["folds"]:
        labels = pd.read_csv(out / "data" / f"fold_{fold['fold']}" / "labels.csv")
        actors = {s: set(labels.loc[labels.split == s, "actor"]) for s in ("train", "val", "test")}
        assert actors["test"] == set(fold["test_actors"]) and actors["val"] == set(fold["val_actors"])
        assert not actors["test"] & (actors["train"] | actors["val"]) and not actors["val"] & actors["train"]
        assert np.isfinite(fold["test_pearson_mean"])
        assert (out / "folds" / f"fold_{fold['fold']}" / "test_predictions.csv").is_file()
    predictions = pd.read_csv(out / "predictions.csv")
    assert len(predictions) == 6 * 16 and predictions["id"].is_unique
    assert {"fold", "actor", "happy", "pred_happy"} <= set(predictions.columns)
    assert set(predictions["happy"]) == {0.0, 0.5}  # the fixture's takes are all at normal intensity
    results = json.loads((out / "results.json").read_text())
    assert results["test_pearson_mean"] == pytest.approx(np.mean([f["test_pearson_mean"] for f in results["folds"]]))
    assert (out / "folds.md").read_text().startswith("| fold | test actors |")
    # the folds' ridge peers pooled on the same clips, beside the network
    peer = results["linear_peer"]
    assert peer["n_speakers"] == 6 and peer["ci_low"] <= peer["network_minus_peer"] <= peer["ci_high"]
    assert peer["network_minus_peer"] == pytest.approx(results["pooled_test_pearson_mean"] - peer["peer_pooled_test_pearson_mean"])
