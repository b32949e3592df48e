"""Manifest datasets through everything downstream: the same folds and accuracy as the RAVDESS reader, cv, compare,
sweep, predict and export on a manifest run, cross-corpus evaluation, report and serve of a manifest run, and
audio + faces from the real CREMA-D videos."""

import json

import numpy as np
import pandas as pd
import pytest
from starlette.testclient import TestClient

from emofuse.cli import main
from emofuse.config.loading import config_from_dict, load_config
from emofuse.experiments.compare import Variant, run_compare
from emofuse.protocol.cross_corpus import evaluate_on_manifest, map_labels, parse_label_map
from emofuse.protocol.cross_validation import run_cross_validation
from emofuse.experiments.sweep import run_sweep
from emofuse.experiments.sweep_space import SearchSpace
from emofuse.inference.export import export_run
from emofuse.reporting.html_report import render_report
from emofuse.inference.predict import Predictor
from emofuse.core.registry import ConfigError
from emofuse.data.sample import sample_dir
from emofuse.serve.app import create_app

from conftest import REPO, feature_manifest_config, make_feature_manifest
from test_media import CREMA, requires_crema
from test_report import Page

TINY = ["train.epochs=2", "train.early_stopping.min_epochs=0", "protocol.n_folds=2", "features.workers=1"]


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    return tmp_path_factory.mktemp("cache")


@pytest.fixture(scope="module")
def sample_manifest(tmp_path_factory):
    out = tmp_path_factory.mktemp("sample_manifest")
    from emofuse.data.corpora import CORPORA, write_manifest

    path = out / "ravdess.csv"
    path.write_text(write_manifest(CORPORA.get("ravdess")(sample_dir())))
    return path


@pytest.mark.slow
def test_manifest_gives_the_ravdess_readers_folds_and_accuracy(sample_manifest, cache, tmp_path, capsys):
    """`emofuse manifest ravdess` of the packaged sample, then `emofuse cv` on a manifest config of the same method."""
    assert main(["manifest", "ravdess", str(sample_dir())]) == 0
    manifest = tmp_path / "m.csv"
    manifest.write_text(capsys.readouterr().out)
    config = tmp_path / "manifest_mars.yaml"
    config.write_text(f"extends: {REPO / 'configs' / 'ravdess_mars_egemaps.yaml'}\nname: ravdess_mars_egemaps\ndata:\n  dataset: manifest\n"
                      f"  visual: {{kind: table, path: {sample_dir() / 'openface_au_clip_means.csv'}, key: video_stem}}\n")
    sets = [a for s in [*TINY, "loss.params.switch_epoch=1"] for a in ("--set", s)]
    common = ["--cache", str(cache), "--no-progress", *sets]
    assert main(["cv", str(REPO / "configs" / "ravdess_mars_egemaps.yaml"), "--out", str(tmp_path / "reader"), *common]) == 0
    assert main(["cv", str(config), "--data", str(manifest), "--out", str(tmp_path / "manifest"), *common]) == 0
    reader, ours = (json.loads((tmp_path / d / "results.json").read_text()) for d in ("reader", "manifest"))
    for a, b in zip(reader["folds"], ours["folds"], strict=True):
        for key in ("test_actors", "val_actors", "train_actors"):
            assert a[key] == [int(s) for s in b[key]]  # actors 1..6, speakers "01".."06"
        assert a["accuracy"] == b["accuracy"] and a["macro_f1"] == b["macro_f1"]
    assert reader["accuracy_mean"] == ours["accuracy_mean"]
    columns = ["clip", "fold", "label", "pred", *[c for c in pd.read_csv(tmp_path / "reader" / "predictions.csv") if c.startswith("prob_")]]
    pd.testing.assert_frame_equal(pd.read_csv(tmp_path / "reader" / "predictions.csv")[columns],
                                  pd.read_csv(tmp_path / "manifest" / "predictions.csv")[columns])
    assert load_config(tmp_path / "manifest" / "config.yaml").data.path == str(manifest)  # --data is recorded


@pytest.fixture(scope="module")
def audio_run(sample_manifest, cache, tmp_path_factory):
    """configs/manifest_audio.yaml on the manifest of the packaged RAVDESS sample, its path set with --set;
    transductive, so that CREMA-D's speakers (6 clips each, too few to enrol 10) are normalised with their own clips."""
    out = tmp_path_factory.mktemp("audio_run") / "run"
    assert main(["cv", str(REPO / "configs" / "manifest_audio.yaml"), "--set", f"data.path={sample_manifest}", "--out", str(out),
                 "--cache", str(cache), "--no-progress", *[a for s in [*TINY, "features.speaker_norm=transductive"]
                                                           for a in ("--set", s)]]) == 0
    return out


@requires_crema
def test_cross_corpus_evaluation_on_crema_d(audio_run, cache, tmp_path, capsys):
    assert main(["manifest", "crema-d", str(CREMA)]) == 0
    crema = tmp_path / "crema.csv"
    crema.write_text(capsys.readouterr().out)
    out = tmp_path / "eval"
    assert main(["evaluate", str(audio_run), "--data", str(crema), "--out", str(out), "--cache", str(cache), "--no-progress"]) == 0
    printed = capsys.readouterr().out
    assert "labels scored (12 of 12 rows, 2 speakers)" in printed and "run classes the data lacks: calm, surprised" in printed
    predictions = pd.read_csv(out / "predictions.csv")
    assert len(predictions) == 12 and set(predictions["speaker"]) == {1001, 1002}
    assert (predictions["label"] == predictions["target"]).all()  # CREMA-D's labels are the run's class names
    probs = predictions[[f"prob_{c}" for c in ("neutral", "calm", "happy", "sad", "angry", "fearful", "disgust", "surprised")]]
    assert np.allclose(probs.sum(axis=1), 1, atol=1e-4)
    assert (predictions["pred"] == probs.idxmax(axis=1).str[5:]).all()
    assert predictions["pred_shared"].isin(["neutral", "happy", "sad", "angry", "fearful", "disgust"]).all()
    result = json.loads((out / "evaluation.json").read_text())
    assert result["n_scored"] == 12 and result["classes_absent"] == ["calm", "surprised"]
    assert result["all_classes"]["accuracy"] == pytest.approx((predictions["pred"] == predictions["target"]).mean())
    assert result["shared_classes"]["accuracy"] == pytest.approx((predictions["pred_shared"] == predictions["target"]).mean())
    recalls = [(predictions.loc[predictions["target"] == c, "pred"] == c).mean() for c in set(predictions["target"])]
    assert result["all_classes"]["uar"] == pytest.approx(np.mean(recalls))
    confusion = pd.read_csv(out / "confusion.csv", index_col=0)
    assert confusion.values.sum() == 12 and list(confusion.columns)[:2] == ["neutral", "calm"]
    assert (out / "confusion_shared.png").stat().st_size > 0

    # a label map, a label left unmapped, and a speaker with one clip (normalised with training statistics)
    table = pd.read_csv(crema, dtype=str, keep_default_na=False)
    table.loc[table["label"] == "disgust", "label"] = "contempt"
    table.loc[table["label"] == "neutral", "label"] = "bored"
    table.loc[0, "speaker"] = "solo"
    table.to_csv(crema, index=False)
    assert main(["evaluate", str(audio_run), "--data", str(crema), "--out", str(out), "--cache", str(cache), "--no-progress",
                 "--label-map", "bored=calm"]) == 0
    printed = capsys.readouterr().out
    assert "bored -> calm" in printed and "not scored (no class of the run; map with --label-map): contempt (2 rows)" in printed
    result = json.loads((out / "evaluation.json").read_text())
    assert result["label_map"]["bored"] == "calm" and result["unmapped_labels"] == {"contempt": 2} and result["n_scored"] == 10
    assert result["speakers_with_training_statistics"] == ["solo"]
    predictions = pd.read_csv(out / "predictions.csv", keep_default_na=False)
    assert predictions.loc[predictions["speaker"] == "solo", "speaker_stats"].tolist() == ["audio:typical"]
    assert (predictions.loc[predictions["speaker"] != "solo", "speaker_stats"] == "audio:speaker").all()
    assert (predictions.loc[predictions["label"] == "contempt", "target"] == "").all()


def test_label_map_parsing_and_mapping():
    assert parse_label_map("calm=neutral, surprise=surprised") == {"calm": "neutral", "surprise": "surprised"}
    for bad in ("calm", "calm=", "a=b,a=c"):
        with pytest.raises(ConfigError, match="--label-map"):
            parse_label_map(bad)
    mapping, unmapped = map_labels(["neutral", "calm", "boredom"], ["neutral", "angry"], {"calm": "neutral"})
    assert mapping == {"neutral": "neutral", "calm": "neutral"} and unmapped == ["boredom"]
    with pytest.raises(ConfigError, match=r"maps to \['joy'\], which the run does not have"):
        map_labels(["happy"], ["happy"], {"happy": "joy"})


@requires_crema
def test_predict_reads_class_names_from_a_manifest_run(audio_run):
    predictor = Predictor(audio_run)
    assert predictor.class_names == ("neutral", "calm", "happy", "sad", "angry", "fearful", "disgust", "surprised")
    (entry,) = predictor.predict([CREMA / "1002_DFA_ANG_XX.mp3"])
    assert entry["modalities"] == ["audio"] and entry["pred"] in predictor.class_names
    assert entry["speaker_stats"] == {"audio": "typical"}  # a file on its own


@pytest.fixture(scope="module")
def feature_manifest(tmp_path_factory):
    return make_feature_manifest(tmp_path_factory.mktemp("features"), frames=6)


@pytest.mark.slow
def test_compare_sweep_predict_and_export_on_a_manifest_of_its_own_classes(feature_manifest, tmp_path):
    base = feature_manifest_config(feature_manifest, **{"model.encoders.audio": {"name": "cnn1d"}})
    ce = config_from_dict({**base, "name": "ce"})
    mars = config_from_dict({**base, "name": "mars", "loss": {"name": "mars", "params": {"switch_epoch": 2}}})
    summary = run_compare([Variant("ce", ce), Variant("mars", mars)], feature_manifest, tmp_path / "cmp", tmp_path / "cache",
                          seeds=1, progress=False)
    table = pd.read_csv(tmp_path / "cmp" / "comparison.csv")
    assert table["method"].tolist() == ["ce", "mars"] and (table["n_runs"] == 3).all()
    assert "plots/confusion_ce.png" in summary["plots"]
    runs = pd.read_csv(tmp_path / "cmp" / "runs.csv")
    assert (runs["accuracy"] > 1 / 3).mean() >= 0.5  # above chance on most folds

    sweep = run_sweep(ce, SearchSpace(params={"train.lr": [0.001, 0.01]}), feature_manifest, tmp_path / "sweep",
                      tmp_path / "cache", only_folds=[1], prune=False, progress=False)
    assert sweep["n_complete"] == 2 and sweep["folds"] == [1] and 0 <= sweep["test"]["accuracy_mean"] <= 1

    run = tmp_path / "cmp" / "ce" / "seed_0"
    predictor = Predictor(run)
    assert predictor.class_names == ("neutral", "negative", "positive")
    (entry,) = predictor.predict([feature_manifest])  # any file: both branches were trained on precomputed features
    assert entry["error"] == "no usable modality" and "precomputed features" in entry["missing"]["audio"]

    # scored on a manifest with one of its two modalities: the decision fusion averages the branch it has
    evaluation = evaluate_on_manifest(run, feature_manifest, tmp_path / "eval", tmp_path / "cache", modalities=["audio"],
                                      progress=False)
    assert evaluation["modalities"] == ["audio"] and evaluation["n_scored"] == 72 and evaluation["unmapped_labels"] == {}
    assert evaluation["all_classes"]["accuracy"] > 0.5  # seen data (this is a plumbing check): the audio signal is learnt
    with pytest.raises(ConfigError, match=r"--modalities \['text'\]: the run has \['audio', 'visual'\]"):
        evaluate_on_manifest(run, feature_manifest, tmp_path / "eval", tmp_path / "cache", modalities=["text"])

    result = export_run(run, fold=1, out=tmp_path / "model.onnx")
    described = json.loads((tmp_path / "model.json").read_text())
    assert described["class_names"] == ["neutral", "negative", "positive"] and described["sequence"]["audio"] is True
    assert result.max_abs_diff <= result.atol


@pytest.fixture(scope="module")
def inductive_run(feature_manifest, tmp_path_factory):
    """A cv run on the feature manifest (string speaker ids, classes of its own) with inductive normalisation."""
    config = config_from_dict(feature_manifest_config(feature_manifest, **{
        "model.encoders.audio": {"name": "cnn1d"}, "features.speaker_norm": "inductive", "features.adapt_clips": 4}))
    run = tmp_path_factory.mktemp("inductive") / "run"
    return run, run_cross_validation(config, feature_manifest, run, run.parent / "cache", progress=False)


def test_inductive_normalisation_of_string_speaker_ids_in_cv_and_cross_corpus(feature_manifest, inductive_run, tmp_path):
    """Enrolment clips are drawn per speaker id of any kind ("spk10"), in cv and when the run is scored on a manifest:
    the other corpus's speakers enrol the same way (same seed, same draw) and their enrolment clips are never scored;
    a speaker with no clip to spare gets the typical training speaker's statistics."""
    run, summary = inductive_run
    speakers = ["spk1", "spk2", "spk3", "spk10", "spk11", "spk12"]
    assert [f["test_actors"] for f in summary["folds"]] == [speakers[:2], speakers[2:4], speakers[4:]]
    assert all(f["n_test"] == 8 * 2 for f in summary["folds"])  # 12 clips per speaker, 4 of them enrolment
    assert sorted(summary["enrolment_clips"]) == sorted(speakers)
    assert all(len(clips) == 4 and all(c.startswith(s + "_") for c in clips) for s, clips in summary["enrolment_clips"].items())

    table = pd.read_csv(feature_manifest, dtype=str)
    other = tmp_path / "other.csv"
    table[(table["speaker"] != "spk12") | table["id"].str.endswith("_0")].to_csv(other, index=False)  # spk12: 3 clips
    (tmp_path / "features").symlink_to(feature_manifest.parent / "features")
    result = evaluate_on_manifest(run, other, tmp_path / "eval", tmp_path / "cache", progress=False)
    enrolment = pd.read_csv(tmp_path / "eval" / "enrolment.csv", dtype=str)
    assert {s: sorted(g["id"]) for s, g in enrolment.groupby("speaker")} == \
        {s: c for s, c in summary["enrolment_clips"].items() if s != "spk12"}  # cv's draw
    assert result["n_enrolment"] == 20 and result["n_scored"] == 5 * 8 + 3
    assert result["speakers_with_training_statistics"] == ["spk12"]
    predictions = pd.read_csv(tmp_path / "eval" / "predictions.csv", dtype=str)
    assert not set(predictions["id"]) & set(enrolment["id"])
    assert set(predictions.loc[predictions["speaker"] == "spk12", "speaker_stats"]) == {"audio:typical,visual:typical"}
    assert set(predictions.loc[predictions["speaker"] != "spk12", "speaker_stats"]) == {"audio:speaker,visual:speaker"}


@requires_crema
def test_report_and_serve_of_a_manifest_run_show_its_speakers_and_classes(inductive_run):
    """The web side reads a manifest run as it is: string speaker ids, the data's class names, enrolment clips."""
    run, summary = inductive_run
    page = Page(render_report(run))
    assert [row[1] for row in page.tables["folds"][1:]] == [", ".join(f["test_actors"]) for f in summary["folds"]]
    assert [row[0] for row in page.tables["classes"][1:]] == ["neutral", "negative", "positive"]
    assert dict(page.tables["summary"])["speaker normalisation"] == ("inductive (4 enrolment clips per held-out "
                                                                     "speaker, never scored; 24 in all)")

    with TestClient(create_app(Predictor(run))) as client:
        assert client.get("/api/model").json()["classes"] == ["neutral", "negative", "positive"]
        clip = CREMA / "1002_DFA_ANG_XX.mp3"
        response = client.post("/api/predict", files={"file": (clip.name, clip.read_bytes(), "audio/mpeg")})
    assert response.status_code == 422 and response.json()["problem"] == "no_prediction"  # trained on .npy features
    assert "precomputed features" in response.json()["entry"]["missing"]["audio"]


def crema_pseudo_speakers(path):
    """The six real CREMA-D videos (one actor) under four pseudo-speaker ids, so that speaker-independent folds exist;
    the same clips appear under every id, so a fold's test clips were also seen in training under another id: this
    checks the plumbing from video files to predictions, not emotion recognition."""
    rows = [{"id": f"p{s}_{v.stem}", "speaker": f"p{s}", "label": v.stem.split("_")[2], "video": str(v)}
            for s in range(1, 5) for v in sorted(CREMA.glob("*.flv"))]
    pd.DataFrame(rows).to_csv(path, index=False)
    return path


@requires_crema
@pytest.mark.slow
def test_audio_and_faces_from_the_crema_d_videos_end_to_end(tmp_path, capsys):
    """configs/manifest_av.yaml on the real videos: audio from each video's own track (eGeMAPS) and face features
    from its frames (expression probabilities + HOG), no OpenFace; then predict and export the run."""
    manifest = crema_pseudo_speakers(tmp_path / "crema_av.csv")
    run = tmp_path / "run"
    assert main(["cv", str(REPO / "configs" / "manifest_av.yaml"), "--data", str(manifest), "--out", str(run),
                 "--cache", str(tmp_path / "cache"), "--no-progress", "--set", "train.epochs=6",
                 "--set", "train.early_stopping.min_epochs=0", "--set", "protocol.n_folds=2", "--set", "train.batch_size=8",
                 "--set", "features.speaker_norm=none"]) == 0  # pseudo-speakers of a few clips: too few to enrol with
    results = json.loads((run / "results.json").read_text())
    record = json.loads((run / "data_fingerprint.json").read_text())
    assert record["class_names"] == ["ANG", "DIS", "FEA", "HAP", "NEU", "SAD"]  # labels as written: not common names
    assert record["feature_dims"] == {"audio": 3072, "visual": 7 + 1764}  # Whisper base: 3 layers x (mean, std) x 512
    face = results["face_detection"]
    assert face["videos"] == 24 and face["sampled_frames"] == 24 * 16 and face["sampled_frames_without_face"] == 0
    assert face["frames_analysed"] <= 24 * 17  # only about the sampled frames are analysed (the clips last about 2 s)
    assert results["n_clips"] == 24 and [f["test_actors"] for f in results["folds"]] == [["p1", "p2"], ["p3", "p4"]]
    assert results["accuracy_mean"] > 1 / 6  # the same clips under other ids: far above chance once learnt

    predictor = Predictor(run)
    entries = predictor.predict([CREMA / "1001_DFA_HAP_XX.flv", CREMA / "1002_DFA_HAP_XX.mp3"])
    video, audio_only = entries
    assert video["modalities"] == ["audio", "visual"] and video["face"]["sampled_with_face"] == 16
    assert audio_only["modalities"] == ["audio"] and audio_only["missing"] == {"visual": "no video stream in the file"}
    assert set(video["probs"]) == {"ANG", "DIS", "FEA", "HAP", "NEU", "SAD"}

    assert main(["export", str(run), "--fold", "1"]) == 0
    assert "fold 1 exported as onnx" in capsys.readouterr().out
