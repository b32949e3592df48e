"""A third modality computed from speech: RAVDESS audio + visual + text (the transcript's sentence embedding) through
cv, compare and predict; the text branch stays near chance, since RAVDESS's two sentences carry no emotion."""

import json

import pandas as pd
import pytest

from conftest import REPO
from emofuse.cli import main
from emofuse.config.loading import load_config
from emofuse.core.registry import ConfigError

CONFIG = REPO / "configs" / "ravdess_mars_text.yaml"
CLIP = REPO / "src" / "emofuse" / "sample" / "ravdess" / "audio16k" / "Actor_01" / "03-01-05-02-01-01-01.flac"
FAST = ["--set", "train.epochs=3", "--set", "train.early_stopping=null", "--no-progress"]


@pytest.mark.slow
def test_three_modalities_on_the_sample_through_cv_compare_and_predict(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["cv", str(CONFIG), "--out", str(out), *FAST]) == 0
    results = json.loads((out / "results.json").read_text())
    assert set(results["modality_accuracy_mean"]) == {"audio", "visual", "text"}
    assert results["modality_accuracy_mean"]["text"] < 0.3  # chance is 0.125 (the sample: 120 scored clips)
    predictions = pd.read_csv(out / "predictions.csv")
    assert {"pred_audio", "pred_visual", "pred_text"} <= set(predictions.columns)
    assert json.loads((out / "data_fingerprint.json").read_text())["feature_dims"]["text"] == 384

    capsys.readouterr()
    assert main(["predict", str(out), str(CLIP), "--json"]) == 0
    (entry,) = json.loads(capsys.readouterr().out)
    assert entry["modalities"] == ["audio", "text"] and "visual" in entry["missing"]  # no OpenFace output given

    compared = tmp_path / "compare"
    assert main(["compare", str(CONFIG), str(REPO / "configs" / "ravdess_mars.yaml"), "--out", str(compared),
                 "--seeds", "1", *FAST]) == 0
    table = pd.read_csv(compared / "comparison.csv")
    assert "accuracy_text_mean" in table.columns and len(table) == 2


def test_a_computed_modality_needs_a_speech_extractor_and_stored_ones_need_a_manifest():
    config = load_config(CONFIG)
    assert config.data.speech_sourced()["text"].name == "transcript"
    with pytest.raises(ConfigError, match="not stored ones \\['touch'\\]"):
        load_config(CONFIG, ["data.modalities=[audio, touch]", "model.encoders={audio: {name: mlp}, touch: {name: mlp}}",
                             "data.sources={}", "loss.params.gamma={audio: 1.0, touch: 1.0}"])
    with pytest.raises(ConfigError, match="extractor belongs to kind: speech"):
        load_config(CONFIG, ["data.sources.text={kind: features, extractor: {name: transcript}}"])
    with pytest.raises(ConfigError, match="data.sources.text.extractor.params"):
        load_config(CONFIG, ["data.sources.text.extractor.params={beam_size: 0}"])
