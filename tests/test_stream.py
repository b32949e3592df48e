"""Live input (issue 25): `Predictor.stream` and `emofuse predict --stream`, on models fitted for one epoch on the
packaged sample."""

import json
import time

import librosa
import numpy as np
import pytest
import soundfile as sf

from emofuse.cli import main
from emofuse.config.loading import load_config
from emofuse.data.audio import load_audio
from emofuse.protocol.final_fit import fit_final
from emofuse.inference.predict import LIVE_AUDIO_ONLY, Predictor
from emofuse.inference.stream import audio_chunks
from emofuse.core.registry import ConfigError
from emofuse.data.sample import sample_dir

from conftest import REPO

RATE = 16000


@pytest.fixture(scope="module")
def fitted(tmp_path_factory):
    """configs/ravdess_ce_egemaps.yaml (eGeMAPS and OpenFace AU MLPs, averaged decisions, speaker normalisation) and
    its visual branch alone, each fitted for 2 epochs on the packaged sample."""
    root = tmp_path_factory.mktemp("stream")
    runs = {"av": [], "visual": ["data.modalities=[visual]", "model.encoders={visual: {name: mlp}}"]}
    for name, extra in runs.items():
        config = load_config(REPO / "configs" / "ravdess_ce_egemaps.yaml", ["features.workers=1", *extra])
        fit_final(config, sample_dir(), root / name, root / "cache", epoch=1, progress=False)
    return root


@pytest.fixture(scope="module")
def predictor(fitted):
    return Predictor(fitted / "av")


@pytest.fixture(scope="module")
def speech():
    """Three of the sample's takes of one actor, end to end: 10.1 s of speech and pauses at 16 kHz."""
    files = sorted((sample_dir() / "audio16k" / "Actor_01").glob("*.flac"))[:3]
    return np.concatenate([load_audio(f, RATE) for f in files])


def windows(predictor, wave, chunk_s=0.1, **kwargs):
    return [(w.start_s, w.end_s, w.probs, w.pred) for w in predictor.stream(audio_chunks(wave, RATE, chunk_s), **kwargs)]


@pytest.mark.slow
def test_windows_come_every_hop_once_a_window_is_in(predictor, speech):
    fed = []  # samples received by the stream when each chunk is taken

    def chunks(wave):
        for chunk in audio_chunks(wave, RATE, 0.1):
            fed.append((fed[-1] if fed else 0) + len(chunk))
            yield chunk

    received = []
    for w in predictor.stream(chunks(speech[:int(7.5 * RATE)])):
        received.append(fed[-1])
        assert w.latency_s >= 0 and w.pred == max(w.probs, key=w.probs.get)
        assert sum(w.probs.values()) == pytest.approx(1, abs=1e-4)
    # default 3 s window, 1 s hop: each window is given as soon as the chunk that ends it arrives
    assert received == [3 * RATE, 4 * RATE, 5 * RATE, 6 * RATE, 7 * RATE]
    spans = [(s, e) for s, e, _, _ in windows(predictor, speech[:int(3.2 * RATE)], window_s=2.0, hop_s=0.5)]
    assert spans == [(0.0, 2.0), (0.5, 2.5), (1.0, 3.0)]
    spans = [(s, e) for s, e, _, _ in windows(predictor, speech[:7 * RATE], window_s=1.5, hop_s=2.5)]
    assert spans == [(0.0, 1.5), (2.5, 4.0), (5.0, 6.5)]  # a hop longer than the window skips audio


def test_a_window_is_predicted_as_its_audio_in_a_file(predictor, speech, tmp_path):
    """Same features, typical-speaker statistics and fusion (audio only: the visual branch is left out) as predict."""
    streamed = windows(predictor, speech, window_s=2.0, hop_s=1.5)
    assert len(streamed) == 6
    for i, (start, end, probs, pred) in enumerate(streamed):
        wav = tmp_path / f"window{i}.wav"
        sf.write(wav, speech[round(start * RATE):round(end * RATE)], RATE, subtype="FLOAT")
        (entry,) = predictor.predict([wav])
        assert entry["modalities"] == ["audio"] and entry["speaker_stats"] == {"audio": "typical"}
        assert entry["pred"] == pred
        assert probs == pytest.approx(entry["probs"], abs=1e-5)
    assert len({tuple(probs.values()) for _, _, probs, _ in streamed}) == len(streamed)  # the windows are told apart
    first = next(predictor.stream(audio_chunks(speech, RATE, 0.1)))
    assert first.missing == {"visual": LIVE_AUDIO_ONLY} == {"visual": "not streamed: live input is audio only"}


def test_chunk_size_does_not_change_the_windows(predictor, speech):
    reference = windows(predictor, speech)
    assert len(reference) == 8
    assert windows(predictor, speech, chunk_s=0.37) == reference
    assert windows(predictor, speech, chunk_s=20.0) == reference  # one chunk completes every window
    rng = np.random.default_rng(0)
    cuts = np.sort(rng.integers(0, len(speech), 40))  # uneven chunks, some empty
    assert [(w.start_s, w.end_s, w.probs, w.pred) for w in predictor.stream(np.split(speech, cuts))] == reference


def test_a_stream_at_another_rate_is_resampled_as_one_recording(predictor, speech):
    at_48k = librosa.resample(speech, orig_sr=RATE, target_sr=48000, res_type="soxr_hq")
    offline = windows(predictor, librosa.resample(at_48k, orig_sr=48000, target_sr=RATE, res_type="soxr_hq"))
    for chunk_s in (0.1, 0.33):
        live = [(w.start_s, w.end_s, w.probs, w.pred)
                for w in predictor.stream(audio_chunks(at_48k, 48000, chunk_s), sample_rate=48000)]
        assert [w[:2] for w in live] == [w[:2] for w in offline]
        for (_, _, probs, _), (_, _, expected, _) in zip(live, offline):
            assert probs == pytest.approx(expected, abs=1e-5)


def test_a_stream_shorter_than_a_window_yields_nothing(predictor, speech):
    assert windows(predictor, speech[:3 * RATE - 1]) == []
    assert list(predictor.stream([])) == []
    assert [w[:2] for w in windows(predictor, speech[:3 * RATE])] == [(0.0, 3.0)]


def test_runs_that_cannot_stream_are_refused_when_the_stream_starts(fitted, predictor, monkeypatch, tmp_path, capsys):
    with pytest.raises(ConfigError, match=r"modalities are \['visual'\]; live input is audio, which only a run with an "
                                          "audio branch can take"):
        Predictor(fitted / "visual").stream([])  # refused at the call, before any audio is taken
    wav = tmp_path / "speech.wav"
    sf.write(wav, np.zeros(4 * RATE, np.float32), RATE)
    assert main(["predict", str(fitted / "visual"), "--stream", str(wav)]) == 2
    assert "only a run with an audio branch" in capsys.readouterr().err
    monkeypatch.setattr(predictor, "can_drop", False)  # as for a feature-level fusion with its own classifier
    with pytest.raises(ConfigError, match="fusion 'average' combines the modalities before its own classifier and "
                                          "cannot leave out visual, which live input does not have"):
        predictor.stream([])


@pytest.mark.slow
def test_predict_stream_command(fitted, predictor, speech, tmp_path, capsys):
    wav = tmp_path / "speech.wav"
    sf.write(wav, speech[:int(5.5 * RATE)], RATE, subtype="FLOAT")
    run = str(fitted / "av")
    assert main(["predict", run, "--stream", str(wav), "--fast", "--json"]) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    expected = windows(predictor, speech[:int(5.5 * RATE)], chunk_s=0.1)
    assert [(e["start_s"], e["end_s"], e["probs"], e["pred"]) for e in lines] == expected
    assert main(["predict", run, "--stream", str(wav), "--fast", "--window", "2", "--hop", "1.5", "--chunk-ms", "250"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert [line.split(" s ")[0].split() for line in out] == [["0.00-", "2.00"], ["1.50-", "3.50"], ["3.00-", "5.00"]]
    assert all("latency" in line and line.split()[3] in predictor.class_names for line in out)
    short = tmp_path / "short.wav"
    sf.write(short, speech[:int(2.2 * RATE)], RATE, subtype="FLOAT")
    started = time.perf_counter()  # without --fast the file is fed at the pace it was recorded
    assert main(["predict", run, "--stream", str(short), "--window", "2"]) == 0
    assert time.perf_counter() - started >= 2.2
    captured = capsys.readouterr()
    assert len(captured.out.splitlines()) == 1 and f"visual missing: {LIVE_AUDIO_ONLY}" in captured.err
    assert main(["predict", run, "--stream", str(wav), "--fast", "--window", "6"]) == 1
    assert "shorter than the 6 s window, nothing predicted" in capsys.readouterr().err
    assert main(["predict", run, str(wav), "--stream", str(wav)]) == 2
    assert "--stream plays one file" in capsys.readouterr().err
