"""Runs with planted label noise: flipped clips listed, training dynamics recorded, the noisy-versus-hard diagnostic,
and `emofuse robustness` (tables with speaker-bootstrap intervals and sign-flip tests, plot, separation)."""

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from scipy import stats
from sklearn.metrics import roc_auc_score

from emofuse.cli import main
from emofuse.config.loading import config_from_dict
from emofuse.data.ravdess import parse_name
from emofuse.protocol.cartography import Dynamics, DynamicsRecorder, records_dynamics
from emofuse.protocol.cross_validation import run_cross_validation
from emofuse.experiments.diagnose import diagnose, suspicion
from emofuse.metrics.intervals import t_interval
from emofuse.models import create_model
from emofuse.config.schema import ModelConfig
from emofuse.training.batches import TensorData

TINY = {
    "seed": 0,
    "features": {"audio": {"name": "mfcc", "params": {"n_mfcc": 13, "deltas": False}}, "speaker_norm": True, "workers": 1},
    "model": {"encoders": {"audio": {"name": "cnn1d", "params": {"channels": [8, 8], "kernel_size": 3}},
                           "visual": {"name": "mlp", "params": {"hidden": [16, 16], "dropout": 0.1}}}},
    "loss": {"name": "mars", "params": {"switch_epoch": 2}},
    "train": {"epochs": 5, "batch_size": 16, "early_stopping": None, "record_dynamics": "on"},
    "protocol": {"n_folds": 3, "val_fraction": 0.25},
}


@pytest.fixture(scope="module")
def noisy_run(tmp_path_factory):
    from tests.conftest import make_ravdess_fixture

    root = tmp_path_factory.mktemp("noisy")
    data = make_ravdess_fixture(root / "ravdess")
    config = config_from_dict({**TINY, "name": "noisy", "data": {"label_noise": {"rate": 0.25}}})
    run_cross_validation(config, data, root / "run", root / "cache", progress=False)
    return root / "run", data


def test_a_noisy_run_lists_its_flipped_clips_and_records_their_dynamics(noisy_run):
    run, _ = noisy_run
    results = json.loads((run / "results.json").read_text())
    for fold in results["folds"]:
        d = run / "folds" / f"fold_{fold['fold']}"
        flipped = pd.read_csv(d / "flipped.csv")
        assert fold["label_noise"]["flipped"] == flipped["split"].value_counts().to_dict()
        assert len(flipped) == 4 * (len(fold["train_actors"]) + len(fold["val_actors"]))  # 16 clips per actor, 25 %
        assert set(flipped["actor"]) == set(fold["train_actors"]) | set(fold["val_actors"])
        dyn = Dynamics.load(d / "dynamics.npz")
        assert list(dyn.epochs) == list(range(fold["epochs_run"]))
        assert set(dyn.clip[dyn.flipped]) == set(flipped.loc[flipped["split"] == "train", "clip"])
        assert all(p.shape == (fold["epochs_run"], len(dyn.clip)) for p in dyn.p_label.values())
        # the trajectory's last point is the last epoch's model on the training clips, scored independently by
        # train_losses.csv (cross-entropy of the trained-on label)
        losses = pd.read_csv(d / "train_losses.csv").set_index("clip").loc[dyn.clip]
        for m in ("audio", "visual"):
            assert np.allclose(dyn.p_label[m][-1], np.exp(-losses[f"ce_{m}"].to_numpy()), atol=1e-5)
        # test clips are scored against their true labels
        test = pd.read_csv(d / "predictions.csv")
        assert list(test["label"]) == [parse_name(c).emotion_name for c in test["clip"]]
        assert (d / "val_predictions.csv").is_file()


def test_diagnose_measures_how_well_each_score_finds_the_flipped_clips(noisy_run, tmp_path):
    run, data = noisy_run
    summary = diagnose([run], tmp_path / "diag", top=5)
    for name in ("separation.csv", "separation.md", "separation_folds.csv", "cartography.png", "hardest_clips.csv",
                 "hardest_clips.md", "diagnosis.json"):
        assert (tmp_path / "diag" / name).is_file(), name
    per_fold = pd.read_csv(tmp_path / "diag" / "separation_folds.csv")
    assert set(per_fold["score"]) == {"mars_weight", "confidence", "correctness", "variability"}
    assert set(per_fold["branch"]) == {"audio", "visual", "mean"}
    # fold 1, Mars weight of both branches together, by hand (gamma 1: the run's)
    dyn = Dynamics.load(run / "folds" / "fold_1" / "dynamics.npz")
    w = np.mean([np.exp(-(1 - dyn.p_label[m][-1])) for m in ("audio", "visual")], axis=0)
    row = per_fold[(per_fold["fold"] == 1) & (per_fold["score"] == "mars_weight") & (per_fold["branch"] == "mean")].iloc[0]
    assert row["auroc"] == pytest.approx(roc_auc_score(dyn.flipped, -w))
    k = int(dyn.flipped.sum())
    assert row["precision_at_rate"] == pytest.approx(dyn.flipped[np.argsort(w, kind="stable")[:k]].mean())
    confidence = per_fold[(per_fold["fold"] == 1) & (per_fold["score"] == "confidence") & (per_fold["branch"] == "audio")]
    assert confidence["auroc"].iloc[0] == pytest.approx(roc_auc_score(dyn.flipped, -dyn.p_label["audio"].mean(0)))
    # hardest clips: every training clip once, hardest for every branch first, with the audio file to listen to
    hardest = pd.read_csv(tmp_path / "diag" / "hardest_clips.csv")
    assert hardest["clip"].is_unique and len(hardest) == 96
    assert (hardest["worst_rank"].diff().dropna() >= 0).all()
    assert hardest.loc[0, "worst_rank"] == hardest.loc[0, ["rank_audio", "rank_visual"]].max()
    first = hardest.loc[0]
    assert first["file"].endswith(f"{first['clip']}.wav") and (data / "audio16k").as_posix() in first["file"]
    assert summary["hardest"][0] == first["clip"]


def test_dynamics_recorder_resumes_without_duplicating_epochs(tmp_path):
    torch.manual_seed(0)
    model = create_model(ModelConfig.model_validate({"encoders": {"audio": {"name": "mlp", "params": {"hidden": [4]}}}}),
                         {"audio": 3}, {"audio": False}, 2)
    train = TensorData({"audio": np.random.default_rng(0).normal(size=(6, 3)).astype(np.float32)}, np.array([0, 1, 0, 1, 1, 0]))
    meta = pd.DataFrame({"clip": [f"c{i}" for i in range(6)], "actor": [1] * 6, "label": [0, 1, 0, 1, 0, 0]})
    path = tmp_path / "dynamics.npz"
    recorder = DynamicsRecorder(model, train, meta, ["a", "b"], path)
    for epoch in range(3):
        recorder(epoch, {})
    resumed = DynamicsRecorder(model, train, meta, ["a", "b"], path)  # a resume from the checkpoint of epoch 1
    with torch.no_grad():
        next(model.parameters()).add_(1.0)
    resumed(2, {})
    dyn = Dynamics.load(path)
    assert list(dyn.epochs) == [0, 1, 2] and dyn.p_label["audio"].shape == (3, 6)
    assert list(dyn.flipped) == [False, False, False, False, True, False]
    coords = dyn.coordinates()
    p = dyn.p_label["audio"]
    assert np.allclose(coords["confidence_audio"], p.mean(0)) and np.allclose(coords["variability_audio"], p.std(0))
    with pytest.raises(ValueError, match="other training clips"):
        DynamicsRecorder(model, TensorData({"audio": np.zeros((6, 3), np.float32)}, np.ones(6, int)), meta, ["a", "b"], path)
    assert records_dynamics("auto", {"a": np.zeros((2, 3))}) and not records_dynamics("auto", {"a": [np.zeros((5, 3))]})
    assert records_dynamics("on", {"a": [np.zeros((5, 3))]}) and not records_dynamics("off", {"a": np.zeros((2, 3))})


def test_dynamics_leave_a_branch_out_of_clips_without_its_modality(tmp_path):
    """A clip of a corpus without faces has no visual trajectory: NaN there, not a hard clip, and the branches'
    mean score is its audio branch's."""
    torch.manual_seed(0)
    model = create_model(ModelConfig.model_validate({"encoders": {"audio": {"name": "mlp", "params": {"hidden": [4]}},
                                                                  "visual": {"name": "mlp", "params": {"hidden": [4]}}}}),
                         {"audio": 3, "visual": 2}, {"audio": False, "visual": False}, 2)
    rng = np.random.default_rng(0)
    has_face = np.array([True, True, True, False, False, True])
    train = TensorData({"audio": rng.normal(size=(6, 3)).astype(np.float32), "visual": rng.normal(size=(6, 2)).astype(np.float32)},
                       np.array([0, 1, 0, 1, 1, 0]), presence={"visual": has_face})
    meta = pd.DataFrame({"clip": [f"c{i}" for i in range(6)], "actor": [1] * 6, "label": [0, 1, 0, 1, 1, 0]})
    recorder = DynamicsRecorder(model, train, meta, ["a", "b"], tmp_path / "dynamics.npz")
    for epoch in range(2):
        recorder(epoch, {})
    coords = Dynamics.load(tmp_path / "dynamics.npz").coordinates()
    for column in ("confidence_visual", "variability_visual", "correctness_visual", "p_last_visual"):
        assert coords[column].isna().to_numpy().tolist() == (~has_face).tolist()
    assert coords[[c for c in coords.columns if c.endswith("_audio")]].notna().all().all()
    scores = suspicion(coords, ["audio", "visual"], {"audio": 1.0, "visual": 1.0}, normalize=True)
    assert scores.notna()[[c for c in scores.columns if c.endswith("/mean")]].all().all()
    np.testing.assert_allclose(scores.loc[~has_face, "confidence/mean"], scores.loc[~has_face, "confidence/audio"])


def test_t_interval_over_folds():
    values = np.array([0.80, 0.85, 0.78, 0.90, 0.82, 0.79])
    mean, low, high = t_interval(values)
    assert (low, high) == pytest.approx(stats.t.interval(0.95, 5, loc=values.mean(), scale=stats.sem(values)))
    assert mean == pytest.approx(values.mean())
    assert np.isnan(t_interval([0.8])[1])


@pytest.mark.slow
def test_robustness_command_writes_the_table_plot_and_separation(ravdess_fixture, tmp_path, capsys):
    import yaml

    paths = []
    for name, loss in (("ce", {"name": "cross_entropy"}), ("mars", TINY["loss"])):
        path = tmp_path / f"{name}.yaml"
        path.write_text(yaml.safe_dump({**TINY, "name": name, "loss": loss, "train": {**TINY["train"], "epochs": 3}}))
        paths.append(str(path))
    out = tmp_path / "rob"
    common = ["--data", str(ravdess_fixture), "--out", str(out), "--seeds", "1", "--cache", str(tmp_path / "cache"), "--no-progress"]
    # a bad level is refused before anything runs, naming the key
    assert main(["robustness", *paths, "--axis", "data.label_noise.rate", "--values", "0", "1.5", *common]) == 2
    assert "'data.label_noise.rate': Input should be less than 1 (got 1.5)" in capsys.readouterr().err
    assert not out.exists()
    assert main(["robustness", *paths, "--axis", "data.label_noise.rate", "--values", "0", "0.25", *common]) == 0
    table = pd.read_csv(out / "robustness.csv")
    assert list(zip(table["method"], table["value"])) == [("ce", 0), ("mars", 0), ("ce", 0.25), ("mars", 0.25)]
    runs = pd.read_csv(out / "runs.csv")
    for r in table.itertuples():
        label = f"{r.method}__data.label_noise.rate={0 if r.value == 0 else r.value}"
        predictions = pd.read_csv(out / label / "seed_0" / "predictions.csv")
        assert r.accuracy_pooled == pytest.approx((predictions["label"] == predictions["pred"]).mean())
        assert r.ci_low <= r.accuracy_pooled <= r.ci_high and r.n_folds == 3 and r.n_speakers == 6
        assert r.accuracy_mean == pytest.approx(runs[(runs["method"] == r.method) & (runs["value"] == r.value)]["accuracy"].mean())
        reference = pd.read_csv(out / label.replace(r.method, "ce", 1) / "seed_0" / "predictions.csv")
        same = predictions.merge(reference, on="clip", suffixes=("", "_ref"))
        delta = ((same["label"] == same["pred"]).mean() - (same["label_ref"] == same["pred_ref"]).mean())
        assert (np.isnan(r.delta_vs_reference) if r.method == "ce" else r.delta_vs_reference == pytest.approx(delta))
    # every method and level ran under one budget rule (training/budget.py)
    budget = json.loads((out / "robustness.json").read_text())["budget"]
    assert len(budget["own_min_epochs"]) == 4 and budget["min_epochs"] == 3
    assert (out / "robustness.png").is_file()
    text = (out / "robustness.md").read_text()
    assert "data.label_noise.rate = 0.25" in text and "Difference to `ce` in points" in text
    separation = pd.read_csv(out / "separation.csv")
    assert set(separation["value"]) == {0.25} and set(separation["method"]) == {"ce", "mars"}
    assert separation["auroc_mean"].between(0, 1).all()
    flipped = pd.read_csv(out / "mars__data.label_noise.rate=0.25" / "seed_0" / "folds" / "fold_2" / "flipped.csv")
    assert len(flipped) == 16  # 4 training / validation actors, 4 of their 16 clips each
    assert not (out / "mars__data.label_noise.rate=0" / "seed_0" / "folds" / "fold_2" / "flipped.csv").read_text().strip().count("\n")


def test_runs_without_training_dynamics_are_left_out_of_the_separation_and_named(tmp_path):
    from emofuse.experiments.robustness import label_noise_separation

    (tmp_path / "seq__data.label_noise.rate=0.2" / "seed_0" / "folds" / "fold_1").mkdir(parents=True)
    table, without = label_noise_separation({"seq__data.label_noise.rate=0.2": ("seq", 0.2)}, tmp_path, seeds=1)
    assert table.empty and without == ["seq__data.label_noise.rate=0.2/seed_0"]


def test_on_and_off_are_read_as_yaml_writes_them():
    from emofuse.config.loading import load_config

    config = load_config(Path(__file__).parents[1] / "configs" / "ravdess_mars.yaml", ["train.record_dynamics=on", "train.amp=off"])
    assert (config.train.record_dynamics, config.train.amp) == ("on", "off")  # YAML reads a bare on / off as booleans
    assert load_config(Path(__file__).parents[1] / "configs" / "ravdess_mars.yaml", ["train.record_dynamics=off"]).train.record_dynamics == "off"


def test_levels_are_validated_with_the_axis_in_place():
    from emofuse.experiments.robustness import load_levels
    from emofuse.core.registry import ConfigError
    from tests.conftest import REPO

    configs = [REPO / "configs" / "ravdess_ce.yaml", REPO / "configs" / "ravdess_mars.yaml"]
    # a corruption section given by --set needs no level of its own: the axis supplies it
    levels = load_levels(configs, "data.modality_noise.level", ["0", "0.5"],
                         ["data.modality_noise.modality=visual", "data.modality_noise.kind=missing"])
    assert [(lv.method, lv.value, lv.config.data.modality_noise.level) for lv in levels] == [
        ("ravdess_ce", 0, 0.0), ("ravdess_ce", 0.5, 0.5), ("ravdess_mars", 0, 0.0), ("ravdess_mars", 0.5, 0.5)]
    snr = load_levels(configs[:1], "data.modality_noise.level", [".inf", "0"],
                      ["data.modality_noise={modality: audio, kind: gaussian, where: both}"])
    assert snr[0].value == float("inf") and snr[0].config.data.modality_noise.where == "both"
    with pytest.raises(ConfigError, match="data.modality_noise.modality: 'face' is not one of"):
        load_levels(configs, "data.modality_noise.level", ["0"], ["data.modality_noise.modality=face",
                                                                   "data.modality_noise.kind=missing"])
    with pytest.raises(ConfigError, match="repeats"):
        load_levels(configs, "data.label_noise.rate", ["0.1", "0.10"])


def test_diagnose_without_recorded_dynamics_is_a_clear_error(tmp_path, capsys):
    (tmp_path / "run" / "folds" / "fold_1").mkdir(parents=True)
    (tmp_path / "run" / "config.yaml").write_text("name: x\n")
    assert main(["diagnose", str(tmp_path / "run")]) == 2
    assert "no folds/fold_k/dynamics.npz: run it with train.record_dynamics on" in capsys.readouterr().err
    assert main(["diagnose", str(tmp_path / "elsewhere")]) == 2
    assert "not an `emofuse cv` run directory" in capsys.readouterr().err
