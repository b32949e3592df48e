"""Pressure-grid captures as CSV files: the reader's layouts, grids, rates and errors; the corpus reader and its
manifest; the sensor-like generated captures."""

import numpy as np
import pandas as pd
import pytest

from emofuse.cli import main
from emofuse.core.errors import DataError
from emofuse.core.registry import ConfigError
from emofuse.data.corpora.touch import name_matcher, read_touch_corpus, resample, write_touch_corpus
from emofuse.data.touch_captures import write_touch_captures
from emofuse.data.touch_csv import parse_grid, read_capture


def frames(n: int, rows: int, cols: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 1024, (n, rows * cols))


def write_frame_layout(path, values, times=None, header=True, sep=","):
    cols = values.shape[1]
    lines = []
    if header:
        lines.append(sep.join((["time_ms"] if times is not None else []) + [f"c{i}" for i in range(cols)]))
    for k, row in enumerate(values):
        lines.append(sep.join(([f"{times[k]:.1f}"] if times is not None else []) + [str(v) for v in row]))
    path.write_text("\n".join(lines) + "\n")


def write_row_layout(path, values, rows, blank=True):
    blocks = ["\n".join(" ".join(map(str, r)) for r in frame.reshape(rows, -1)) for frame in values]
    path.write_text(("\n\n" if blank else "\n").join(blocks) + "\n")


@pytest.mark.parametrize("side", [8, 10])
def test_frame_per_line_with_a_time_column(tmp_path, side):
    values = frames(30, side, side)
    write_frame_layout(tmp_path / "a.csv", values, times=1000 + np.arange(30) * 1000 / 54)
    capture = read_capture(tmp_path / "a.csv")
    assert capture.grid == (side, side) and capture.layout == "frame"
    np.testing.assert_array_equal(capture.frames, values)
    assert capture.rate == pytest.approx(54, rel=1e-3)
    assert f"{side} x {side} grid, one frame per line, 30 frames at 54.0 Hz" == capture.describe()


@pytest.mark.parametrize("side", [8, 10])
def test_grid_row_per_line_separated_by_blank_lines(tmp_path, side):
    values = frames(12, side, side, seed=1)
    write_row_layout(tmp_path / "b.txt", values, side)
    capture = read_capture(tmp_path / "b.txt")
    assert capture.grid == (side, side) and capture.layout == "rows" and capture.rate is None
    np.testing.assert_array_equal(capture.frames, values)  # rows of a frame one after another


def test_row_layouts_without_blank_lines_and_non_square_grids(tmp_path):
    values = frames(6, 10, 10, seed=2)
    write_row_layout(tmp_path / "c.csv", values, 10, blank=False)  # 60 lines of 10: whole 10 x 10 frames
    capture = read_capture(tmp_path / "c.csv")
    assert capture.grid == (10, 10) and capture.layout == "rows"
    np.testing.assert_array_equal(capture.frames, values)
    wide = frames(5, 4, 6, seed=3)  # a 4 x 6 sensor: tell the grid
    write_row_layout(tmp_path / "d.csv", wide, 4, blank=False)
    with pytest.raises(DataError, match="cannot tell the grid from lines of 6 values.*give the grid"):
        read_capture(tmp_path / "d.csv")
    np.testing.assert_array_equal(read_capture(tmp_path / "d.csv", grid=parse_grid("4x6")).frames, wide)
    write_frame_layout(tmp_path / "e.csv", wide, header=False, sep="\t")
    assert read_capture(tmp_path / "e.csv", grid=(4, 6)).layout == "frame"
    assert parse_grid("10 x 10") == (10, 10)


def test_shared_timestamps_mark_the_frames_of_a_row_layout(tmp_path):
    values = frames(5, 8, 8, seed=4)
    lines = ["timestamp," + ",".join(f"c{i}" for i in range(8))]
    for k, frame in enumerate(values):
        lines += [f"{k * 0.01:.2f}," + ",".join(map(str, row)) for row in frame.reshape(8, 8)]
    (tmp_path / "f.csv").write_text("\n".join(lines))
    capture = read_capture(tmp_path / "f.csv")
    assert capture.layout == "rows" and capture.grid == (8, 8) and capture.rate == pytest.approx(100)
    np.testing.assert_array_equal(capture.frames, values)


def test_bad_files_are_errors_that_name_the_file_and_line(tmp_path):
    values = frames(4, 8, 8)
    write_frame_layout(tmp_path / "ragged.csv", values)
    text = (tmp_path / "ragged.csv").read_text().splitlines()
    (tmp_path / "ragged.csv").write_text("\n".join(text[:3] + [text[3].rsplit(",", 1)[0]] + text[4:]))
    with pytest.raises(DataError, match=r"ragged\.csv: line 4 has 63 values, line 2 has 64 \(ragged rows\)"):
        read_capture(tmp_path / "ragged.csv")
    (tmp_path / "word.csv").write_text("\n".join(text[:2] + [text[2].replace(",", ",high,", 1)[:-4]] + text[3:]))
    with pytest.raises(DataError, match=r"word\.csv: line 3, column 2: 'high', which is not a number"):
        read_capture(tmp_path / "word.csv")
    (tmp_path / "empty_cell.csv").write_text("\n".join(text[:2] + [text[2].replace(",", ",,", 1)[:-4]] + text[3:]))
    with pytest.raises(DataError, match=r"empty_cell\.csv: line 3, column 2: an empty cell"):
        read_capture(tmp_path / "empty_cell.csv")
    blocks = "\n\n".join("\n".join(" ".join("1" * 1 for _ in range(10)) for _ in range(h)) for h in (10, 10, 9))
    (tmp_path / "heights.txt").write_text(blocks)
    with pytest.raises(DataError, match=r"heights\.txt: inconsistent grid size: the frame at line 23 has 9 rows"):
        read_capture(tmp_path / "heights.txt")
    (tmp_path / "blank.csv").write_text("\n\n")
    with pytest.raises(DataError, match=r"blank\.csv: the capture is empty"):
        read_capture(tmp_path / "blank.csv")


def test_name_patterns_and_regexes():
    matcher = name_matcher("{speaker}_{label}_{take}.csv", None)
    assert matcher.fullmatch("p01_stroke_03.csv").groupdict() == {"speaker": "p01", "label": "stroke", "take": "03"}
    assert name_matcher(None, r"(?P<speaker>P\d+)/(?P<label>[a-z]+)").search("x/P7/tap_1.csv")["label"] == "tap"
    with pytest.raises(ConfigError, match="has no label placeholder"):
        name_matcher("{speaker}_{take}.csv", None)
    with pytest.raises(ConfigError, match="--pattern .* or --regex"):
        name_matcher(None, None)


def test_corpus_reader_inverts_a_resting_high_scale_and_writes_frames_and_manifest(tmp_path):
    rng = np.random.default_rng(0)
    for person in ("p1", "p2"):
        for label in ("tap", "hold"):
            for take in range(2):
                pressure = np.zeros((40, 64))
                pressure[10:20, 27] = 600  # one cell pressed for ten frames
                raw = 1000 - pressure + rng.integers(0, 5, pressure.shape)  # high at rest
                times = np.arange(40) * (1000 / 50 if person == "p1" else 1000 / 100)
                (tmp_path / "in" / label).mkdir(parents=True, exist_ok=True)
                write_frame_layout(tmp_path / "in" / label / f"{person}_{take}.csv", raw, times)
    (tmp_path / "in" / "notes.txt").write_text("not a capture")
    corpus = read_touch_corpus(tmp_path / "in", name_matcher("{label}/{speaker}_{take}.csv", None))
    assert len(corpus.rows) == 8 and [p.name for p in corpus.unrecognised] == ["notes.txt"]
    assert corpus.notes[0] == "8 captures: 8 x 8 grid, one frame per line"
    assert "inverted scale (8 of 8 captures rest near their highest values" in corpus.notes[2]
    assert corpus.rate == pytest.approx(50) and "4 captures resampled to it" in corpus.notes[1]
    assert len(corpus.frames["tap/p1_0"]) == 40 and len(corpus.frames["tap/p2_0"]) == 20  # 100 Hz -> 50 Hz
    sample = corpus.frames["tap/p1_0"]
    assert sample[:, 27].argmax() >= 10 and sample[:, 27].max() > 550 and np.median(sample) < 10  # pressure up
    manifest = pd.read_csv(write_touch_corpus(corpus, tmp_path / "out"))
    assert list(manifest["speaker"]) == ["p1"] * 4 + ["p2"] * 4
    assert set(manifest["label"]) == {"tap", "hold"}
    np.testing.assert_array_equal(np.load(tmp_path / "out" / manifest["touch_features"][0]),
                                  corpus.frames[manifest["id"][0]])
    assert resample(np.arange(10.0)[:, None], 10, 20).shape == (19, 1)


def test_corpus_reader_stops_on_two_grid_sizes(tmp_path):
    write_frame_layout(tmp_path / "p1_tap_0.csv", frames(5, 8, 8))
    write_frame_layout(tmp_path / "p1_tap_1.csv", frames(5, 8, 8))
    write_frame_layout(tmp_path / "p2_tap_0.csv", frames(5, 10, 10))
    with pytest.raises(DataError, match=r"p2_tap_0\.csv: inconsistent grid sizes: a 10 x 10 grid, but .*p1_tap_0\.csv "
                                        r"\(and 1 more\) a 8 x 8 one"):
        read_touch_corpus(tmp_path, name_matcher("{speaker}_{label}_{take}.csv", None))


@pytest.mark.parametrize("grid,layout", [(8, "frame"), (10, "rows")])
def test_generated_captures_read_back(tmp_path, grid, layout, capsys):
    write_touch_captures(tmp_path / "c", n_speakers=2, per_gesture=1, grid=grid, layout=layout, seconds=3.0)
    files = sorted((tmp_path / "c").rglob("*.csv"))
    assert len(files) == 8 and files[0].relative_to(tmp_path / "c").as_posix() == "p01/p01_pat_00.csv"
    rate = [] if layout == "frame" else ["--rate", "54"]
    assert main(["manifest", "touch", str(tmp_path / "c"), "--pattern", "{speaker}_{label}_{take}.csv",
                 "--out", str(tmp_path / "m"), *rate]) == 0
    err = capsys.readouterr().err
    assert f"{grid} x {grid} grid, {'one frame per line' if layout == 'frame' else 'one grid row per line'}" in err
    assert "inverted scale (8 of 8 captures" in err
    table = pd.read_csv(tmp_path / "m" / "manifest.csv")
    assert len(table) == 8 and set(table["speaker"]) == {"p01", "p02"}
    assert table["rate"].iloc[0] == pytest.approx(54, rel=0.01)
    x = np.load(tmp_path / "m" / table["touch_features"][0])
    assert x.shape[1] == grid * grid and 0.85 * 3 * 54 - 1 <= len(x) <= 3 * 54 + 1
    assert main(["manifest", "touch", str(tmp_path / "c"), "--pattern", "{speaker}_{label}_{take}.csv"]) == 2
    assert "touch needs --out" in capsys.readouterr().err
    assert main(["manifest", "folder", str(tmp_path / "c"), "--pattern", "x"]) == 2
    assert "--pattern: for touch captures only" in capsys.readouterr().err
