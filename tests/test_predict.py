"""`emofuse predict`: a tiny cross-validation run on the packaged RAVDESS sample (or the RAVDESS-shaped fixture),
then real CREMA-D and RAVDESS media."""

import json
import math
import shutil

import numpy as np
import pytest

from emofuse.cli import main
from emofuse.config.loading import load_config
from emofuse.protocol.cross_validation import run_cross_validation
from emofuse.datasets.normalize import Enrolment
from emofuse.inference.predict import Predictor
from emofuse.core.registry import ConfigError
from emofuse.data.sample import sample_dir

from conftest import AU_NAMES, RAVDESS, REPO, make_ravdess_fixture, requires_shared_data
from test_media import CREMA, requires_crema, write_video
from test_openface import write_openface_csv

TINY = ["protocol.n_folds=2", "train.epochs=3", "train.early_stopping.min_epochs=0", "features.workers=1",
        "loss.params.switch_epoch=1"]


def train_tiny(tmp_path_factory, config: str, extra: list[str], data=None):
    root = tmp_path_factory.mktemp(config.split("/")[-1].split(".")[0])
    data = data or make_ravdess_fixture(root / "ravdess", actors=range(1, 5), sample_rate=16000)
    cfg = load_config(REPO / config, TINY + extra)
    run_cross_validation(cfg, data, root / "run", root / "cache", progress=False)
    return root / "run"


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    """configs/ravdess_mars_egemaps.yaml (eGeMAPS + AU MLPs, speaker normalisation, Mars loss), shrunk to 2 folds, 3 epochs,
    on the packaged sample: real speakers, so that a typical training speaker's statistics are realistic."""
    return train_tiny(tmp_path_factory, "configs/ravdess_mars_egemaps.yaml", [], data=sample_dir())


@pytest.fixture(scope="module")
def predictor(run_dir):
    return Predictor(run_dir)


FLV = sorted(CREMA.glob("*.flv"))
MP3 = sorted(CREMA.glob("*.mp3"))
FLAC = sorted((RAVDESS / "audio16k" / "Actor_01").glob("*.flac"))[:3]


def check_entry(entry, class_names):
    assert set(entry) >= {"file", "pred", "probs", "modality_probs", "modalities", "missing"}
    probs = np.array([entry["probs"][c] for c in class_names])
    assert abs(probs.sum() - 1) < 1e-4 and (probs >= 0).all()
    assert entry["pred"] == class_names[int(np.argmax(probs))]


@pytest.mark.slow
def test_each_fold_saves_its_standardisation(run_dir):
    for fold in (1, 2):
        state = json.loads((run_dir / "folds" / f"fold_{fold}" / "standardizer.json").read_text())
        assert sorted(state["inputs"]) == sorted(state["typical_speaker"]) == ["audio", "visual"]
        assert len(state["inputs"]["visual"]["mean"]) == len(AU_NAMES)
        assert min(state["inputs"]["audio"]["std"]) > 0


@requires_crema
def test_crema_clips_audio_only_and_deterministic(run_dir, predictor, capsys):
    entries = predictor.predict(FLV)
    assert [e["file"] for e in entries] == [str(f) for f in FLV]
    for e in entries:
        check_entry(e, predictor.class_names)
        assert e["modalities"] == ["audio"] and list(e["modality_probs"]) == ["audio"]
        assert "--openface" in e["missing"]["visual"]
        assert e["speaker"] is None and e["speaker_stats"] == {"audio": "typical"} and "warnings" not in e
        # decision fusion over the one branch left is that branch's probabilities
        assert e["probs"] == pytest.approx(e["modality_probs"]["audio"], abs=1e-5)
    assert len({tuple(e["probs"].values()) for e in entries}) > 1  # the clips are told apart
    # the command line gives the same, twice, byte for byte
    outputs = []
    for _ in range(2):
        assert main(["predict", str(run_dir), *map(str, FLV), "--json"]) == 0
        outputs.append(capsys.readouterr().out)
    assert outputs[0] == outputs[1]
    assert json.loads(outputs[0]) == entries


def probabilities(entries) -> list:
    return [(e["probs"], e["modality_probs"]) for e in entries]


@pytest.mark.slow
@requires_crema
@requires_shared_data()
def test_a_file_gets_the_same_answer_alone_and_in_any_batch(predictor):
    """Issue 12: 1002_DFA_ANG_XX.mp3 alone and with other speakers' files in the same call."""
    files = [*MP3, *FLV[:3], *FLAC]
    alone = [predictor.predict([f])[0] for f in files]
    batch = predictor.predict(files)
    assert probabilities(batch) == probabilities(alone)
    assert probabilities(predictor.predict(files[::-1])) == probabilities(alone[::-1])
    assert len({tuple(e["probs"].values()) for e in alone}) == len(files)  # the files are told apart


@pytest.mark.slow
@requires_crema
def test_a_named_speaker_is_normalised_with_its_files(predictor, caplog):
    alone = predictor.predict(MP3)
    entries = predictor.predict(MP3, speakers="1002")
    for e in entries:
        check_entry(e, predictor.class_names)
        assert e["speaker"] == "1002" and e["speaker_stats"] == {"audio": "speaker"}
        # 6 files, fewer than the run's features.adapt_clips (10): a warning in every entry and in the log
        assert any("statistics from 6 files, fewer than the run's features.adapt_clips (10)" in w for w in e["warnings"])
    assert "fewer than the run's features.adapt_clips" in caplog.text
    assert probabilities(entries) != probabilities(alone)  # the speaker's statistics are used
    # the group's statistics come from the group's files only: other speakers' files in the call change nothing
    mixed = predictor.predict([*FLV[:2], *MP3], speakers={**{f.name: "1001" for f in FLV[:2]}, **{str(f): "1002" for f in MP3}})
    assert probabilities(mixed[2:]) == probabilities(entries)
    assert [e["speaker"] for e in mixed] == ["1001"] * 2 + ["1002"] * 6
    (single,) = predictor.predict(MP3[:1], speakers="solo")  # one file: no statistics of its own
    assert single["speaker_stats"] == {"audio": "typical"} and "no statistics of its own" in single["warnings"][0]
    assert single["probs"] == alone[0]["probs"]


@pytest.mark.slow
@requires_crema
def test_a_speaker_group_goes_through_the_runs_enrolment_estimator(run_dir, predictor):
    """predict's speaker groups use the estimator each fold chose (standardizer.json), as cv's held-out speakers did."""
    for fold in predictor.folds:
        state = json.loads((run_dir / "folds" / f"fold_{fold.index}" / "standardizer.json").read_text())
        assert fold.enrolment == {m: Enrolment.from_dict(e) for m, e in state["enrolment"].items()}
    alone, grouped = predictor.predict(MP3), predictor.predict(MP3, speakers="1002")
    saved = [fold.enrolment for fold in predictor.folds]
    try:
        for fold in predictor.folds:  # an estimator that ignores the group's files: the group changes nothing
            fold.enrolment = {m: Enrolment(math.inf, math.inf) for m in fold.enrolment}
        assert probabilities(predictor.predict(MP3, speakers="1002")) == probabilities(alone)
        for fold in predictor.folds:  # the group's own statistics, floored: another answer than the chosen estimator's
            fold.enrolment = {m: Enrolment(0.0, 0.0) for m in fold.enrolment}
        own = predictor.predict(MP3, speakers="1002")
        assert probabilities(own) != probabilities(alone)
    finally:
        for fold, enrolment in zip(predictor.folds, saved):
            fold.enrolment = enrolment
    assert probabilities(predictor.predict(MP3, speakers="1002")) == probabilities(grouped)


@requires_crema
def test_speaker_map_from_the_command_line(run_dir, predictor, tmp_path, capsys):
    speakers = tmp_path / "speakers.csv"
    speakers.write_text("file,speaker\n" + "".join(f"{f.name},1002\n" for f in MP3) + f"{FLV[0]},1001\n")
    assert main(["predict", str(run_dir), *map(str, MP3), str(FLV[0]), "--speakers", str(speakers), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out[:6] == predictor.predict(MP3, speakers="1002")
    assert out[6]["speaker"] == "1001" and out[6]["speaker_stats"] == {"audio": "typical"}  # alone in its group
    assert main(["predict", str(run_dir), *map(str, MP3), str(FLV[1]), "--speakers", str(speakers)]) == 2
    assert f"speaker map: no speaker for {FLV[1]}" in capsys.readouterr().err
    speakers.write_text("path,speaker\nx.mp3,1\n")
    assert main(["predict", str(run_dir), str(MP3[0]), "--speakers", str(speakers)]) == 2
    assert "needs the columns file and speaker" in capsys.readouterr().err
    with pytest.raises(SystemExit):  # one way of naming speakers at a time
        main(["predict", str(run_dir), str(MP3[0]), "--speakers", str(speakers), "--speaker", "a"])


@requires_crema
def test_openface_output_feeds_the_visual_branch(predictor, tmp_path):
    openface = tmp_path / "openface"
    rng = np.random.default_rng(0)
    write_openface_csv(openface / f"{FLV[0].stem}.csv", rng.random((30, len(AU_NAMES))), [1] * 30, [0.95] * 30)
    (openface / f"{FLV[1].stem}.csv").write_text("frame, success\n1, 1\n")  # no action-unit columns
    entries = predictor.predict(FLV[:3], openface_dir=openface)
    full, bad, absent = entries
    check_entry(full, predictor.class_names)
    assert full["modalities"] == ["audio", "visual"] and full["missing"] == {}
    mean = [(full["modality_probs"]["audio"][c] + full["modality_probs"]["visual"][c]) / 2 for c in predictor.class_names]
    assert list(full["probs"].values()) == pytest.approx(mean, abs=1e-5)  # average decision fusion, over folds too
    assert bad["modalities"] == ["audio"] and "no OpenFace action-unit columns" in bad["missing"]["visual"]
    assert str(openface / f"{FLV[1].stem}.csv") in bad["missing"]["visual"]
    assert "no OpenFace output" in absent["missing"]["visual"]


def test_files_without_a_usable_modality_get_error_entries(run_dir, tmp_path, capsys):
    silent = write_video(tmp_path / "silent.mp4", np.full((10, 64, 64, 3), 50, np.uint8))
    corrupt = tmp_path / "corrupt.webm"
    corrupt.write_bytes(b"\x1aE\xdf\xa3" + bytes(300))
    wav = tmp_path / "tone.wav"
    import soundfile as sf

    sf.write(wav, (0.2 * np.sin(np.arange(16000) / 5)).astype(np.float32), 16000)
    code = main(["predict", str(run_dir), str(silent), str(corrupt), str(tmp_path / "gone.mp4"), str(wav), "--json"])
    assert code == 1
    silent_e, corrupt_e, gone_e, wav_e = json.loads(capsys.readouterr().out)
    assert "no audio stream" in silent_e["missing"]["audio"] and silent_e["error"] == "no usable modality"
    assert silent_e["pred"] is None and silent_e["probs"] is None
    assert corrupt_e["error"].startswith(f"{corrupt}: not an audio or video file") and corrupt_e["missing"] == {}
    assert gone_e["error"] == f"{tmp_path / 'gone.mp4'}: file does not exist"
    assert wav_e["pred"] is not None and "error" not in wav_e


@requires_crema
def test_predict_refuses_the_files_serve_refuses_in_the_same_words(run_dir, predictor, tmp_path, monkeypatch, capsys):
    """Issue 22: an empty file, a truncated mp3 and a file that is not media get, from `emofuse predict`, the refusal
    `emofuse serve` answers (one check, data.media.check_media), and the other files of the call are still predicted."""
    from starlette.testclient import TestClient

    from emofuse.serve.app import create_app

    whole = MP3[0].read_bytes()
    bad = {"empty.mp3": (b"", "empty_file", "empty.mp3: empty file (0 bytes)"),
           "cut.mp3": (whole[: len(whole) // 2], "truncated", "cut.mp3: truncated: the container announces 2.61 s, only 1.31 s"),
           "notes.wav": (b"these are my notes, not a recording\n" * 20, "not_media", "notes.wav: not an audio or video file")}
    for name, (data, _, _) in bad.items():
        (tmp_path / name).write_bytes(data)
    (tmp_path / "whole.mp3").write_bytes(whole)
    monkeypatch.chdir(tmp_path)  # files named as serve names them, without a directory
    assert main(["predict", str(run_dir), "empty.mp3", "cut.mp3", "whole.mp3", "notes.wav", "--json"]) == 1
    entries = {e["file"]: e for e in json.loads(capsys.readouterr().out)}
    check_entry(entries["whole.mp3"], predictor.class_names)
    with TestClient(create_app(predictor)) as client:
        for name, (data, problem, words) in bad.items():
            response = client.post("/api/predict", files={"file": (name, data, "application/octet-stream")})
            assert response.status_code == 422 and response.json()["problem"] == problem, response.text
            assert entries[name]["error"] == response.json()["error"] and entries[name]["error"].startswith(words)
            assert entries[name]["pred"] is None and entries[name]["modalities"] == []


def test_a_fusion_that_cannot_drop_a_modality_gives_an_error_entry(predictor, tmp_path, monkeypatch):
    wav = tmp_path / "tone.wav"
    import soundfile as sf

    sf.write(wav, (0.2 * np.sin(np.arange(16000) / 7)).astype(np.float32), 16000)
    assert predictor.can_drop  # average fusion
    monkeypatch.setattr(predictor, "can_drop", False)  # as for a feature-level fusion with its own classifier
    (entry,) = predictor.predict([wav])
    assert entry["pred"] is None and "cannot leave out visual" in entry["error"]


def test_run_directory_problems_are_clear(run_dir, tmp_path, capsys):
    old = tmp_path / "old_run"
    shutil.copytree(run_dir, old)
    (old / "folds" / "fold_2" / "standardizer.json").unlink()
    with pytest.raises(ConfigError, match=r"fold_2/standardizer.json does not exist: this run was made before"):
        Predictor(old)
    assert len(Predictor(old, fold=1).folds) == 1  # a fold that has it still works on its own
    (old / "folds" / "fold_1" / "best.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(ConfigError, match="fold_1/best.pt: cannot load the fold's weights into the run's model"):
        Predictor(old, fold=1)
    with pytest.raises(ConfigError, match="fold 7 is not a finished fold"):
        Predictor(run_dir, fold=7)
    assert main(["predict", str(tmp_path), str(tmp_path / "x.wav")]) == 2
    assert "no config.yaml" in capsys.readouterr().err


def test_table_output(run_dir, tmp_path, capsys, caplog):
    wav = tmp_path / "tone.wav"
    import soundfile as sf

    sf.write(wav, (0.2 * np.sin(np.arange(24000) / 3)).astype(np.float32), 48000)
    assert main(["predict", str(run_dir), str(wav), "--speaker", "me"]) == 0
    captured = capsys.readouterr()
    out = captured.out
    assert "tone.wav" in out and "visual missing: not given" in out and "neu" in out
    # the speaker warning is said once: logged, not again under the table
    assert (out + captured.err + caplog.text).count("speaker me: 1 file, no statistics of its own") == 1


def test_classes_and_min_confidence_on_the_command_line_the_api_and_serve(run_dir, tmp_path, capsys):
    """predict --classes answers among the named classes (renormalised), --min-confidence flags an answer below it; the
    Python API and serve's /api/predict take the same."""
    import soundfile as sf
    from starlette.testclient import TestClient

    from emofuse.api import load_run
    from emofuse.serve.app import create_app

    wav = tmp_path / "tone.wav"
    sf.write(wav, (0.2 * np.sin(np.arange(24000) / 3)).astype(np.float32), 48000)
    assert main(["predict", str(run_dir), str(wav), "--json"]) == 0
    (full,) = json.loads(capsys.readouterr().out)
    assert main(["predict", str(run_dir), str(wav), "--json", "--classes", "angry,happy,neutral,sad",
                 "--min-confidence", "1"]) == 0
    (kept,) = json.loads(capsys.readouterr().out)
    total = sum(full["probs"][c] for c in ("angry", "happy", "neutral", "sad"))
    assert list(kept["probs"]) == ["neutral", "happy", "sad", "angry"]  # the model's order
    assert kept["probs"] == pytest.approx({c: full["probs"][c] / total for c in kept["probs"]}, abs=1e-5)
    assert kept["uncertain"] is True and "uncertain" not in full
    assert main(["predict", str(run_dir), str(wav), "--classes", "angry,happy,neutral,sad", "--min-confidence", "1"]) == 0
    out = capsys.readouterr().out
    assert f"uncertain ({kept['pred']} {kept['probs'][kept['pred']]:.2f})" in out and "cal" not in out
    assert main(["predict", str(run_dir), str(wav), "--classes", "angry,hapy"]) == 2
    assert "'hapy' is not a class of the model" in capsys.readouterr().err

    answer = load_run(run_dir).predict(wav, classes=["angry", "happy", "neutral", "sad"], min_confidence=0.01)
    assert answer.probs == pytest.approx(kept["probs"], abs=1e-5) and answer.uncertain is False
    assert load_run(run_dir).predict(wav).uncertain is None

    with TestClient(create_app(Predictor(run_dir))) as client:
        answer = client.post("/api/predict?classes=angry,happy,neutral,sad&min_confidence=1",
                             files={"file": (wav.name, wav.read_bytes(), "audio/wav")}).json()
        assert answer["probs"] == kept["probs"] and answer["uncertain"] is True
        refused = client.post("/api/predict?classes=angry,hapy", files={"file": (wav.name, wav.read_bytes(), "audio/wav")})
        assert refused.status_code == 400 and "did you mean 'happy'" in refused.json()["error"]


def test_frame_sequence_models_predict(tmp_path_factory, tmp_path):
    """The paper's audio branch (1D CNN over MFCC frames): variable-length sequences go through predict."""
    run = train_tiny(tmp_path_factory, "configs/ravdess_mars_cnn.yaml",
                     ["model.encoders.audio.params.channels=[8,8]", "train.crop_frames=null"])
    import soundfile as sf

    files = []
    for i, seconds in enumerate((0.4, 0.9)):
        files.append(tmp_path / f"clip{i}.flac")
        sf.write(files[-1], (0.2 * np.sin(np.arange(int(16000 * seconds)) / (3 + i))).astype(np.float32), 16000)
    predictor = Predictor(run)
    entries = predictor.predict(files)
    for e in entries:
        check_entry(e, predictor.class_names)
    assert entries[0]["probs"] != entries[1]["probs"]
    assert [predictor.predict([f])[0] for f in files] == entries  # each file on its own, frames too
    grouped = predictor.predict(files, speakers="s")
    assert all(e["speaker_stats"] == {"audio": "speaker"} for e in grouped)
