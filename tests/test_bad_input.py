import numpy as np
import pandas as pd
import pytest

from emofuse.config.loading import load_config
from emofuse.config.schema import DataConfig, FeaturesConfig
from emofuse.data.audio import load_audio
from emofuse.core.errors import DataError
from emofuse.features.cache import FeatureCache
from emofuse.datasets.feature_set import build_ravdess_features
from emofuse.core.registry import ConfigError

from conftest import REPO


def build(root, tmp_path, **data_kwargs):
    return build_ravdess_features(
        root, DataConfig(**data_kwargs), FeaturesConfig(audio={"name": "mfcc", "params": {"n_mfcc": 13}}, workers=1),
        FeatureCache(tmp_path / "cache"), progress=False,
    )


def test_corrupt_audio_file_is_named(ravdess_fixture, tmp_path):
    bad = ravdess_fixture / "audio16k" / "Actor_03" / "03-01-04-01-02-01-03.wav"
    bad.write_bytes(b"RIFF\x00\x00garbage" * 10)
    with pytest.raises(DataError) as info:
        build(ravdess_fixture, tmp_path)
    assert str(bad) in str(info.value) and "cannot decode audio" in str(info.value)
    # skip-and-report: the batch goes on without that take and says so
    fs = build(ravdess_fixture, tmp_path, on_incomplete="skip")
    assert len(fs.meta) == 6 * 16 - 1
    assert fs.skipped[0]["take"] == "01-04-01-02-01-03" and str(bad) in fs.skipped[0]["problems"][0]


def test_missing_visual_row_is_named(ravdess_fixture, tmp_path):
    table = ravdess_fixture / "openface_au_clip_means.csv"
    df = pd.read_csv(table, dtype={"video_stem": str})
    df[df.video_stem != "01-01-05-01-01-01-02"].to_csv(table, index=False)
    with pytest.raises(DataError) as info:
        build(ravdess_fixture, tmp_path)
    assert "no row for clip '01-01-05-01-01-01-02'" in str(info.value) and str(table) in str(info.value)


def test_nan_visual_features_are_named(ravdess_fixture, tmp_path):
    table = ravdess_fixture / "openface_au_clip_means.csv"
    df = pd.read_csv(table, dtype={"video_stem": str})
    df.loc[df.video_stem == "01-01-02-01-02-01-04", "AU12_r"] = np.nan
    df.to_csv(table, index=False)
    with pytest.raises(DataError, match=r"01-01-02-01-02-01-04' has NaN/infinite values in AU12_r"):
        build(ravdess_fixture, tmp_path)


def test_audio_at_another_rate_is_resampled(ravdess_fixture):
    wav = next((ravdess_fixture / "audio16k").rglob("*.wav"))  # written at 22,050 Hz
    wave = load_audio(wav, 16000)
    assert abs(len(wave) - 0.6 * 16000) <= 2 and wave.dtype == np.float32


def test_missing_audio_file(tmp_path):
    with pytest.raises(DataError, match="does not exist"):
        load_audio(tmp_path / "nope.wav", 16000)


def write_config(tmp_path, text):
    path = tmp_path / "c.yaml"
    path.write_text(text)
    return path


BASE = (REPO / "configs" / "ravdess_mars_cnn.yaml").read_text()


def test_shipped_configs_load():
    paths = sorted((REPO / "configs").glob("ravdess_*.yaml"))
    assert len(paths) >= 4
    for path in paths:
        load_config(path)


def test_mars_and_ce_configs_differ_only_in_the_loss():
    for mars, ce in (("ravdess_mars", "ravdess_ce"), ("ravdess_mars_egemaps", "ravdess_ce_egemaps"), ("ravdess_mars_cnn", "ravdess_ce_cnn")):
        a = load_config(REPO / "configs" / f"{mars}.yaml").model_dump()
        b = load_config(REPO / "configs" / f"{ce}.yaml").model_dump()
        assert a.pop("loss")["name"] == "mars" and b.pop("loss")["name"] == "cross_entropy"
        a.pop("name"), b.pop("name")
        assert a == b


@pytest.mark.parametrize(
    "edit, message",
    [
        (lambda s: s.replace("  batch_size: 32", "  batch_size: 32\n  batchsize: 16"), "unknown key 'train.batchsize'"),
        (lambda s: s + "extra_section: 1\n", "unknown key 'extra_section'"),
        (lambda s: s.replace("switch_epoch: 10", "switch_epoch: -1"), "loss.params.switch_epoch"),
        (lambda s: s.replace("switch_epoch: 10", "switch_epch: 10"), "unknown key 'loss.params.switch_epch'"),
        (lambda s: s.replace("name: cnn1d", "name: cnn9d"), "unknown encoder 'cnn9d'"),
        (lambda s: s.replace("  epochs: 30", "  epochs: many"), "'train.epochs'"),
        (lambda s: s.replace("kernel_size: 5", "kernel_sise: 5"), "model.encoders.audio.params.kernel_sise"),
    ],
)
def test_bad_config_is_a_clear_error(tmp_path, edit, message):
    path = write_config(tmp_path, edit(BASE))
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert message in str(info.value) and str(path) in str(info.value)


def test_bad_override_is_a_clear_error():
    with pytest.raises(ConfigError, match="unknown key 'train.epoch'"):
        load_config(REPO / "configs" / "ravdess_mars.yaml", ["train.epoch=3"])
