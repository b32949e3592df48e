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


def test_text_from_a_manifest_transcript_column(tmp_path):
    """A manifest's column of what was said is embedded as the transcript extractor embeds speech; here the words
    name the class, so the text branch learns it, and an empty cell is a problem on that row."""
    import numpy as np

    from emofuse.features import EXTRACTORS

    words = {"happy": "what a wonderful day, I am so glad", "sad": "I miss her so much, everything is grey",
             "angry": "get out of my way, I am furious", "neutral": "the train leaves at nine tomorrow"}
    rows = []
    rng = np.random.default_rng(0)
    (tmp_path / "npy").mkdir()
    for person in ["p1", "p2", "p3", "p4"]:
        for label, text in words.items():
            for j in range(3):
                sample = f"{person}_{label}_{j}"
                np.save(tmp_path / "npy" / f"{sample}.npy", rng.normal(0, 1, 8).astype(np.float32))
                rows.append({"id": sample, "speaker": person, "label": label, "audio_features": f"npy/{sample}.npy",
                             "transcript": text})
    rows[-1]["transcript"] = ""
    pd.DataFrame(rows).to_csv(tmp_path / "m.csv", index=False)
    out = tmp_path / "run"
    assert main(["cv", str(REPO / "configs" / "manifest_features.yaml"), "--data", str(tmp_path / "m.csv"),
                 "--out", str(out), "--no-progress", "--set", "data.modalities=[audio, text]",
                 "--set", "data.sources={text: {kind: transcript, column: transcript}}",
                 "--set", "model.encoders={audio: {name: mlp}, text: {name: mlp}}",
                 "--set", "loss.params.gamma={audio: 1.0, text: 1.0}", "--set", "protocol.n_folds=4",
                 "--set", "data.on_incomplete=skip", "--set", "train.epochs=15",
                 "--set", "features.speaker_norm=none", "--set", "selection=null"]) == 0  # 12 samples a person: too few to enrol with
    results = json.loads((out / "results.json").read_text())
    assert results["modality_accuracy_mean"]["text"] > 0.9  # the words name the class; chance 0.25
    assert [s["take"] for s in results["skipped_takes"]] == ["p4_neutral_2"]
    embedded = EXTRACTORS.create("transcript", {}).embed(words["sad"])
    assert embedded.shape == (384,) and abs(float(np.linalg.norm(embedded)) - 1.0) < 1e-4
