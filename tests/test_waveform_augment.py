"""Recording conditions on waveforms (data/waveform_augment.py) and their cached copies (features/conditioned.py)."""

from __future__ import annotations

import logging
import numpy as np
import pytest
from pydantic import ValidationError
from scipy.signal import welch

from emofuse.config.schema import FeaturesConfig, ProtocolConfig
from emofuse.data.audio import load_audio
from emofuse.data.waveform_augment import (Codec, Gain, Noise, Pitch, Reverb, Speed, Telephone, condition_rng,
                                           corrupt, room_response)
from emofuse.features import EXTRACTORS
from emofuse.features.cache import FeatureCache
from emofuse.features.extract import extract_features
from tests.conftest import RAVDESS, requires_shared_data

RATE = 16000
CLIP = RAVDESS / "audio16k" / "Actor_01" / "03-01-05-01-01-01-01.flac"  # angry, "Kids are talking by the door"


def tone(seconds: float = 1.0, freqs=(150.0, 1000.0, 5000.0)) -> np.ndarray:
    t = np.arange(int(seconds * RATE)) / RATE
    return (0.2 * sum(np.sin(2 * np.pi * f * t) for f in freqs)).astype(np.float32)


def snr_db(clean: np.ndarray, noisy: np.ndarray) -> float:
    noise = noisy.astype(np.float64) - clean
    return 10 * np.log10(np.mean(clean.astype(np.float64) ** 2) / np.mean(noise ** 2))


def band_power(wave: np.ndarray, low: float, high: float) -> float:
    f, p = welch(wave, RATE, nperseg=2048)
    return float(p[(f >= low) & (f < high)].sum())


@pytest.mark.parametrize("color", ["white", "pink", "brown"])
@pytest.mark.parametrize("snr", [0.0, 10.0, 20.0])
def test_noise_has_the_asked_snr(color, snr):
    wave = tone()
    noisy = corrupt(wave, RATE, [Noise(snr_db=snr, color=color)], np.random.default_rng(1))
    assert abs(snr_db(wave, noisy) - snr) < 0.5


def test_noise_colours_tilt_the_spectrum():
    """Density per Hz falls 0, 3 and 6 dB per octave: 0, 15 and 30 dB over the five octaves 150 Hz -> 4.8 kHz."""
    for color, tilt in (("white", 0.0), ("pink", 15.0), ("brown", 30.0)):
        noise = corrupt(np.full(RATE * 4, 1e-3, np.float32), RATE, [Noise(snr_db=-40, color=color)],
                        np.random.default_rng(0))
        f, p = welch(noise, RATE, nperseg=4096)
        density = lambda centre: p[(f > centre / 1.2) & (f < centre * 1.2)].mean()  # noqa: E731
        assert 10 * np.log10(density(150) / density(4800)) == pytest.approx(tilt, abs=2.0)


def test_gain_scales_and_clips():
    wave = tone()
    quieter = corrupt(wave, RATE, [Gain(gain_db=-20)], np.random.default_rng(0))
    np.testing.assert_allclose(quieter, wave * 0.1, rtol=1e-5, atol=1e-7)
    louder = corrupt(wave, RATE, [Gain(gain_db=20)], np.random.default_rng(0))
    assert np.abs(louder).max() == pytest.approx(1.0) and (np.abs(louder) == 1.0).mean() > 0.3


def test_telephone_keeps_the_band_only():
    wave = tone(freqs=(100.0, 1000.0, 6000.0))
    line = corrupt(wave, RATE, [Telephone()], np.random.default_rng(0))
    assert len(line) == len(wave)
    kept = band_power(line, 900, 1100) / band_power(wave, 900, 1100)
    low = band_power(line, 50, 200) / band_power(wave, 50, 200)
    high = band_power(line, 5000, 7000) / band_power(wave, 5000, 7000)
    assert kept > 0.5 and low < 0.01 and high < 1e-4


@requires_shared_data()
@pytest.mark.parametrize("codec,bitrate", [("mp3", 32), ("opus", 12)])
def test_codec_round_trip_keeps_length_and_signal(codec, bitrate):
    wave = load_audio(CLIP, RATE)
    out = corrupt(wave, RATE, [Codec(codec=codec, bitrate_kbps=bitrate)], np.random.default_rng(0))
    assert out.shape == wave.shape and out.dtype == np.float32
    assert np.corrcoef(wave, out)[0, 1] > 0.9  # aligned: a codec delay left in would decorrelate speech
    assert not np.allclose(wave, out, atol=1e-3)  # and it did change


def peak_hz(wave: np.ndarray) -> float:
    f, p = welch(wave, RATE, nperseg=8192)
    return float(f[np.argmax(p)])


def test_speed_moves_pitch_and_length_together():
    wave = tone(freqs=(440.0,))
    faster = corrupt(wave, RATE, [Speed(factor=1.1)], np.random.default_rng(0))
    assert len(faster) == pytest.approx(len(wave) / 1.1, abs=2)
    assert peak_hz(faster) == pytest.approx(440.0 * 1.1, abs=3.0)
    with pytest.raises(ValidationError, match="positive"):
        Speed(factor=(0.0, 1.1))


def test_pitch_moves_the_pitch_and_keeps_the_length():
    wave = tone(freqs=(440.0,))
    for semitones in (-3.0, 2.0):
        shifted = corrupt(wave, RATE, [Pitch(semitones=semitones)], np.random.default_rng(0))
        assert shifted.shape == wave.shape and shifted.dtype == np.float32
        assert peak_hz(shifted) == pytest.approx(440.0 * 2 ** (semitones / 12), abs=4.0)


def test_room_response_decays_at_its_rt60():
    rt60 = 0.6
    h = room_response(RATE, rt60, 0.0, np.random.default_rng(0))
    energy = np.cumsum((h[1:] ** 2)[::-1])[::-1]  # Schroeder backward integration of the tail
    decay_db = 10 * np.log10(energy / energy[0])
    t = np.arange(len(decay_db)) / RATE
    fit = (decay_db > -25) & (decay_db < -5)
    slope = np.polyfit(t[fit], decay_db[fit], 1)[0]  # dB per second
    assert -60 / slope == pytest.approx(rt60, rel=0.1)
    assert 10 * np.log10(1.0 / np.sum(h[1:] ** 2)) == pytest.approx(0.0, abs=1e-6)  # direct-to-reverberant ratio


@requires_shared_data()
def test_reverb_smears_the_real_clip_and_keeps_its_level():
    wave = load_audio(CLIP, RATE)
    wet = {rt: corrupt(wave, RATE, [Reverb(rt60_s=rt)], np.random.default_rng(0)) for rt in (0.2, 1.0)}
    for out in wet.values():
        assert out.shape == wave.shape
        assert np.mean(out.astype(np.float64) ** 2) == pytest.approx(np.mean(wave.astype(np.float64) ** 2), rel=1e-3)
    # the longer room keeps more energy in the 0.3 s after the speech ends
    end = np.flatnonzero(np.abs(wave) > 0.05 * np.abs(wave).max())[-1]
    tail = lambda w: np.mean(w[end:end + int(0.3 * RATE)].astype(np.float64) ** 2)  # noqa: E731
    assert tail(wet[1.0]) > 10 * tail(wet[0.2]) and tail(wet[0.2]) > tail(wave)


@requires_shared_data()
def test_same_seed_same_copy_other_copy_other_draw():
    wave = load_audio(CLIP, RATE)
    conditions = [Noise(snr_db=(5.0, 20.0), color="pink"), Reverb(rt60_s=(0.3, 0.9))]
    runs = [corrupt(wave, RATE, conditions, condition_rng("ab" * 32, copy, conditions)) for copy in (0, 0, 1, 2, 3)]
    np.testing.assert_array_equal(runs[0], runs[1])
    assert not any(np.array_equal(runs[0], other) for other in runs[2:])


def test_ranges_are_drawn_within_bounds_and_tests_refuse_them():
    setting = Noise(snr_db=(5.0, 20.0))
    drawn = [setting.fixed(np.random.default_rng(i)).snr_db for i in range(50)]
    assert all(5 <= d <= 20 for d in drawn) and np.std(drawn) > 2
    assert Codec(codec="mp3", bitrate_kbps=[16, 32]).fixed(np.random.default_rng(0)).bitrate_kbps in (16, 32)
    with pytest.raises(ValidationError, match="fixed settings"):
        ProtocolConfig(test_conditions={"noisy": {"kind": "noise", "snr_db": [5, 20]}})
    with pytest.raises(ValidationError, match="low above high"):
        Noise(snr_db=(20.0, 5.0))
    with pytest.raises(ValidationError):
        FeaturesConfig(augment={"copies": 2, "kinds": {"x": {"kind": "echo", "rt60_s": 1}}})


def test_conditioned_extractor_caches_each_condition_once(tmp_path):
    import soundfile as sf

    path = tmp_path / "tone.wav"
    sf.write(path, tone(0.5), RATE)
    cache = FeatureCache(tmp_path / "cache")
    base = EXTRACTORS.create("mfcc", {})
    make = lambda condition, copy=0: EXTRACTORS.create("conditioned", {  # noqa: E731
        "extractor": "mfcc", "params": {}, "conditions": [condition], "copy_index": copy})
    noisy = make({"kind": "noise", "snr_db": 0})
    keys = {base.settings_key(), noisy.settings_key(), make({"kind": "noise", "snr_db": 10}).settings_key(),
            make({"kind": "noise", "snr_db": 0}, 1).settings_key()}
    assert len(keys) == 4 and noisy.settings_key().startswith(base.settings_key())
    clean = extract_features([path], base, cache, workers=1, progress=False).features[path]
    first = extract_features([path], noisy, cache, workers=1, progress=False)
    again = extract_features([path], noisy, cache, workers=1, progress=False)
    assert (first.computed, again.cached) == (1, 1)
    np.testing.assert_array_equal(first.features[path], again.features[path])
    assert first.features[path].shape == clean.shape and not np.allclose(first.features[path], clean)


def test_a_codec_copy_is_keyed_by_the_codec_build(monkeypatch):
    """Another PyAV / FFmpeg build encodes another waveform: its copies are rendered again, not read from the cache."""
    import av

    mp3 = EXTRACTORS.create("conditioned", {"extractor": "mfcc", "params": {},
                                            "conditions": [{"kind": "codec", "codec": "mp3", "bitrate_kbps": 32}]})
    noise = EXTRACTORS.create("conditioned", {"extractor": "mfcc", "params": {}, "conditions": [{"kind": "noise", "snr_db": 0}]})
    keys = mp3.settings_key(), noise.settings_key()
    monkeypatch.setattr(av, "__version__", "0.0.0")
    assert mp3.settings_key() != keys[0] and noise.settings_key() == keys[1]


@pytest.mark.slow
def test_cv_scores_each_test_condition_as_it_scores_clean_clips(tmp_path):
    """Each fold's test clips scored clean and under each condition; an identity condition (gain 0 dB) reproduces the
    clean predictions exactly (the same standardisation, enrolment and rows), noise at -10 dB does not."""
    import json

    import pandas as pd

    from emofuse.config.loading import load_config
    from emofuse.data.sample import sample_dir
    from emofuse.protocol.cross_validation import run_cross_validation
    from tests.conftest import REPO

    config = load_config(REPO / "configs" / "ravdess_mars_egemaps.yaml", [
        "protocol.n_folds=2", "train.epochs=3", "train.early_stopping.min_epochs=0", "loss.params.switch_epoch=1",
        "features.workers=1", "features.speaker_norm=inductive", "features.adapt_clips=5", "protocol.linear_peer=false",
        'protocol.test_conditions={"same": {"kind": "gain", "gain_db": 0}, "noisy": {"kind": "noise", "snr_db": -10}}'])
    out = tmp_path / "run"
    result = run_cross_validation(config, sample_dir(), out, tmp_path / "cache", progress=False)
    table = result["test_conditions"]["conditions"]
    assert list(table) == ["clean", "same", "noisy"]
    assert table["same"]["accuracy"] == table["clean"]["accuracy"] == result["pooled_accuracy"]
    assert table["same"]["minus_clean"]["difference"] == 0.0
    low, high = table["noisy"]["accuracy_ci"]
    assert low <= table["noisy"]["accuracy"] <= high
    for fold in result["folds"]:
        fold_dir = out / "folds" / f"fold_{fold['fold']}"
        clean = pd.read_csv(fold_dir / "predictions.csv")
        same = pd.read_csv(fold_dir / "conditions" / "same.csv")
        noisy = pd.read_csv(fold_dir / "conditions" / "noisy.csv")
        pd.testing.assert_frame_equal(clean, same)
        assert list(noisy["clip"]) == list(clean["clip"])
        assert not (noisy.filter(like="prob_").to_numpy() == clean.filter(like="prob_").to_numpy()).all()
        assert set(fold["test_conditions"]) == {"same", "noisy"}
    assert json.loads((out / "results.json").read_text())["test_conditions"] == result["test_conditions"]


def test_training_copies_feed_each_clip_clean_or_one_copy_per_epoch():
    from emofuse.protocol.augment import TrainingCopies

    clean = np.zeros((400, 3), np.float32)
    copies = [np.full((400, 3), k, np.float32) for k in (1, 2)]
    augment = TrainingCopies(clean, copies, p_clean=0.5, seed=0)
    rows = np.arange(0, 400, 2)
    first = augment.draw(rows, fold=1, epoch=0)["audio"][:, 0]
    assert set(np.unique(first)) == {0, 1, 2} and abs((first == 0).mean() - 0.5) < 0.1
    np.testing.assert_array_equal(first, augment.draw(rows, fold=1, epoch=0)["audio"][:, 0])  # a resumed run alike
    assert not np.array_equal(first, augment.draw(rows, fold=1, epoch=1)["audio"][:, 0])
    assert clean.max() == 0  # the clean features are not written into


@pytest.mark.slow
def test_cv_trains_on_augmented_copies(tmp_path, caplog):
    from emofuse.config.loading import load_config
    from emofuse.data.sample import sample_dir
    from emofuse.protocol.cross_validation import run_cross_validation
    from emofuse.protocol.final_fit import fit_final
    from tests.conftest import REPO

    overrides = ["protocol.n_folds=2", "train.epochs=3", "train.early_stopping.min_epochs=0", "loss.params.switch_epoch=1",
                 "features.workers=1", "protocol.linear_peer=false",
                 'features.augment={"copies": 2, "kinds": {"noise": {"kind": "noise", "snr_db": [5, 20]}, '
                 '"room": {"kind": "reverb", "rt60_s": [0.2, 0.8]}}}']
    config = load_config(REPO / "configs" / "ravdess_mars_egemaps.yaml", [*overrides, "features.speaker_norm=none"])
    result = run_cross_validation(config, sample_dir(), tmp_path / "run", tmp_path / "cache", progress=False)
    n = result["n_clips"]  # every clip is scored once, clean
    copies = [d for d in (tmp_path / "cache").iterdir() if "~conditioned-" in d.name]
    assert len(copies) == 2 and all(len(list(d.glob("*.npy"))) == n for d in copies)  # each copy extracted once
    # with enrolment (each speaker's statistics from the epoch's mix of clean clips and copies), and in a final fit:
    # the same cached copies
    inductive = load_config(REPO / "configs" / "ravdess_mars_egemaps.yaml", [
        *overrides, "features.speaker_norm=inductive", "features.adapt_clips=5", "features.train_draws=true"])
    enrolled = run_cross_validation(inductive, sample_dir(), tmp_path / "enrolled", tmp_path / "cache", progress=False)
    assert enrolled["n_clips"] == n - 5 * len({a for f in enrolled["folds"] for a in f["test_actors"]})
    caplog.clear()
    with caplog.at_level(logging.INFO):
        fit = fit_final(inductive, sample_dir(), tmp_path / "fit", tmp_path / "cache", epoch=1, progress=False)
    assert "audio copy augment_1" in caplog.text  # the final fit trains on the copies too
    assert fit["epoch"] == 1 and (tmp_path / "fit" / "folds" / "fold_0" / "best.pt").is_file()
    assert sorted(d for d in (tmp_path / "cache").iterdir() if "~conditioned-" in d.name) == sorted(copies)
