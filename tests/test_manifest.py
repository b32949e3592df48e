"""Manifest datasets: reading, sources of each modality, folds by speaker or fixed by split / fold, and every bad
input named by line, column and file (or skipped and reported)."""

import json
import shutil

import numpy as np
import pandas as pd
import pytest

from emofuse.config.loading import config_from_dict
from emofuse.config.schema import DataConfig, FeaturesConfig
from emofuse.core.errors import DataError
from emofuse.data.manifest import read_manifest
from emofuse.protocol.cross_validation import run_cross_validation
from emofuse.protocol.folds import actor_folds, dataset_folds
from emofuse.features.cache import FeatureCache
from emofuse.datasets.manifest_set import build_manifest_features
from emofuse.core.registry import ConfigError
from emofuse.data.sample import sample_dir

from conftest import feature_manifest_config, make_feature_manifest

MFCC = FeaturesConfig(audio={"name": "mfcc", "params": {"n_mfcc": 13}}, workers=1)
FEATURES = {"dataset": "manifest", "audio_source": "features", "visual": {"kind": "features"}}


def sample_audio_manifest(root, speakers=("01", "02", "03"), emotions=("03", "04", "05")) -> tuple[pd.DataFrame, object]:
    """Real packaged RAVDESS audio, copied beside the manifest and named by relative paths."""
    rows = []
    for actor in speakers:
        for emotion in emotions:
            for statement in ("01", "02"):
                name = f"03-01-{emotion}-01-{statement}-01-{actor}.flac"
                (root / "audio").mkdir(parents=True, exist_ok=True)
                shutil.copy(sample_dir() / "audio16k" / f"Actor_{actor}" / name, root / "audio" / name)
                rows.append({"speaker": f"actor{int(actor)}", "label": {"03": "happy", "04": "sad", "05": "angry"}[emotion],
                             "audio": f"audio/{name}"})
    return pd.DataFrame(rows), root / "m.csv"


def build(path, data: dict, tmp_path, features=MFCC, **kwargs):
    return build_manifest_features(path, DataConfig(**{"dataset": "manifest", "modalities": ["audio"], **data}), features,
                                   FeatureCache(tmp_path / "cache"), progress=False, **kwargs)


def test_media_manifest_reads_real_audio_with_relative_paths(tmp_path):
    table, path = sample_audio_manifest(tmp_path)
    table.to_csv(path, index=False)
    fs = build(path, {}, tmp_path)
    assert len(fs.meta) == 18 and fs.input_dims == {"audio": 13} and fs.sequence == {"audio": True}
    assert fs.class_names == ("happy", "sad", "angry")  # the common emotions in their usual order
    assert fs.meta["clip"].iloc[0] == "03-01-03-01-01-01-01"  # default id: the file's stem
    assert fs.meta["actor"].tolist()[:6] == ["actor1"] * 6 and fs.meta["line"].tolist()[:2] == [2, 3]
    assert fs.meta["label"].tolist()[:6] == [0, 0, 1, 1, 2, 2]
    again = build(path, {}, tmp_path)
    assert again.fingerprint == fs.fingerprint
    table.loc[0, "label"] = "sad"  # a relabelled row is other data
    table.to_csv(path, index=False)
    assert build(path, {}, tmp_path).fingerprint != fs.fingerprint


def test_missing_columns_are_named_with_the_file(tmp_path):
    table, path = sample_audio_manifest(tmp_path, speakers=("01", "02"), emotions=("03", "04"))
    for drop, expected in (("label", "'label'"), ("speaker", "'speaker (or group)'"),
                           ("audio", "'audio (or video, whose audio track serves)'")):
        table.drop(columns=[drop]).to_csv(path, index=False)
        with pytest.raises(DataError, match=r"no column .*" + expected.replace("(", r"\(").replace(")", r"\)")) as info:
            build(path, {}, tmp_path)
        assert str(path) in str(info.value)
    table.rename(columns={"speaker": "group"}).to_csv(path, index=False)  # group serves as speaker
    assert read_manifest(path, ["audio"]).rows["speaker"].tolist()[0] == "actor1"


def test_missing_file_names_line_column_and_file_or_is_skipped_and_reported(tmp_path):
    table, path = sample_audio_manifest(tmp_path)
    table.loc[4, "audio"] = "audio/gone.wav"
    table.to_csv(path, index=False)
    with pytest.raises(DataError) as info:
        build(path, {}, tmp_path)
    message = str(info.value)
    assert f"line 6 (gone): column 'audio': {tmp_path / 'audio' / 'gone.wav'}: file does not exist" in message
    assert "data.on_incomplete: skip" in message
    fs = build(path, {"on_incomplete": "skip"}, tmp_path)
    assert len(fs.meta) == 17 and "gone" not in set(fs.meta["clip"])
    assert fs.skipped == [{"take": "gone", "line": 6, "problems": [
        f"column 'audio': {tmp_path / 'audio' / 'gone.wav'}: file does not exist"]}]


def test_undecodable_file_names_line_column_and_file(tmp_path):
    table, path = sample_audio_manifest(tmp_path)
    bad = tmp_path / "audio" / table.loc[7, "audio"].split("/")[1]
    bad.write_bytes(b"RIFF\x00\x00garbage" * 10)
    table.to_csv(path, index=False)
    with pytest.raises(DataError) as info:
        build(path, {}, tmp_path)
    assert f"line 9 ({bad.stem}): column 'audio' {bad}: cannot decode audio" in str(info.value)


def test_a_label_seen_once_stops_or_is_left_out(tmp_path):
    table, path = sample_audio_manifest(tmp_path)
    table.loc[3, "label"] = "surprised"
    table.to_csv(path, index=False)
    with pytest.raises(DataError, match=r"line 5 \(.*\): column 'label': label 'surprised' is on this row only"):
        build(path, {}, tmp_path)
    fs = build(path, {"on_incomplete": "skip"}, tmp_path)
    assert "surprised" not in fs.class_names and fs.skipped[0]["line"] == 5
    # a label left with one sample after another row is skipped: that one goes too
    table.loc[3, "label"] = "happy"
    table.loc[[0, 1], "label"] = "calm"
    table.loc[0, "audio"] = "audio/gone.wav"
    table.to_csv(path, index=False)
    fs = build(path, {"on_incomplete": "skip"}, tmp_path)
    assert "calm" not in fs.class_names and sorted(s["line"] for s in fs.skipped) == [2, 3]


def test_a_speaker_in_two_splits_or_folds(tmp_path):
    table, path = sample_audio_manifest(tmp_path)
    table["split"] = table["speaker"].map({"actor1": "train", "actor2": "val", "actor3": "test"})
    table.loc[2, "split"] = "test"
    table.to_csv(path, index=False)
    with pytest.raises(DataError, match=r"column 'split': speaker 'actor1' is in more than one split \(split test on "
                                        r"line\(s\) 4; split train on line\(s\) 2, 3, 5, 6, 7\)"):
        build(path, {}, tmp_path)
    table = table.drop(columns=["split"]).assign(fold=table["speaker"].map({"actor1": "1", "actor2": "2", "actor3": "x"}))
    table.to_csv(path, index=False)
    with pytest.raises(DataError, match=r"column 'fold': 'x' is not a fold number"):
        build(path, {}, tmp_path)


def test_fewer_than_two_speakers(tmp_path):
    table, path = sample_audio_manifest(tmp_path, speakers=("01",))
    table.to_csv(path, index=False)
    with pytest.raises(DataError, match=r"1 speaker \('actor1'\) among the usable rows: speaker-independent training and "
                                        r"testing need at least 2") as info:
        build(path, {}, tmp_path)
    assert str(path) in str(info.value)


def test_one_class_stops_before_extraction_and_a_folder_name_label_says_so(tmp_path, monkeypatch):
    """Before: a one-class manifest was extracted in full and died in a torchmetrics traceback."""
    table, path = sample_audio_manifest(tmp_path)
    table.assign(label="audio").to_csv(path, index=False)  # every file is in audio/: the folder name as the label
    monkeypatch.setattr("emofuse.datasets.manifest_set.extract_features",
                        lambda *a, **k: pytest.fail("extraction started"), raising=False)
    with pytest.raises(DataError, match=r"1 class \('audio'\) among the usable rows; training a classifier needs at "
                                        r"least 2: every file lies in a folder named 'audio'") as info:
        build(path, {}, tmp_path)
    assert str(path) in str(info.value)
    table.assign(label="happy").to_csv(path, index=False)
    with pytest.raises(DataError, match=r"1 class \('happy'\) among the usable rows; training a classifier needs at "
                                        r"least 2$"):
        build(path, {}, tmp_path)


def test_feature_files_of_the_wrong_dimension(tmp_path):
    path = make_feature_manifest(tmp_path, frames=5)
    np.save(tmp_path / "features" / "spk2_neutral_1_a.npy", np.zeros((5, 7), np.float32))
    np.save(tmp_path / "features" / "spk3_positive_0_v.npy", np.zeros((3, 12), np.float32))
    data = DataConfig(**FEATURES)
    with pytest.raises(DataError) as info:
        build_manifest_features(path, data, MFCC, FeatureCache(tmp_path / "cache"), progress=False)
    message = str(info.value)
    assert "2 of 72 takes are incomplete" in message
    assert (f"line 19 (spk2_neutral_1): column 'audio_features' {tmp_path / 'features' / 'spk2_neutral_1_a.npy'}: "
            f"shape (5, 7), expected (T, 12) like the other files") in message
    assert f"{tmp_path / 'features' / 'spk3_positive_0_v.npy'}: shape (3, 12), expected (12) like the other files" in message


def test_precomputed_features_folds_and_fingerprint(tmp_path):
    path = make_feature_manifest(tmp_path, frames=5)
    fs = build_manifest_features(path, DataConfig(**FEATURES), MFCC, FeatureCache(tmp_path / "cache"), progress=False)
    assert fs.input_dims == {"audio": 12, "visual": 12} and fs.sequence == {"audio": True, "visual": False}
    assert fs.class_names == ("neutral", "negative", "positive")
    folds = dataset_folds(fs.meta, 3, 0.5, seed=0)
    assert [f.test_actors for f in folds] == [("spk1", "spk2"), ("spk3", "spk10"), ("spk11", "spk12")]  # natural order
    for fold in folds:  # one male and one female validation speaker, as RAVDESS's odd and even actors
        assert sorted(int(s[3:]) % 2 for s in fold.val_actors) == [0, 1]


def test_string_speakers_with_genders_fold_as_ravdess_actors():
    meta = pd.DataFrame({"actor": [f"{a:02d}" for a in range(1, 25)], "gender": ["M" if a % 2 else "F" for a in range(1, 25)]})
    for seed in range(4):
        ours = [(tuple(map(int, f.test_actors)), tuple(map(int, f.val_actors))) for f in dataset_folds(meta, 6, 0.2, seed)]
        assert ours == [(f.test_actors, f.val_actors) for f in actor_folds(range(1, 25), 6, 0.2, seed)]


def test_split_and_fold_columns_fix_the_protocol(tmp_path):
    path = make_feature_manifest(tmp_path)
    table = pd.read_csv(path)
    split = {"spk1": "train", "spk2": "train", "spk3": "train", "spk10": "val", "spk11": "test", "spk12": "test"}
    table.assign(split=table["speaker"].map(split)).to_csv(path, index=False)
    fs = build_manifest_features(path, DataConfig(**FEATURES), MFCC, FeatureCache(tmp_path / "cache"), progress=False)
    (fold,) = dataset_folds(fs.meta, 6, 0.2, seed=0)
    assert (fold.train_actors, fold.val_actors, fold.test_actors) == (("spk1", "spk2", "spk3"), ("spk10",), ("spk11", "spk12"))
    table.assign(fold=table["speaker"].map({"spk1": 1, "spk2": 1, "spk3": 2, "spk10": 2, "spk11": 3, "spk12": 3})).to_csv(path, index=False)
    fs = build_manifest_features(path, DataConfig(**FEATURES), MFCC, FeatureCache(tmp_path / "cache"), progress=False)
    folds = dataset_folds(fs.meta, 6, 0.25, seed=0)
    assert [(f.index, f.test_actors) for f in folds] == [(1, ("spk1", "spk2")), (2, ("spk3", "spk10")), (3, ("spk11", "spk12"))]
    assert all(len(f.val_actors) == 1 and not set(f.val_actors) & set(f.test_actors) for f in folds)


def test_too_many_folds_for_the_speakers_is_a_config_error():
    meta = pd.DataFrame({"actor": ["a", "b", "c"]})
    with pytest.raises(ConfigError, match=r"3 speakers cannot make 5 speaker-independent folds \(set protocol.n_folds"):
        dataset_folds(meta, 5, 0.2, 0)


def test_cv_on_precomputed_features_lists_skipped_rows_in_results(tmp_path):
    path = make_feature_manifest(tmp_path, frames=5)
    table = pd.read_csv(path)
    table.loc[3, "audio_features"] = "features/missing.npy"  # line 5: spk1_negative_3
    table.to_csv(path, index=False)
    tree = feature_manifest_config(path, **{"data.on_incomplete": "skip", "model.encoders.audio": {"name": "cnn1d"}})
    config = config_from_dict(tree)
    summary = run_cross_validation(config, path, tmp_path / "run", tmp_path / "cache", progress=False)
    results = json.loads((tmp_path / "run" / "results.json").read_text())
    assert results["skipped_takes"] == summary["skipped_takes"] == [{"take": "spk1_negative_3", "line": 5, "problems": [
        f"column 'audio_features': {tmp_path / 'features' / 'missing.npy'}: file does not exist"]}]
    assert results["n_clips"] == 71 and len(results["folds"]) == 3
    assert [f["test_actors"] for f in results["folds"]] == [["spk1", "spk2"], ["spk3", "spk10"], ["spk11", "spk12"]]
    record = json.loads((tmp_path / "run" / "data_fingerprint.json").read_text())
    assert record["class_names"] == ["neutral", "negative", "positive"] and record["sequence"] == {"audio": True, "visual": False}
    predictions = pd.read_csv(tmp_path / "run" / "predictions.csv")
    assert set(predictions["label"]) == {"neutral", "negative", "positive"}
    assert results["accuracy_mean"] > 0.5  # the planted signal is learnt (chance 1/3)


def test_manifest_configs_load_and_video_defaults_to_face_features():
    from conftest import REPO
    from emofuse.config.loading import load_config

    audio = load_config(REPO / "configs" / "manifest_audio.yaml", ["data.path=m.csv"])
    assert audio.data.dataset == "manifest" and audio.data.modalities == ["audio"] and audio.features.visual is None
    av = load_config(REPO / "configs" / "manifest_av.yaml")
    assert av.data.visual.kind == "video" and av.features.visual.name == "face_features"
    tree = {"name": "x", "data": {"dataset": "manifest"},
            "model": {"encoders": {"audio": {"name": "mlp"}, "visual": {"name": "mlp"}}}}
    default = config_from_dict(tree)  # a manifest with videos: face features, no OpenFace
    assert default.data.visual.kind == "video"
    assert default.features.visual.model_dump() == {"name": "face_features",
                                                    "params": {"descriptors": ["expression", "hog"], "pool": True}}
    with pytest.raises(ConfigError, match="set data.dataset: manifest"):
        config_from_dict({**tree, "data": {"audio_source": "features"}})


def test_cli_names_a_missing_or_mistaken_data_location(tmp_path, capsys):
    from conftest import REPO
    from emofuse.cli import main

    config = str(REPO / "configs" / "manifest_audio.yaml")
    assert main(["cv", config, "--out", str(tmp_path / "run")]) == 2
    assert "a manifest config needs its CSV: --data manifest.csv or --set data.path=manifest.csv" in capsys.readouterr().err
    assert main(["cv", config, "--data", str(sample_dir()), "--out", str(tmp_path / "run")]) == 2
    assert "is a folder, not a manifest CSV" in capsys.readouterr().err
    table, path = sample_audio_manifest(tmp_path, speakers=("01", "02"), emotions=("03", "04"))
    table.to_csv(path, index=False)
    assert main(["cv", str(REPO / "configs" / "ravdess_ce.yaml"), "--data", str(path), "--out", str(tmp_path / "run2")]) == 2
    assert "is a file, but the config reads a RAVDESS folder" in capsys.readouterr().err
    assert main(["extract", config, "--data", str(path), "--cache", str(tmp_path / "cache"), "--no-progress",
                 "--set", "features.workers=1"]) == 0
    assert "8 takes ready; feature dims {'audio': 3072}; 0 skipped" in capsys.readouterr().out  # Whisper base, 3 layers x (mean, std) x 512
