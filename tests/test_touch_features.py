"""The robust touch features (touch_stats) on hand-made grids, the touch augmentation, and a touch corpus end to end:
generated captures -> emofuse manifest touch -> emofuse cv with the shipped touch config."""

import json

import pytest
import torch

from emofuse.cli import main
from emofuse.data.touch_captures import write_touch_captures
from emofuse.models import ENCODERS
from emofuse.models.encoders.touch_augment import TouchAugment, augment
from emofuse.models.encoders.touch_stats import BANDS, N_GLOBAL, pressure_centroid, touch_features

GRID = (8, 8)
SHARE, ONSETS, AREA, AREA_MAX = 0, 1, 2, 3  # the first global features, after the per-cell ones
SPECTRUM = 8  # relative band powers, then the spectral centroid
SPEED, SPREAD, STRAIGHT = N_GLOBAL - 3, N_GLOBAL - 2, N_GLOBAL - 1


def globals_of(x: torch.Tensor, lengths=None) -> torch.Tensor:
    lengths = torch.full((len(x),), x.shape[1]) if lengths is None else lengths
    return touch_features(x, lengths, GRID, cells=False)


def test_a_single_pressed_cell_gives_its_area_centroid_and_contact_time():
    x = torch.zeros(1, 40, 64)
    x[0, 10:20, 3 * 8 + 5] = 7.0  # row 3, column 5, pressed for 10 of 40 frames
    f = globals_of(x)[0]
    assert f[SHARE] == pytest.approx(10 / 40) and f[ONSETS] == pytest.approx(1 / 40)
    assert f[AREA] == pytest.approx(1 / 64) and f[AREA_MAX] == pytest.approx(1 / 64)
    assert f[SPEED] == 0 and f[SPREAD] == 0
    centre = pressure_centroid(torch.relu(x), GRID)
    assert centre[0, 15].tolist() == [3.0, 5.0]
    cells = touch_features(x, torch.tensor([40]), GRID)[0]
    assert cells.shape == (3 * 64 + N_GLOBAL,)
    assert cells[29] == pytest.approx(7 * 10 / 40) and cells[128 + 29] == 7.0  # its mean and max over time
    assert cells[:64].count_nonzero() == 1  # no other cell moved


def test_a_stroke_moves_the_centroid_one_cell_per_frame_in_a_straight_line():
    x = torch.zeros(1, 20, 64)
    for k in range(8):
        x[0, 5 + k, 2 * 8 + k] = 5.0  # along row 2, a cell further every frame
    f = globals_of(x)[0]
    assert f[SPEED] == pytest.approx(1.0) and f[STRAIGHT] == pytest.approx(1.0)
    assert f[SPREAD] == pytest.approx(torch.arange(8.0).std(unbiased=False).item(), rel=1e-5)
    taps = torch.zeros(1, 20, 64)
    taps[0, [2, 3, 8, 9, 14, 15], 20] = 5.0  # three taps on one cell
    assert globals_of(taps)[0, ONSETS] == pytest.approx(3 / 20)


def test_gain_offset_dead_and_noisy_cells_do_not_change_the_contact_features():
    torch.manual_seed(0)
    x = torch.zeros(2, 60, 64)
    x[:, 20:35, 27] = 6.0
    x[:, 20:35, 28] = 3.0
    noisy = x.clone()
    noisy[:, :, 5] = torch.randn(2, 60) * 0.5  # a noisy cell, never pressed
    noisy[:, :, 60] = 9.0  # a dead cell stuck high
    f, g = globals_of(x), globals_of(3.0 * noisy + 100.0)  # and another gain and offset
    for k in (SHARE, ONSETS, AREA, AREA_MAX, SPEED, STRAIGHT):
        torch.testing.assert_close(g[:, k], f[:, k])


def test_the_spectrum_finds_the_band_of_a_periodic_touch():
    x = torch.zeros(1, 264, 64)
    x[0, (torch.arange(264) % 11) < 2, 10] = 3.0  # a two-frame tap every 11 frames: 0.09 of the frame rate
    bands = globals_of(x)[0, SPECTRUM : SPECTRUM + len(BANDS) - 1]
    assert int(bands.argmax()) == 3  # (1/16, 1/8]


def test_padding_does_not_change_a_sample_and_the_encoder_reads_any_square_grid():
    torch.manual_seed(0)
    enc = ENCODERS.create("touch_stats", {"hidden": [8]}, input_dim=100).eval()
    assert enc.grid == (10, 10) and enc.out_dim == 8 and enc.stage_dims == [3 * 100 + N_GLOBAL, 8]
    sample = torch.rand(1, 30, 100) * 0.1
    sample[0, 8:20, 40:43] += 5.0  # contact, so that every feature has something to say
    padded = torch.cat([sample, torch.rand(1, 9, 100)], dim=1)
    torch.testing.assert_close(enc(padded, torch.tensor([30])), enc(sample))
    assert ENCODERS.create("touch_stats", {"cells": False}, input_dim=64).out_dim == N_GLOBAL
    with pytest.raises(Exception, match="grid 6x8 has 48 cells per frame but the frames have 64"):
        ENCODERS.create("touch_stats", {"grid": [6, 8]}, input_dim=64)
    with pytest.raises(Exception, match="rotate turns square grids only"):
        ENCODERS.create("touch_stats", {"grid": [4, 16], "augment": {"rotate": True}}, input_dim=64)


def test_augmentation_flips_turns_rolls_and_crops_within_each_sample():
    torch.manual_seed(0)
    x = torch.zeros(64, 10, 64)
    x[:, :, 0] = torch.arange(1.0, 11.0)  # the top-left cell counts the frames
    lengths = torch.full((64,), 10)
    flipped, same = augment(x, lengths, GRID, TouchAugment(flip="both"))
    assert torch.equal(same, lengths)
    corners = {int(i) for i in flipped[:, 0].nonzero()[:, 1]}
    assert corners == {0, 7, 56, 63}  # each corner, as the draws fell
    turned, _ = augment(x, lengths, GRID, TouchAugment(rotate=True))
    assert {int(i) for i in turned[:, 0].nonzero()[:, 1]} == {0, 7, 56, 63}
    rolled, _ = augment(x, lengths, GRID, TouchAugment(roll=True))
    assert torch.equal(rolled[:, :, 0].sort(1).values, x[:, :, 0])  # the same frames, shifted round
    cropped, kept = augment(x, lengths, GRID, TouchAugment(crop=0.5))
    assert kept.min() >= 5 and kept.max() <= 10
    for row, n in zip(cropped[:, :, 0], kept):
        values = row[: int(n)]
        assert torch.equal(values, values[0] + torch.arange(float(n))) and row[int(n):].abs().sum() == 0
    enc = ENCODERS.create("touch3d", {"channels": [4, 4, 4], "augment": {"flip": "rows", "crop": 0.5}}, input_dim=64)
    torch.testing.assert_close(enc.eval()(x[:2]), enc(x[:2]))  # in evaluation the frames are as they are


@pytest.mark.slow
def test_a_touch_corpus_end_to_end(tmp_path, capsys):
    write_touch_captures(tmp_path / "captures", n_speakers=4, per_gesture=4, seconds=3.0, grid=10)
    assert main(["manifest", "touch", str(tmp_path / "captures"), "--pattern", "{speaker}_{label}_{take}.csv",
                 "--out", str(tmp_path / "touch")]) == 0
    assert main(["cv", "manifest_touch", "--data", str(tmp_path / "touch" / "manifest.csv"), "--out",
                 str(tmp_path / "cv"), "--cache", str(tmp_path / "cache"), "--no-progress", "--set", "train.epochs=2",
                 "--set", "features.adapt_clips=4", "--set", "protocol.n_folds=2"]) == 0
    results = json.loads((tmp_path / "cv" / "results.json").read_text())
    assert len(results["folds"]) == 2 and 0 <= results["accuracy_mean"] <= 1
    assert results["linear_peer"] and "linear peer (touch only)" in capsys.readouterr().out
