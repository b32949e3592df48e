"""The tactile branch (touch3d: a 3D CNN over pressure-grid frames) and the synthetic social-touch data."""

import numpy as np
import pandas as pd
import pytest
import torch

from conftest import REPO
from emofuse.config.schema import ModelConfig
from emofuse.data.touch_fixture import GESTURES, write_touch_fixture
from emofuse.models import ENCODERS, create_model
from emofuse.core.registry import ConfigError

TINY = {"channels": [4, 8, 16]}


def test_output_and_stage_shapes():
    enc = ENCODERS.create("touch3d", TINY, input_dim=64).eval()
    assert enc.stage_dims == [4, 8, 16] and enc.out_dim == 16
    h, lengths = enc.begin(torch.randn(2, 9, 64), torch.tensor([9, 4]))
    shapes, valid = [], []
    for stage in enc.stages:
        h, lengths = stage(h, lengths)
        shapes.append(tuple(h.shape))
        valid.append(lengths.tolist())
    # C3D's pooling: space only in the first block, then time and space (ceil); an 8x8 grid ends at 1x1
    assert shapes == [(2, 4, 9, 4, 4), (2, 8, 5, 2, 2), (2, 16, 3, 1, 1)]
    assert valid == [[9, 4], [5, 2], [3, 1]]
    assert enc(torch.randn(3, 50, 64)).shape == (3, 16)
    # a grid side at 1 is not pooled further; a one-frame sample still gives an embedding
    narrow = ENCODERS.create("touch3d", {"grid": [2, 32], **TINY}, input_dim=64).eval()
    assert narrow(torch.randn(2, 1, 64)).shape == (2, 16)


def test_default_size_is_the_papers():
    enc = ENCODERS.create("touch3d", {}, input_dim=64)
    n = sum(p.numel() for p in enc.parameters())
    assert n == 27 * (1 * 64 + 64 * 128 + 128 * 256) + 2 * (64 + 128 + 256)  # 3x3x3 convolutions, BN scale + shift
    assert abs(n / 1e6 - 1.10) < 0.02  # the paper's Table I: 1.10 M for the tactile branch


def test_padded_frames_do_not_change_a_sample():
    torch.manual_seed(0)
    enc = ENCODERS.create("touch3d", TINY, input_dim=64).eval()
    sample = torch.rand(1, 7, 64) * 1023
    alone = enc(sample)
    padded = torch.cat([sample, torch.rand(1, 6, 64) * 1023], dim=1)
    torch.testing.assert_close(enc(padded, torch.tensor([7])), alone)
    batch = torch.cat([padded, torch.rand(1, 13, 64)])  # beside a longer sample
    torch.testing.assert_close(enc(batch, torch.tensor([7, 13]))[:1], alone)


def test_grid_that_does_not_fit_the_frames_is_a_config_error():
    with pytest.raises(ConfigError, match=r"grid 8x8 has 64 cells per frame but the frames have 48 values"):
        ENCODERS.create("touch3d", {"grid": [8, 8]}, input_dim=48)
    with pytest.raises(ConfigError, match="use mlp for tactile feature vectors"):
        ENCODERS.create("touch3d", {}, input_dim=64, sequence=False)
    with pytest.raises(ConfigError, match="bad parameters for encoder 'touch3d'.*grid"):
        ENCODERS.validate_params("touch3d", {"grid": [8, 0]})
    enc = ENCODERS.create("touch3d", {"grid": [6, 8], **TINY}, input_dim=48)
    with pytest.raises(ValueError, match=r"\(B, T, 48\) of a 6x8 grid; got shape \(2, 5, 64\)"):
        enc(torch.randn(2, 5, 64))


def test_model_fusion_between_touch_stages_and_a_second_branch():
    config = ModelConfig(encoders={"touch": {"name": "touch3d", "params": TINY},
                                   "visual": {"name": "cnn1d", "params": {"channels": [8, 8]}}},
                         fusion={"name": "mmtm"})
    model = create_model(config, {"touch": 64, "visual": 5}, {"touch": True, "visual": True}, n_classes=4)
    out = model({"touch": torch.rand(2, 30, 64), "visual": torch.randn(2, 12, 5)},
                {"touch": torch.tensor([30, 17]), "visual": torch.tensor([12, 9])})
    assert out.probs.shape == (2, 4)


def test_fixture_writes_seeded_pressure_grids_and_a_manifest(tmp_path):
    manifest = write_touch_fixture(tmp_path / "a", n_speakers=3, per_gesture=2, seed=3)
    table = pd.read_csv(manifest)
    assert list(table.columns) == ["id", "speaker", "label", "touch_features"]
    assert len(table) == 3 * len(GESTURES) * 2 and set(table["label"]) == set(GESTURES)
    assert table.groupby("speaker")["label"].value_counts().eq(2).all()
    for cell in table["touch_features"]:
        frames = np.load(manifest.parent / cell)
        assert frames.dtype == np.float32 and frames.shape[1] == 64 and 50 <= frames.shape[0] <= 100  # 1-2 s at 50 Hz
        assert frames.min() >= 0 and frames.max() <= 1023
    again = write_touch_fixture(tmp_path / "b", n_speakers=3, per_gesture=2, seed=3)
    first = table["touch_features"].iloc[5]
    np.testing.assert_array_equal(np.load(manifest.parent / first), np.load(again.parent / first))


def load_normalised(manifest) -> tuple[list[np.ndarray], np.ndarray, np.ndarray]:
    """Frames z-scored with each person's mean and spread (what speaker normalisation does), labels, people."""
    table = pd.read_csv(manifest)
    frames = [np.load(manifest.parent / cell) for cell in table["touch_features"]]
    people = table["speaker"].to_numpy(dtype=str)
    for person in np.unique(people):
        mine = np.flatnonzero(people == person)
        values = np.concatenate([frames[i] for i in mine])
        for i in mine:
            frames[i] = (frames[i] - values.mean()) / values.std()
    labels = np.array([GESTURES.index(g) for g in table["label"]])
    return frames, labels, people


def padded(frames: list[np.ndarray], rows: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
    lengths = torch.tensor([len(frames[i]) for i in rows])
    x = torch.zeros(len(rows), int(lengths.max()), 64)
    for j, i in enumerate(rows):
        x[j, : len(frames[i])] = torch.from_numpy(frames[i])
    return x, lengths


def test_training_on_generated_grids_tells_gestures_apart_for_new_people(tmp_path):
    torch.manual_seed(0)
    frames, labels, people = load_normalised(write_touch_fixture(tmp_path, n_speakers=6, per_gesture=6, seconds=(1.0, 1.5)))
    train, test = np.flatnonzero(np.isin(people, ["p01", "p02", "p03", "p04"])), np.flatnonzero(np.isin(people, ["p05", "p06"]))
    encoder = ENCODERS.create("touch3d", {"channels": [8, 16, 16]}, input_dim=64)
    head = torch.nn.Linear(encoder.out_dim, len(GESTURES))
    optimiser = torch.optim.Adam([*encoder.parameters(), *head.parameters()], lr=3e-3)
    rng = np.random.default_rng(0)
    for _ in range(6):
        encoder.train()
        order = rng.permutation(train)
        for start in range(0, len(order), 16):
            rows = order[start : start + 16]
            loss = torch.nn.functional.cross_entropy(head(encoder(*padded(frames, rows))), torch.from_numpy(labels[rows]))
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
    encoder.eval()
    with torch.no_grad():
        predicted = head(encoder(*padded(frames, test))).argmax(1).numpy()
    accuracy = (predicted == labels[test]).mean()
    assert accuracy >= 0.75, accuracy  # 4 gestures: chance is 0.25; two people the model never saw


def test_make_touch_fixture_command(tmp_path, capsys):
    from emofuse.cli import main

    assert main(["fixtures", "touch", str(tmp_path / "touch"), "--speakers", "2", "--per-gesture", "1"]) == 0
    assert len(pd.read_csv(tmp_path / "touch" / "manifest.csv")) == 2 * len(GESTURES)
    assert main(["fixtures", "touch", str(tmp_path / "one"), "--speakers", "1"]) == 2
    assert "needs 2 people at least" in capsys.readouterr().err


@pytest.mark.slow
def test_cv_on_generated_pressure_grids_through_a_manifest(tmp_path):
    """configs/manifest_touch.yaml end to end: generated 8 x 8 grids at 50 Hz as .npy frame sequences, the robust
    touch features (touch_stats), folds by person; gestures are told apart for people the model never saw."""
    import json

    from emofuse.cli import main

    assert main(["fixtures", "touch", str(tmp_path / "touch")]) == 0
    out = tmp_path / "cv"
    assert main(["cv", str(REPO / "configs" / "manifest_touch.yaml"), "--data", str(tmp_path / "touch" / "manifest.csv"),
                 "--out", str(out), "--no-progress"]) == 0
    results = json.loads((out / "results.json").read_text())
    assert list(results["modality_accuracy_mean"]) == ["touch"]
    assert results["pooled_accuracy"] > 0.75  # chance 0.25
    record = json.loads((out / "data_fingerprint.json").read_text())
    assert record["feature_dims"]["touch"] == 64 and record["sequence"]["touch"]
