"""The linear peer every cv run fits beside its network (protocol/linear_peer.py): logistic regressions on the fold's
inputs as the network sees them, recorded in results.json and printed after the folds."""

import io
import json
import sys
from contextlib import redirect_stdout
from types import SimpleNamespace

import numpy as np
import pytest

from emofuse.cli import main
from emofuse.data.sample import sample_dir
from emofuse.protocol.linear_peer import fit_peer, pooled_inputs
from emofuse.reporting.html_report import render_report
from emofuse.reporting.report import peer_lines
from emofuse.training.batches import TensorData

from conftest import REPO

TINY = ["--set", "protocol.n_folds=3", "--set", "train.epochs=1", "--set", "train.early_stopping.min_epochs=0",
        "--set", "loss.params.switch_epoch=1", "--set", "features.workers=1"]


def test_sequences_are_pooled_over_their_own_frames_only():
    short, long = np.array([[1.0, 2.0], [3.0, 6.0]]), np.array([[0.0, 0.0], [2.0, 2.0], [4.0, 4.0], [6.0, 6.0]])
    pooled = pooled_inputs(TensorData({"audio": [short, long], "visual": np.ones((2, 3))}, np.array([0, 1])))
    np.testing.assert_allclose(pooled["audio"], [[2.0, 4.0, 1.0, 2.0], [3.0, 3.0, np.sqrt(5), np.sqrt(5)]])
    assert pooled["visual"].shape == (2, 3)


def separable_part(rng, n_per_class: int, n_classes: int = 3, presence: dict | None = None) -> TensorData:
    """A frame-sequence modality and a vector modality whose means both name the class (far apart, little noise)."""
    labels = np.repeat(np.arange(n_classes), n_per_class)
    centres = 5.0 * np.eye(n_classes, 4)
    audio = [centres[y] + 0.1 * rng.normal(size=(int(rng.integers(3, 8)), 4)) for y in labels]
    visual = centres[labels][:, ::-1] + 0.1 * rng.normal(size=(len(labels), 4))
    return TensorData({"audio": audio, "visual": visual}, labels, presence=presence)


def test_linearly_separable_inputs_give_the_peer_full_accuracy():
    rng = np.random.default_rng(0)
    fold = SimpleNamespace(train=separable_part(rng, 20), val=separable_part(rng, 5), test=separable_part(rng, 10))
    meta = {"clip": [f"c{i}" for i in range(30)], "take": [f"t{i}" for i in range(30)], "actor": ["9"] * 30}
    record, table = fit_peer(fold, fold, ("a", "b", "c"), meta, fold=1)
    assert record["accuracy"] == {"audio": 1.0, "visual": 1.0, "concatenation": 1.0, "late_average": 1.0}
    assert record["n_train"] == 60 and set(record["chosen_C"]) == {"audio", "visual", "concatenation"}
    assert list(table["pred"]) == list(table["label"]) == list(np.repeat(["a", "b", "c"], 10))
    assert {"pred_audio", "pred_visual", "pred_late_average"} <= set(table.columns)


def peer(difference: float) -> dict:
    return {"joint": "concatenation", "concatenation": {"pooled_accuracy": 0.8},
            "network_minus_peer": {"difference": difference, "ci_low": difference - 0.05, "ci_high": difference + 0.05,
                                   "level": 0.95}, "below_peer": difference < -0.005}


def test_the_console_warns_only_when_the_network_is_below_its_peer():
    above = peer(0.02)
    assert peer_lines(above) == ["linear peer (concatenation): 0.8000; network - peer: +0.0200 [-0.0300, +0.0700] "
                                 "(95 % cluster bootstrap over test speakers)"]
    below = peer_lines(peer(-0.03))
    assert len(below) == 2 and below[1].startswith("warning: the network is 3.0 points below its linear peer")
    assert peer_lines(None) == []


@pytest.fixture(scope="module")
def sample_run(tmp_path_factory):
    """configs/ravdess_mars_egemaps.yaml on the packaged sample, 3 folds of one epoch (a network far below its peer):
    (run directory, feature cache, what `emofuse cv` printed, its arguments)."""
    root = tmp_path_factory.mktemp("peer")
    argv = ["cv", str(REPO / "configs" / "ravdess_mars_egemaps.yaml"), "--out", str(root / "run"), "--cache",
            str(root / "cache"), "--no-progress", *TINY]
    printed = io.StringIO()
    with redirect_stdout(printed):
        assert main(argv) == 0
    return root / "run", root / "cache", printed.getvalue(), argv


@pytest.mark.slow
def test_cv_prints_and_records_the_peer_the_benchmark_computes(sample_run):
    out, cache, printed, _ = sample_run
    results = json.loads((out / "results.json").read_text())
    peer = results["linear_peer"]
    joint = peer["concatenation"]["pooled_accuracy"]
    assert f"linear peer (concatenation): {joint:.4f}; network - peer: " in printed
    assert peer["below_peer"] and "warning: the network is" in printed  # one epoch of training
    assert set(peer["per_modality"]) == {"audio", "visual"} and "late_average" in peer
    assert set(peer["chosen_C"]) == {"1", "2", "3"}
    d = peer["network_minus_peer"]
    assert d["difference"] == pytest.approx(results["pooled_accuracy"] - joint)
    assert d["ci_low"] <= d["difference"] <= d["ci_high"]
    for fold in results["folds"]:
        table = (out / "folds" / f"fold_{fold['fold']}" / "peer_predictions.csv").read_text().splitlines()
        assert len(table) == fold["n_test"] + 1 and fold["linear_peer"]["accuracy"]["concatenation"] >= 0

    sys.path.insert(0, str(REPO / "benchmarks"))
    import linear_peer

    benchmark = linear_peer.run(REPO / "configs" / "ravdess_mars_egemaps.yaml", sample_dir(), cache, TINY[1::2])
    figures = benchmark["linear_peer"]
    for name in ("concatenation", "late_average"):
        assert figures[name] == peer[name]
    assert figures["per_modality"] == peer["per_modality"] and figures["chosen_C"] == peer["chosen_C"]


@pytest.mark.slow
def test_the_html_report_shows_the_peer_and_the_warning(sample_run):
    out = sample_run[0]
    peer = json.loads((out / "results.json").read_text())["linear_peer"]
    html = render_report(out)
    d = peer["network_minus_peer"]
    assert (f"<td class=\"num\">{d['difference']:+.4f} [{d['ci_low']:+.4f}, {d['ci_high']:+.4f}]</td>" in html)
    assert f"<td class=\"num\">{peer['concatenation']['pooled_accuracy']:.4f}</td>" in html
    assert "points below its\n  linear peer" in html


@pytest.mark.slow
def test_no_linear_peer_turns_it_off(sample_run, capsys):
    out, _, _, argv = sample_run
    argv = [*argv, "--no-linear-peer"]
    argv[argv.index("--out") + 1] = str(out.parent / "off")
    assert main(argv) == 0
    assert "linear peer" not in capsys.readouterr().out
    results = json.loads((out.parent / "off" / "results.json").read_text())
    assert "linear_peer" not in results and results["config"]["protocol"]["linear_peer"] is False
    assert not list((out.parent / "off" / "folds").glob("*/peer_predictions.csv"))


def test_a_modality_no_validation_or_test_clip_has_still_gives_a_peer():
    """Validation and test speakers of a corpus without faces: the visual model's C is chosen on the training clips,
    it scores no test clip (NaN fold figure, empty answers), and the other models are as before."""
    rng = np.random.default_rng(0)
    absent = lambda n: {"visual": np.zeros(3 * n, bool)}  # noqa: E731
    fold = SimpleNamespace(train=separable_part(rng, 20), val=separable_part(rng, 5, presence=absent(5)),
                           test=separable_part(rng, 10, presence=absent(10)))
    meta = {"clip": [f"c{i}" for i in range(30)], "take": [f"t{i}" for i in range(30)], "actor": ["9"] * 30}
    record, table = fit_peer(fold, fold, ("a", "b", "c"), meta, fold=1)
    assert record["chosen_C"]["visual"] is not None and np.isnan(record["accuracy"]["visual"])
    assert record["accuracy"]["audio"] == 1.0 and (table["pred_visual"] == "").all()
    assert list(table["pred_late_average"]) == list(table["label"])  # the audio model alone where faces are absent
