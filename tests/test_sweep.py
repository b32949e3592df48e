"""`emofuse sweep`: the search scores validation only, restarts continue the study, bad spaces are named."""

import copy
import json

import numpy as np
import pandas as pd
import pytest
import yaml
from test_resume import TINY

from emofuse.cli import main
from emofuse.core.registry import ConfigError

SWEEP_TINY = copy.deepcopy(TINY)
SWEEP_TINY["loss"]["params"]["gamma"] = {"audio": 1.0, "visual": 1.0}
SWEEP_TINY["train"]["epochs"] = 2

SPACE = {"params": {"loss.params.switch_epoch": [0, 1], "loss.params.gamma.visual": [2.0],
                    "loss.params.gamma.audio": [0.5]}}


@pytest.fixture
def files(tmp_path):
    config = tmp_path / "tiny.yaml"
    config.write_text(yaml.safe_dump(SWEEP_TINY))
    space = tmp_path / "space.yaml"
    space.write_text(yaml.safe_dump(SPACE))
    return config, space


def sweep_args(config, space, data, out, cache, *extra):
    return ["sweep", str(config), "--space", str(space), "--data", str(data), "--out", str(out),
            "--cache", str(cache), "--no-progress", *extra]


@pytest.mark.slow
def test_grid_sweep_scores_validation_only_and_restarts(ravdess_fixture, tmp_path, files, monkeypatch):
    from emofuse.protocol import cross_validation as cv
    config, space = files
    out = tmp_path / "sweep"
    val_scores, test_runs = [], []
    real_train_fold, real_run_fold = cv.train_fold, cv.run_fold

    def spy_train_fold(*a, **k):
        model, fit, test = real_train_fold(*a, **k)
        val_scores.append(fit.best_metrics["accuracy"])
        return model, fit, test

    def spy_run_fold(*a, **k):
        test_runs.append(a[3].index)
        return real_run_fold(*a, **k)

    monkeypatch.setattr(cv, "train_fold", spy_train_fold)
    monkeypatch.setattr(cv, "run_fold", spy_run_fold)
    assert main(sweep_args(config, space, ravdess_fixture, out, tmp_path / "cache")) == 0

    summary = json.loads((out / "sweep.json").read_text())
    for key in ("best_params", "best_value", "n_complete", "n_pruned", "test", "sampler", "storage", "study",
                "wall_seconds"):
        assert key in summary
    assert summary["n_complete"] == 2 and summary["n_pruned"] == 0 and summary["sampler"] == "grid"
    assert summary["storage"] == f"sqlite:///{(out / 'sweep.db').resolve()}"
    assert set(summary["test"]) >= {"accuracy_mean", "accuracy_std", "macro_f1_mean"}
    assert summary["best_params"]["loss.params.gamma.visual"] == 2.0

    # The objective is the mean of the folds' validation accuracies; a fold's test actors are scored once per
    # configuration: every fold for the best on average, and each fold for its own choice if that differs
    # (run_fold is the only place that predicts test actors).
    n_folds = SWEEP_TINY["protocol"]["n_folds"]
    chosen = {int(k): n for k, n in summary["nested"]["chosen_trials"].items()}
    assert sorted(chosen) == list(range(1, n_folds + 1))
    assert sorted(test_runs) == sorted([*range(1, n_folds + 1), *(k for k, n in chosen.items() if n != summary["best_trial"])])
    trial_scores = np.array(val_scores[: 2 * n_folds]).reshape(2, n_folds).mean(axis=1)
    trials = pd.read_csv(out / "trials.csv")
    assert sorted(trials["value"]) == pytest.approx(sorted(trial_scores))
    assert summary["best_value"] == pytest.approx(trial_scores.max())
    assert np.mean(summary["best_val_accuracy_folds"]) == pytest.approx(summary["best_value"])
    assert sorted(p.parent.name for p in (out / "best").rglob("predictions.csv") if p.parent.name.startswith("fold_")) \
        == [f"fold_{i}" for i in range(1, n_folds + 1)]
    nested = pd.read_csv(out / "nested" / "predictions.csv")
    assert summary["nested"]["pooled_accuracy"] == pytest.approx((nested["label"] == nested["pred"]).mean())
    peer = json.loads((out / "nested" / "results.json").read_text())["linear_peer"]  # each fold's chosen trial's peer
    assert sorted(peer["chosen_C"]) == [str(k) for k in range(1, n_folds + 1)]
    assert peer["network_minus_peer"]["difference"] == pytest.approx(
        summary["nested"]["pooled_accuracy"] - peer["concatenation"]["pooled_accuracy"])

    # Restarting on the same storage continues the study: the grid is done, no trial is added or retrained.
    val_scores.clear()
    test_runs.clear()
    assert main(sweep_args(config, space, ravdess_fixture, out, tmp_path / "cache")) == 0
    again = json.loads((out / "sweep.json").read_text())
    assert again["n_trials"] == 2 and again["n_complete"] == 2
    assert val_scores == [] and test_runs == []  # best run resumed from its finished folds
    assert again["test"] == summary["test"]


@pytest.mark.slow
def test_each_fold_chooses_by_its_own_validation_actors(ravdess_fixture, tmp_path, files, monkeypatch):
    """A planted configuration scores best on the validation actors of folds 2 and 3 (fold 1's test actors among
    them) and worst on fold 1's own: best on average over folds, it is the non-nested pick, but fold 1 never takes it."""
    from emofuse.protocol import cross_validation as cv
    config, space = files
    planted = {0: {1: 0.9, 2: 0.1, 3: 0.1}, 1: {1: 0.2, 2: 0.95, 3: 0.95}}  # switch_epoch -> fold -> validation acc.
    real_train_fold = cv.train_fold

    def planted_train_fold(trial_config, fs, inputs, fold, *a, **k):
        model, fit, test = real_train_fold(trial_config, fs, inputs, fold, *a, **k)
        fit.best_metrics["accuracy"] = planted[trial_config.loss.params["switch_epoch"]][fold.index]
        return model, fit, test

    monkeypatch.setattr(cv, "train_fold", planted_train_fold)
    out = tmp_path / "sweep"
    assert main(sweep_args(config, space, ravdess_fixture, out, tmp_path / "cache")) == 0
    summary = json.loads((out / "sweep.json").read_text())
    assert summary["best_params"]["loss.params.switch_epoch"] == 1  # mean 0.70 against 0.37: not nested
    planted_trial = summary["best_trial"]
    chosen = {int(k): n for k, n in summary["nested"]["chosen_trials"].items()}
    assert chosen[1] != planted_trial and chosen[2] == chosen[3] == planted_trial
    assert summary["nested"]["nesting"].startswith("strictly nested")
    nested = json.loads((out / "nested" / "results.json").read_text())
    by_fold = {f["fold"]: f for f in nested["folds"]}
    assert by_fold[1]["candidate"] == f"trial_{chosen[1]}" and (out / "trials" / f"trial_{chosen[1]}" / "folds" / "fold_1").is_dir()
    assert (out / "nested" / "folds" / "fold_1" / "result.json").is_file()
    fold_1 = json.loads((out / "nested" / "folds" / "fold_1" / "result.json").read_text())
    assert fold_1 == json.loads((out / "trials" / f"trial_{chosen[1]}" / "folds" / "fold_1" / "result.json").read_text())
    report = out / "report.html"
    assert main(["report", str(out), "--out", str(report)]) == 0
    assert "chosen-trials" in report.read_text() and "not nested" in report.read_text()


def test_restart_finishes_a_partial_grid(ravdess_fixture, tmp_path, files):
    config, space = files
    out = tmp_path / "sweep"
    args = sweep_args(config, space, ravdess_fixture, out, tmp_path / "cache", "--folds", "1")
    assert main(args + ["--trials", "1"]) == 0
    assert json.loads((out / "sweep.json").read_text())["n_trials"] == 1
    assert main(args) == 0
    summary = json.loads((out / "sweep.json").read_text())
    assert summary["n_trials"] == 2 and summary["n_complete"] == 2
    trials = pd.read_csv(out / "trials.csv")
    assert sorted(trials["params_loss.params.switch_epoch"]) == [0, 1]  # each grid point once


@pytest.mark.parametrize(
    "params, named",
    [
        ({"loss.params.swich_epoch": [1, 2]}, "loss.params.swich_epoch"),
        ({"loss.params.gamma.vidual": [1.0]}, "loss.params.gamma.vidual"),
        ({"train.lr": [-1.0]}, "train.lr"),
        ({"features.speaker_norm": [True, False]}, "features.speaker_norm"),
    ],
)
def test_bad_space_key_is_named(tmp_path, files, params, named, capsys):
    config, space = files
    space.write_text(yaml.safe_dump({"params": params}))
    assert main(sweep_args(config, space, tmp_path, tmp_path / "out", tmp_path / "cache")) == 2
    assert named in capsys.readouterr().err


def test_bad_space_file_is_named(tmp_path):
    from emofuse.experiments.sweep_space import load_space

    path = tmp_path / "space.yaml"
    path.write_text(yaml.safe_dump({"parms": {"train.lr": [0.1]}}))
    with pytest.raises(ConfigError, match="parms"):
        load_space(path)
    path.write_text(yaml.safe_dump({"params": {"train.lr": {"low": 1e-4, "high": 1e-2, "lg": True}}}))
    with pytest.raises(ConfigError, match="lg"):
        load_space(path)


def test_grid_refuses_ranges(tmp_path, files, capsys):
    config, space = files
    space.write_text(yaml.safe_dump({"params": {"train.lr": {"low": 1e-4, "high": 1e-2, "log": True}}}))
    assert main(sweep_args(config, space, tmp_path, tmp_path / "out", tmp_path / "cache")) == 2
    assert "tpe" in capsys.readouterr().err


def test_packaged_space_fits_the_mars_config():
    from pathlib import Path

    from emofuse.config.loading import load_config
    from emofuse.experiments.sweep_space import check_space, load_space

    repo = Path(__file__).resolve().parents[1]
    space = load_space(repo / "configs" / "spaces" / "mars_grid.yaml")
    config = load_config(repo / "configs" / "ravdess_mars.yaml")
    check_space(space, config.model_dump(mode="json"), "mars_grid.yaml")
    assert len(space.grid()) == 36
