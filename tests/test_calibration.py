"""Calibration (issue 30 item 7): temperature scaling per fold, calibration error, and what predict does with them
(a temperature, --classes, --min-confidence)."""

import json
import math

import numpy as np
import pandas as pd
import pytest
import torch

from emofuse.config.loading import config_from_dict
from emofuse.core.registry import ConfigError
from emofuse.inference.predict import Predictor
from emofuse.inference.printing import print_predictions
from emofuse.metrics.calibration import (CALIBRATION_FILE, Temperatures, brier, calibration_scores,
                                         expected_calibration_error, fit_temperature, nll, temperature_scaled)
from emofuse.protocol.cross_validation import run_cross_validation
from emofuse.reporting.report import calibration_line

from conftest import feature_manifest_config, make_feature_manifest


@pytest.mark.parametrize("planted", [0.5, 2.5])
def test_fitting_recovers_a_planted_temperature(planted):
    """Labels drawn from softmax(z / T0): the fitted T on softmax(z) is T0."""
    rng = np.random.default_rng(0)
    logits = rng.normal(0, 3, (20000, 4))
    truth = torch.softmax(torch.as_tensor(logits / planted), -1).numpy()
    target = np.array([rng.choice(4, p=p) for p in truth])
    fitted = fit_temperature(torch.softmax(torch.as_tensor(logits), -1).numpy(), target)
    assert fitted == pytest.approx(planted, rel=0.05)


def test_a_temperature_divides_the_logits_and_keeps_absent_classes_absent():
    logits = torch.tensor([[2.0, -1.0, 0.5], [0.0, 3.0, 1.0]])
    probs = logits.softmax(-1)
    assert torch.allclose(temperature_scaled(probs, 2.0), (logits / 2.0).softmax(-1), atol=1e-6)
    as_array = temperature_scaled(probs.numpy(), 0.5)
    assert isinstance(as_array, np.ndarray) and np.allclose(as_array, (logits / 0.5).softmax(-1).numpy(), atol=1e-6)
    masked = np.array([[0.7, 0.0, 0.3]])  # a class the sample's corpus lacks
    scaled = temperature_scaled(masked, 3.0)
    assert scaled[0, 1] == 0 and scaled.sum() == pytest.approx(1) and scaled[0, 0] < 0.7
    assert np.argmax(scaled) == np.argmax(masked)


def test_calibration_error_nll_and_brier_by_hand():
    probs = np.array([[0.95, 0.03, 0.02],  # confidence 0.95, right
                      [0.01, 0.97, 0.02],  # 0.97, wrong
                      [0.41, 0.30, 0.29],  # 0.41, right
                      [0.25, 0.30, 0.45]])  # 0.45, right
    target = np.array([0, 0, 0, 2])
    # 15 bins of width 1/15: 0.95 and 0.97 share [14/15, 1] (accuracy 0.5, confidence 0.96), 0.41 and 0.45 share
    # [6/15, 7/15) (accuracy 1, confidence 0.43): ECE = 2/4 * 0.46 + 2/4 * 0.57
    assert expected_calibration_error(probs, target) == pytest.approx(0.515, abs=1e-6)
    assert nll(probs, target) == pytest.approx(-(math.log(0.95) + math.log(0.01) + math.log(0.41) + math.log(0.45)) / 4)
    assert brier(probs, target) == pytest.approx((0.0038 + 1.9214 + 0.5222 + 0.455) / 4)
    assert calibration_scores(probs, target) == {"ece": pytest.approx(0.515, abs=1e-6), "nll": nll(probs, target),
                                                 "brier": brier(probs, target)}


def test_a_fold_without_temperatures_has_none_and_a_damaged_record_is_refused(tmp_path):
    assert Temperatures.of_fold(tmp_path) == Temperatures(1.0, {}, 0)
    (tmp_path / CALIBRATION_FILE).write_text('{"temperature": 2.0}')
    with pytest.raises(ConfigError, match="calibration.json: not a calibration record"):
        Temperatures.of_fold(tmp_path)
    (tmp_path / CALIBRATION_FILE).write_text('{"temperature": -1, "branch_temperatures": {}, "n_fitted": 3}')
    with pytest.raises(ConfigError, match="positive"):
        Temperatures.of_fold(tmp_path)


@pytest.fixture(scope="module")
def manifest_run(tmp_path_factory):
    """A 3-fold cv run on precomputed features (audio and visual MLPs, average fusion): seconds."""
    root = tmp_path_factory.mktemp("calibration")
    manifest = make_feature_manifest(root / "data")
    config = config_from_dict(feature_manifest_config(manifest, **{"protocol.calibrate": True}))
    summary = run_cross_validation(config, manifest, root / "run", root / "cache", progress=False)
    return root, summary


def test_each_fold_fits_its_temperature_on_its_validation_speakers_and_reports_calibration(manifest_run):
    root, summary = manifest_run
    run = root / "run"
    predictions = pd.read_csv(run / "predictions.csv")
    classes = [c[len("prob_"):] for c in predictions if c.startswith("prob_")]
    for fold in summary["folds"]:
        fold_dir = run / "folds" / f"fold_{fold['fold']}"
        stored = json.loads((fold_dir / CALIBRATION_FILE).read_text())
        val = pd.read_csv(fold_dir / "val_predictions.csv")
        assert set(val["actor"]) == set(fold["val_actors"])
        target = val["label"].map(classes.index).to_numpy()
        assert stored["temperature"] == pytest.approx(fit_temperature(val[[f"prob_{c}" for c in classes]].to_numpy(), target),
                                                      rel=1e-4)
        assert sorted(stored["branch_temperatures"]) == ["audio", "visual"] and stored["n_fitted"] == len(val)
        test = predictions[predictions["fold"] == fold["fold"]]
        probs, test_target = test[[f"prob_{c}" for c in classes]].to_numpy(), test["label"].map(classes.index).to_numpy()
        c = fold["calibration"]
        assert c["temperature"] == stored["temperature"]
        assert c["uncalibrated"]["ece"] == pytest.approx(expected_calibration_error(probs, test_target), abs=1e-6)
        assert c["calibrated"]["nll"] == pytest.approx(nll(temperature_scaled(probs, stored["temperature"]), test_target),
                                                       abs=1e-6)
    pooled = summary["calibration"]
    assert pooled["temperature"] == {f["fold"]: f["calibration"]["temperature"] for f in summary["folds"]}
    target = predictions["label"].map(classes.index).to_numpy()
    assert pooled["uncalibrated"] == pytest.approx(calibration_scores(predictions[[f"prob_{c}" for c in classes]].to_numpy(),
                                                                      target))
    assert json.loads((run / "results.json").read_text())["calibration"]["calibrated"] == pytest.approx(pooled["calibrated"])


def test_without_temperatures_the_calibration_is_still_reported(tmp_path):
    """protocol.calibrate: false (the default) fits no temperature, and the test ECE is reported as it is."""
    manifest = make_feature_manifest(tmp_path / "data")
    tree = feature_manifest_config(manifest, **{"protocol.linear_peer": False, "train.epochs": 1})
    config = config_from_dict(tree)
    assert not config.protocol.calibrate
    summary = run_cross_validation(config, manifest, tmp_path / "run", tmp_path / "cache", progress=False,
                                   only_folds=[1])
    assert "calibration" not in summary["folds"][0]
    assert not (tmp_path / "run" / "folds" / "fold_1" / CALIBRATION_FILE).exists()
    predictions = pd.read_csv(tmp_path / "run" / "predictions.csv")
    classes = [c[len("prob_"):] for c in predictions.columns if c.startswith("prob_")]
    probs = predictions[[f"prob_{c}" for c in classes]].to_numpy()
    target = predictions["label"].map({c: k for k, c in enumerate(classes)}).to_numpy()
    assert summary["calibration"] == {"uncalibrated": pytest.approx(calibration_scores(probs, target))}
    assert "no temperature scaling" in calibration_line(summary["calibration"])


def features_of(root, sample: str) -> dict:
    return {m: np.load(root / "data" / "features" / f"{sample}_{m[0]}.npy") for m in ("audio", "visual")}


def test_predict_applies_each_folds_temperature(manifest_run):
    root, _ = manifest_run
    raw = features_of(root, "spk1_negative_0")
    predictor = Predictor(root / "run", fold=2, decimals=None)
    t = predictor.folds[0].temperatures
    assert t.fused != 1.0 and predictor.has_temperatures
    scaled = predictor.predict_extracted(["x"], [(raw, {}, {})])[0]
    predictor.calibrated = False
    plain = predictor.predict_extracted(["x"], [(raw, {}, {})])[0]
    classes = predictor.class_names

    def vector(probs):
        return np.array([probs[c] for c in classes])

    assert not np.allclose(vector(scaled["probs"]), vector(plain["probs"]))
    assert vector(scaled["probs"]) == pytest.approx(temperature_scaled(vector(plain["probs"]), t.fused), abs=1e-6)
    for m in ("audio", "visual"):
        assert vector(scaled["modality_probs"][m]) == pytest.approx(
            temperature_scaled(vector(plain["modality_probs"][m]), t.branches[m]), abs=1e-6)
    # with the visual branch missing, the decision fusion is the audio branch with its own temperature
    predictor.calibrated = True
    alone = predictor.predict_extracted(["x"], [({"audio": raw["audio"]}, {"visual": "not given"}, {})])[0]
    assert alone["probs"] == pytest.approx(alone["modality_probs"]["audio"]) == scaled["modality_probs"]["audio"]


def test_a_run_without_temperatures_predicts_as_with_t_1(manifest_run, tmp_path):
    root, _ = manifest_run
    import shutil

    old = tmp_path / "old"
    shutil.copytree(root / "run", old)
    for path in old.glob("folds/*/" + CALIBRATION_FILE):
        path.unlink()
    raw = features_of(root, "spk2_positive_1")
    before = Predictor(old, decimals=None)
    assert not before.has_temperatures
    current = Predictor(root / "run", decimals=None)
    current.calibrated = False
    assert before.predict_extracted(["x"], [(raw, {}, {})]) == current.predict_extracted(["x"], [(raw, {}, {})])


def test_classes_restrict_and_renormalise_and_unknown_names_are_refused(manifest_run):
    root, _ = manifest_run
    predictor = Predictor(root / "run", decimals=None)
    raw = [(features_of(root, s), {}, {}) for s in ("spk1_negative_0", "spk10_positive_2")]
    full = predictor.predict_extracted(["a", "b"], raw)
    kept = predictor.predict_extracted(["a", "b"], raw, classes=["positive", "neutral"])
    for f, k in zip(full, kept):
        assert list(k["probs"]) == [c for c in predictor.class_names if c in ("positive", "neutral")]
        total = f["probs"]["positive"] + f["probs"]["neutral"]
        assert k["probs"] == pytest.approx({c: f["probs"][c] / total for c in ("positive", "neutral")})
        assert k["pred"] == max(k["probs"], key=k["probs"].get)
        assert sum(k["modality_probs"]["audio"].values()) == pytest.approx(1) and len(k["modality_probs"]["audio"]) == 2
    with pytest.raises(ConfigError, match="'postive' is not a class of the model .*did you mean 'positive'"):
        predictor.predict_extracted(["a"], raw[:1], classes=["postive", "neutral"])
    with pytest.raises(ConfigError, match="two or more"):
        predictor.predict_extracted(["a"], raw[:1], classes=["neutral"])


def test_min_confidence_flags_an_answer_below_it(manifest_run, capsys):
    root, _ = manifest_run
    predictor = Predictor(root / "run", decimals=None)
    raw = [(features_of(root, "spk1_negative_0"), {}, {})]
    (entry,) = predictor.predict_extracted(["a"], raw)
    assert "uncertain" not in entry  # no level: no flag (the run has no card stating one)
    top = max(entry["probs"].values())
    assert predictor.predict_extracted(["a"], raw, min_confidence=top + 1e-3)[0]["uncertain"] is True
    assert predictor.predict_extracted(["a"], raw, min_confidence=top - 1e-3)[0]["uncertain"] is False
    assert "uncertain" not in predictor.predict_extracted(["a"], raw, min_confidence=0)[0]
    with pytest.raises(ConfigError, match="min_confidence: a confidence level is a probability"):
        predictor.predict_extracted(["a"], raw, min_confidence=1.5)
    flagged = predictor.predict_extracted(["clip.wav"], raw, min_confidence=0.99)
    print_predictions(flagged, predictor.class_names)
    assert f"uncertain ({entry['pred']} {entry['probs'][entry['pred']]:.2f})" in capsys.readouterr().out


def test_a_model_card_states_the_default_level(manifest_run, tmp_path):
    import shutil

    root, _ = manifest_run
    bundled = tmp_path / "bundled"
    shutil.copytree(root / "run", bundled)
    (bundled / "card.json").write_text(json.dumps({"min_confidence": 0.999}))
    predictor = Predictor(bundled)
    raw = [(features_of(root, "spk1_negative_0"), {}, {})]
    assert predictor.predict_extracted(["a"], raw)[0]["uncertain"] is True
    assert "uncertain" not in predictor.predict_extracted(["a"], raw, min_confidence=0)[0]


def test_scoring_on_another_corpus_reports_calibration_with_and_without_temperatures(manifest_run, tmp_path, caplog):
    from emofuse.protocol.cross_corpus import evaluate_on_manifest

    root, _ = manifest_run
    other = make_feature_manifest(tmp_path / "other", speakers=("a1", "a2", "a3"), per_label=2, seed=7)
    result = evaluate_on_manifest(root / "run", other, tmp_path / "eval", tmp_path / "cache", progress=False)
    warned = [r.getMessage() for r in caplog.records if r.name == Predictor.__module__]
    assert warned and len(warned) == len(set(warned))  # each speaker group's warning once, not again per pass
    table = pd.read_csv(tmp_path / "eval" / "predictions.csv")  # what predict answers: with the temperatures
    classes = result["run_classes"]
    probs, target = table[[f"prob_{c}" for c in classes]].to_numpy(), table["target"].map(classes.index).to_numpy()
    c = result["calibration"]
    assert c["calibrated"]["all_classes"] == pytest.approx(calibration_scores(probs, target), abs=1e-5)
    assert c["uncalibrated"]["all_classes"]["nll"] != pytest.approx(c["calibrated"]["all_classes"]["nll"], abs=1e-4)
    manifest = pd.read_csv(other)  # the models' own probabilities, each speaker normalised as evaluate does
    raw = Predictor(root / "run")
    raw.calibrated = False
    extracted = [({m: np.load(other.parent / row[f"{m}_features"]) for m in ("audio", "visual")}, {}, {})
                 for _, row in manifest.iterrows()]
    entries = raw.predict_extracted(list(manifest["id"]), extracted, list(manifest["speaker"]))
    plain = np.array([[e["probs"][k] for k in classes] for e in entries])
    assert c["uncalibrated"]["all_classes"] == pytest.approx(
        calibration_scores(plain, manifest["label"].map(classes.index).to_numpy()), abs=1e-5)
    assert set(c["calibrated"]) == {"all_classes", "shared_classes"}


def test_a_final_fit_takes_the_median_of_the_cross_validations_temperatures(manifest_run, tmp_path):
    from emofuse.protocol.final_fit import fit_final

    root, summary = manifest_run
    manifest = root / "data" / "manifest.csv"
    fit_final(config_from_dict(feature_manifest_config(manifest, **{"protocol.calibrate": True})), manifest,
              tmp_path / "model", root / "cache",
              cv_run=root / "run", progress=False)
    fitted = Temperatures.of_fold(tmp_path / "model" / "folds" / "fold_0")
    folds = [f["calibration"] for f in summary["folds"]]
    assert fitted.fused == pytest.approx(np.median([c["temperature"] for c in folds]))
    assert fitted.branches["audio"] == pytest.approx(np.median([c["branch_temperatures"]["audio"] for c in folds]))
    assert Predictor(tmp_path / "model").has_temperatures


def test_the_pooled_summary_scales_each_folds_clips_by_its_temperature_and_scores_each_corpus():
    from emofuse.protocol.calibration import calibration_summary

    rng = np.random.default_rng(1)
    probs = rng.dirichlet([1, 1, 1], 40)
    table = pd.DataFrame({"fold": np.repeat([1, 2], 20), "corpus": np.tile(["x", "y"], 20),
                          "label": rng.choice(["a", "b", "c"], 40), **{f"prob_{c}": probs[:, k] for k, c in enumerate("abc")}})
    folds = [{"fold": 1, "calibration": {"temperature": 0.5}}, {"fold": 2, "calibration": {"temperature": 2.0}}]
    summary = calibration_summary(folds, table, ["a", "b", "c"])["calibration"]
    target = table["label"].map("abc".index).to_numpy()
    scaled = np.concatenate([temperature_scaled(probs[:20], 0.5), temperature_scaled(probs[20:], 2.0)])
    assert summary["calibrated"] == pytest.approx(calibration_scores(scaled, target))
    y = (table["corpus"] == "y").to_numpy()
    assert summary["per_corpus"]["y"]["calibrated"] == pytest.approx(calibration_scores(scaled[y], target[y]))
    assert summary["per_corpus"]["x"]["uncalibrated"] == pytest.approx(calibration_scores(probs[~y], target[~y]))
    plain = calibration_summary([{"fold": 1}], table, ["a", "b", "c"])["calibration"]  # a run without temperatures
    assert set(plain) == {"uncalibrated", "per_corpus"} and plain["uncalibrated"] == summary["uncalibrated"]
