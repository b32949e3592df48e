"""Modalities are names the data declares: a touch modality from a manifest's touch_features .npy files (or a CSV
table's columns) through cv, results, predictions, the report, corruption, predict and serve, on the generated data
set of docs/own-data.md ("Other signals"); bad declarations are errors that name the modality."""

import json
import re
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
from starlette.testclient import TestClient

from emofuse.cli import main
from emofuse.config.loading import load_config
from emofuse.core.errors import DataError
from emofuse.features.cache import FeatureCache
from emofuse.datasets.manifest_set import build_manifest_features
from emofuse.reporting.html_report import render_report
from emofuse.inference.predict import Predictor
from emofuse.core.registry import ConfigError
from emofuse.data.sample import sample_dir
from emofuse.serve.app import create_app

from conftest import REPO
from test_report import Page

CONFIG = REPO / "configs" / "manifest_features.yaml"
FAST = ["train.epochs=4", "train.lr=0.01", "train.early_stopping.min_epochs=0", "loss.params.switch_epoch=2",
        "protocol.n_folds=2", "features.workers=1", "selection=null"]  # one network: the capacity choice is test_capacity's
CHANCE = 1 / 8  # eight classes, four samples of each per person
FLAC = sorted((sample_dir() / "audio16k").rglob("*.flac"))


def sets(*overrides: str) -> list[str]:
    return [a for s in (*FAST, *overrides) for a in ("--set", s)]


@pytest.fixture(scope="module")
def sensors(tmp_path_factory):
    """The data set the docs' worked example generates, by the docs' own snippet: m.csv, npy/, touch.csv."""
    section = (REPO / "docs" / "own-data.md").read_text().split("### Other signals", 1)[1]
    code = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    root = tmp_path_factory.mktemp("sensors")
    subprocess.run([sys.executable, "-c", code], cwd=root, check=True)
    return root / "runs" / "own-data" / "sensors"


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    return tmp_path_factory.mktemp("cache")


@pytest.fixture(scope="module")
def run(sensors, cache):
    out = sensors.parent / "run"
    assert main(["cv", str(CONFIG), "--data", str(sensors / "m.csv"), "--out", str(out), "--cache", str(cache),
                 "--no-progress", *sets()]) == 0
    return out


def test_cv_on_audio_and_touch_features_names_the_touch_branch(run):
    results = json.loads((run / "results.json").read_text())
    assert [f["test_actors"] for f in results["folds"]] == [["p1", "p2"], ["p3", "p4"]]  # folds by speaker
    assert all(sorted(f["modality_accuracy"]) == ["audio", "touch"] for f in results["folds"])
    assert sorted(results["modality_accuracy_mean"]) == ["audio", "touch"]
    assert json.loads((run / "data_fingerprint.json").read_text())["feature_dims"] == {"audio": 16, "touch": 8}
    predictions = pd.read_csv(run / "predictions.csv")
    assert len(predictions) == 128 - 4 * 10  # every person's 10 enrolment samples are not scored (inductive)
    assert {"pred_audio", "pred_touch"} <= set(predictions.columns)
    for m in ("audio", "touch"):
        by_fold = (predictions[f"pred_{m}"] == predictions["label"]).groupby(predictions["fold"]).mean()
        assert by_fold.tolist() == pytest.approx([f["modality_accuracy"][m] for f in results["folds"]])
        assert (predictions[f"pred_{m}"] == predictions["label"]).mean() > CHANCE  # each branch learns its weak signal
    assert (predictions["pred"] == predictions["label"]).mean() > CHANCE

    assert main(["report", str(run)]) == 0
    page = Page((run / "report.html").read_text())
    summary = dict(row for row in page.tables["summary"] if len(row) == 2)
    assert summary["touch branch accuracy"] == f"{results['modality_accuracy_mean']['touch']:.4f}"
    header, *rows = page.tables["folds"]
    assert "touch" in header and len(rows) == 2


def test_touch_from_table_columns_is_the_touch_from_npy_files(sensors, tmp_path):
    """data.sources.touch: {kind: table} reads the same vectors from touch.csv; a table that cannot serve stops,
    naming itself, and a row it lacks names the row's id."""
    cache = FeatureCache(tmp_path / "cache")

    def touch(source: str | None) -> np.ndarray:
        config = load_config(CONFIG, [f"data.path={sensors / 'm.csv'}", *([f"data.sources.touch={source}"] if source else [])])
        return build_manifest_features(sensors / "m.csv", config.data, config.features, cache, progress=False).features["touch"]

    from_npy = touch(None)
    assert from_npy.shape == (128, 8)
    assert np.array_equal(touch("{kind: table, path: touch.csv, prefix: touch_}"), from_npy)
    columns = [f"touch_{i}" for i in (0, 3)]
    assert np.array_equal(touch(f"{{kind: table, path: touch.csv, columns: {columns}}}"), from_npy[:, [0, 3]])

    with pytest.raises(DataError, match=r"touch\.csv.*no column whose name starts with 'grip_'"):
        touch("{kind: table, path: touch.csv, prefix: grip_}")
    with pytest.raises(DataError, match=r"touch\.csv.*no column 'speaker' to find the manifest's rows by"):
        touch("{kind: table, path: touch.csv, key: speaker, prefix: touch_}")
    table = pd.read_csv(sensors / "touch.csv", dtype=str)
    table.iloc[1:].to_csv(sensors / "short.csv", index=False)
    with pytest.raises(DataError, match=r"1 of 128 takes are incomplete:\n  line 2 \(p1_neutral_0\): touch from \S+/short\.csv: no row "
                                          r"with id 'p1_neutral_0'"):
        touch("{kind: table, path: short.csv, prefix: touch_}")
    table.assign(touch_2="light").to_csv(sensors / "text.csv", index=False)
    with pytest.raises(DataError, match=r"text\.csv.*column 'touch_2' holds values that are not numbers"):
        touch("{kind: table, path: text.csv, prefix: touch_}")


def test_bad_declarations_name_the_modality(sensors, tmp_path):
    bad = {
        r"model\.encoders has no encoder for modalities \['touch'\]": ["model.encoders={audio: {name: mlp}}"],
        r"model\.encoders names modalities not in data\.modalities: \['physio'\]": ["model.encoders.physio={name: mlp}"],
        r"data\.sources\.physio: 'physio' is not one of data\.modalities": ["data.sources.physio={kind: features}"],
        r"'Touch' is not a modality name": ["data.modalities=[audio, Touch]"],
        r"'touch' is named twice": ["data.modalities=[audio, touch, touch]"],
        r"a RAVDESS directory has its audio and visual modalities and those computed from the audio .*not stored ones \['touch'\]":
            ["data.dataset=ravdess", "data.audio_source=media", "data.sources={}"],
        r"data\.sources\.touch.*kind: table needs path": ["data.sources.touch={kind: table}"],
        r"data\.sources\.touch.*belong to kind: table": ["data.sources.touch={prefix: touch_}"],
        r"data\.modality_noise\.modality: 'physio' is not one of data\.modalities":
            ["data.modality_noise={modality: physio, kind: missing, level: 1.0}"],
    }
    for message, overrides in bad.items():
        with pytest.raises(ConfigError, match=message):
            load_config(CONFIG, overrides)

    # declared, with an encoder, but the manifest has no physio_features column
    physio = load_config(CONFIG, ["data.modalities=[audio, touch, physio]", "model.encoders.physio={name: mlp}",
                                  "loss.params.gamma=1.0"])
    with pytest.raises(DataError, match=r"no column 'physio_features \(\.npy files of the physio modality\)'"):
        build_manifest_features(sensors / "m.csv", physio.data, physio.features, FeatureCache(tmp_path), progress=False)


def test_predict_reports_touch_as_missing_with_its_reason(run, capsys):
    assert main(["predict", str(run), str(FLAC[0]), "--json"]) == 1  # nothing to compute: an error entry
    (entry,) = json.loads(capsys.readouterr().out)
    assert entry["error"] == "no usable modality" and entry["modalities"] == []
    assert entry["missing"]["touch"] == ("not computed: the model's touch branch was trained on precomputed features "
                                         "(a manifest's touch_features column), which predict cannot make from a file")
    assert "audio_features column" in entry["missing"]["audio"]


@pytest.fixture(scope="module")
def media_run(sensors, cache):
    """Audio from media files (eGeMAPS of the packaged RAVDESS clips, one per row) and touch from touch_features,
    the touch inputs of every test clip removed (data.modality_noise); every test clip scored (no enrolment), so that a
    constant answer is chance exactly."""
    table = pd.read_csv(sensors / "m.csv")
    table["audio"] = [str(FLAC[i % 16]) for i in range(len(table))]
    table.to_csv(sensors / "media.csv", index=False)
    out = sensors.parent / "media_run"
    assert main(["cv", str(CONFIG), "--data", str(sensors / "media.csv"), "--out", str(out), "--cache", str(cache),
                 "--no-progress", *sets("data.audio_source=media", "features.audio.name=egemaps",
                                        "data.modality_noise={modality: touch, kind: missing, level: 1.0}",
                                        "features.speaker_norm=none")]) == 0
    return out


@pytest.mark.slow
def test_corrupted_touch_and_predict_and_serve_from_the_audio_branch(media_run):
    """Every test clip without touch: the branch gets the training mean and answers one class (chance exactly);
    predict and serve fuse what a file gives (audio) and report touch as missing."""
    results = json.loads((media_run / "results.json").read_text())
    for fold in results["folds"]:
        assert fold["modality_noise"] == {"corrupted_clips": {"test": 64}}
        assert fold["modality_accuracy"]["touch"] == CHANCE
    assert "touch" in render_report(media_run)

    predictor = Predictor(media_run)
    (entry,) = predictor.predict([FLAC[0]])
    assert entry["modalities"] == ["audio"] and sorted(entry["modality_probs"]) == ["audio"]
    assert entry["pred"] in predictor.class_names and entry["probs"] == entry["modality_probs"]["audio"]
    assert "touch_features column" in entry["missing"]["touch"]
    with TestClient(create_app(predictor)) as client:
        assert client.get("/api/model").json()["modalities"] == ["audio", "touch"]
        response = client.post("/api/predict", files={"file": (FLAC[0].name, FLAC[0].read_bytes(), "audio/flac")})
    assert response.status_code == 200
    served = response.json()
    assert served["pred"] == entry["pred"] and "touch_features column" in served["missing"]["touch"]
