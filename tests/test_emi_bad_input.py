"""Bad feature directories and EMI configs fail with an error naming the file, the id or the key."""

import numpy as np
import pandas as pd
import pytest
import yaml

from emofuse.cli import main
from emofuse.tasks.emi.fixture import HUME_TARGETS, write_emi_fixture
from emofuse.core.errors import DataError
from emofuse.tasks.emi.feature_dir import load_feature_dir
from emofuse.training.timescales import resolve_ema_decay
from emofuse.tasks.emi.config import load_emi_config
from emofuse.core.registry import ConfigError

from conftest import REPO

MODALITIES = ["visual", "audio", "text"]
TARGETS = list(HUME_TARGETS)


@pytest.fixture
def feature_dir(tmp_path):
    return write_emi_fixture(tmp_path / "data", n_train=6, n_val=3, n_test=3)


def load(root):
    return load_feature_dir(root, MODALITIES, TARGETS)


def test_missing_feature_file_is_named(feature_dir):
    missing = feature_dir / "audio" / "clip00004.npy"
    missing.unlink()
    with pytest.raises(DataError) as info:
        load(feature_dir)
    assert str(missing) in str(info.value) and "missing for id 'clip00004'" in str(info.value)


def test_missing_modality_is_named(feature_dir):
    with pytest.raises(DataError, match=r"no features for modality 'face'.*face\.npz"):
        load_feature_dir(feature_dir, ["face"], TARGETS)


def test_nan_values_are_named(feature_dir):
    bad = feature_dir / "text" / "clip00007.npy"
    array = np.load(bad)
    array[2, 5] = np.nan
    np.save(bad, array)
    with pytest.raises(DataError) as info:
        load(feature_dir)
    assert str(bad) in str(info.value) and "NaN or infinite values (first at frame 2, dimension 5)" in str(info.value)


def test_wrong_dimension_names_the_file_and_both_sizes(feature_dir):
    bad = feature_dir / "visual" / "clip00003.npy"
    np.save(bad, np.zeros((10, 31), dtype=np.float32))
    with pytest.raises(DataError) as info:
        load(feature_dir)
    message = str(info.value)
    assert str(bad) in message and "feature dimension 31, expected 32" in message and "clip00000.npy" in message


def test_wrong_dimension_in_an_npz_archive_names_the_entry(tmp_path):
    root = write_emi_fixture(tmp_path / "z", n_train=4, n_val=2, n_test=2, fmt="npz")
    with np.load(root / "audio.npz") as z:
        arrays = dict(z)
    arrays["clip00005"] = np.zeros((7, 3, 2), dtype=np.float32)
    np.savez(root / "audio.npz", **arrays)
    with pytest.raises(DataError, match=r"audio\.npz\[clip00005\]: expected a non-empty \(T, D\) array, got shape \(7, 3, 2\)"):
        load(root)


@pytest.mark.parametrize(
    "edit, message",
    [
        (lambda df: df.assign(split=df.split.replace({"val": "valid"})), "unknown split value(s) ['valid'] (first at id 'clip00006')"),
        (lambda df: df.drop(columns=["Joy"]), "missing column(s) ['Joy']"),
        (lambda df: df.assign(Joy=df.Joy.where(df.id != "clip00001")), "id 'clip00001' (train) has empty or non-finite target(s) ['Joy']"),
        (lambda df: df.assign(Joy=df.Joy.where(df.split != "test")), "test id 'clip00009' has some targets but not ['Joy']"),
        (lambda df: df[df.split != "val"], "no rows with split 'val'"),
        (lambda df: pd.concat([df, df.iloc[[0]]]), "id 'clip00000' appears more than once"),
    ],
)
def test_bad_labels_are_clear_errors(feature_dir, edit, message):
    labels = feature_dir / "labels.csv"
    edit(pd.read_csv(labels, dtype={"id": str})).to_csv(labels, index=False)
    with pytest.raises(DataError) as info:
        load(feature_dir)
    assert message in str(info.value) and str(labels) in str(info.value)


def test_cli_reports_bad_data_with_the_file(feature_dir, tmp_path, capsys):
    (feature_dir / "text" / "clip00002.npy").unlink()
    argv = ["train", str(REPO / "configs" / "emi_hume.yaml"), "--data", str(feature_dir), "--out", str(tmp_path / "o")]
    assert main(argv) == 2
    assert "clip00002.npy: feature file missing" in capsys.readouterr().err


EMI_CONFIGS = [p for p in sorted((REPO / "configs").glob("emi_*.yaml")) if p.name != "emi_ravdess_features.yaml"]
EMI_CONFIGS += sorted((REPO / "configs" / "emi_ablation").glob("*.yaml"))


def test_shipped_emi_configs_load_and_the_ablation_ends_with_the_full_recipe():
    configs = {p.name: load_emi_config(p) for p in EMI_CONFIGS}
    assert len(configs) >= 10
    hume = configs["emi_hume.yaml"]
    assert hume.data.modalities == MODALITIES and hume.data.targets == TARGETS
    full = configs["5_full.yaml"]
    assert full.model_dump(exclude={"name"}) == hume.model_dump(exclude={"name"})
    t = hume.train
    assert (t.batch_size, t.grad_clip, t.epochs, t.early_stopping.patience, t.early_stopping.monitor) == (
        32, 1.0, 30, 8, "pearson_mean")
    hume_steps_per_pass = 8072 // 32  # Hume-Vidmimic2's training clips: the paper's EMA decay of 0.999
    assert resolve_ema_decay(t.ema_decay, hume_steps_per_pass) == pytest.approx(0.999, abs=1e-5)


def write_config(tmp_path, edit):
    tree = yaml.safe_load((REPO / "configs" / "emi_hume.yaml").read_text())
    edit(tree)
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(tree))
    return path


@pytest.mark.parametrize(
    "edit, message",
    [
        (lambda t: t["model"].update(fusoin="concat"), "unknown key 'model.fusoin'"),
        (lambda t: t["train"].update(ema=0.9), "unknown key 'train.ema'"),
        (lambda t: t["loss"].update(pearsn=1.0), "unknown key 'loss.pearsn'"),
        (lambda t: t.update(dataset="hume"), "unknown key 'dataset'"),
        (lambda t: t["model"].update(fusion="sum"), "'model.fusion'"),
        (lambda t: t["data"].update(modalities=["visual", "text"]), "model.vad_modality 'audio' is not in data.modalities"),
        (lambda t: t["model"].update(vad=False), "loss.vad > 0 regularises the VAD latent, but model.vad is false"),
        (lambda t: t["train"]["early_stopping"].update(monitor="accuracy"), "train.early_stopping.monitor: 'accuracy'"),
        (lambda t: t["data"].update(targets=["Joy", "Joy"]), "named more than once: ['Joy']"),
    ],
)
def test_bad_config_is_a_clear_error_naming_the_key(tmp_path, edit, message):
    path = write_config(tmp_path, edit)
    with pytest.raises(ConfigError) as info:
        load_emi_config(path)
    assert message in str(info.value) and str(path) in str(info.value)


def test_cli_reports_an_unknown_config_key(tmp_path, capsys):
    path = write_config(tmp_path, lambda t: t["train"].update(batchsize=16))
    assert main(["train", str(path), "--data", str(tmp_path), "--out", str(tmp_path / "o")]) == 2
    assert "unknown key 'train.batchsize'" in capsys.readouterr().err


def test_cli_help_for_the_emi_commands(capsys):
    for command in (["train"], ["evaluate"], ["fixtures", "emi"], ["ablation"], ["emi-ravdess"]):
        with pytest.raises(SystemExit) as info:
            main([*command, "--help"])
        assert info.value.code == 0 and "usage: emofuse" in capsys.readouterr().out
