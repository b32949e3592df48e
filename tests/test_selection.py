"""selection.candidates: variants of a config chosen per fold on that fold's validation speakers (nested)."""

import json

import pandas as pd
import pytest

from emofuse.cli import main
from emofuse.config.loading import load_config
from emofuse.protocol.cross_validation import run_cross_validation
from emofuse.protocol.selection import run_selection
from emofuse.inference.export import load_run_model
from emofuse.inference.predict import Predictor
from emofuse.core.registry import ConfigError
from emofuse.reporting.report import print_cv_summary
from emofuse.data.sample import sample_dir

from conftest import REPO

TWO = "selection={candidates: {first: {model.dropout: 0.3}, second: {model.dropout: 0.1}}}"


def fake_candidate(run_dir, val: dict[int, float], test: dict[int, float], metric: str = "accuracy") -> dict:
    """A finished candidate run: per fold a validation score (``metric``) at the selected epoch, a test accuracy and
    predictions that are right for that share of 10 clips."""
    folds = []
    for k in val:
        right = round(10 * test[k])
        table = pd.DataFrame({"clip": [f"f{k}c{i}" for i in range(10)], "take": "t", "actor": str(k), "fold": k,
                              "label": "happy", "pred": ["happy"] * right + ["sad"] * (10 - right)})
        (run_dir / "folds" / f"fold_{k}").mkdir(parents=True)
        table.to_csv(run_dir / "folds" / f"fold_{k}" / "predictions.csv", index=False)
        folds.append({"fold": k, "accuracy": test[k], "macro_f1": test[k], "modality_accuracy": {"audio": test[k]},
                      "val_at_best": {metric: val[k]}})
    (run_dir / "data_fingerprint.json").write_text('{"sha256": "x"}')
    return {"folds": folds, "pooled_accuracy": sum(test.values()) / len(test), "seconds": 1.0}


def test_a_candidate_best_only_on_a_folds_test_speakers_is_not_picked_for_it(tmp_path):
    config = load_config(REPO / "configs" / "ravdess_mars.yaml", [TWO])
    # 'second' is planted: the best test accuracy of fold 2 by far, but not the best on fold 2's validation speakers
    plan = {"first": ({1: 0.70, 2: 0.80, 3: 0.60}, {1: 0.7, 2: 0.5, 3: 0.6}),
            "second": ({1: 0.90, 2: 0.79, 3: 0.60}, {1: 0.8, 2: 1.0, 3: 0.9})}
    result = run_selection(config, tmp_path / "run", lambda cfg, out: fake_candidate(out, *plan[out.name]))
    assert result["selection"]["chosen"] == {1: "second", 2: "first", 3: "first"}  # fold 3: a tie goes to the first listed
    assert [f["accuracy"] for f in result["folds"]] == [0.8, 0.5, 0.6]
    predictions = pd.read_csv(tmp_path / "run" / "predictions.csv")
    assert result["pooled_accuracy"] == pytest.approx((8 + 5 + 6) / 30) == (predictions.label == predictions.pred).mean()
    assert result["deployed_candidate"] == "first" and result["selection"]["nested"]


def test_candidates_are_validated_when_the_config_loads():
    with pytest.raises(ConfigError, match="selection.candidates.bad: .*model.dropoutt"):
        load_config(REPO / "configs" / "ravdess_mars.yaml",
                    ["selection={candidates: {good: {model.dropout: 0.1}, bad: {model.dropoutt: 0.1}}}"])
    with pytest.raises(ConfigError, match="selection.candidates.a: seed cannot vary"):
        load_config(REPO / "configs" / "ravdess_mars.yaml", ["selection={candidates: {a: {seed: 1}, b: {seed: 2}}}"])


@pytest.mark.slow
def test_selection_run_on_the_sample_and_predict_uses_the_deployed_candidate(tmp_path, capsys):
    config = load_config(REPO / "configs" / "ravdess_mars_egemaps.yaml", [
        "protocol.n_folds=2", "train.epochs=3", "train.early_stopping.min_epochs=0", "loss.params.switch_epoch=1",
        "features.workers=1", TWO])
    result = run_cross_validation(config, sample_dir(), tmp_path / "run", tmp_path / "cache", progress=False)
    for fold in result["folds"]:
        best = max(fold["candidate_val"], key=lambda n: (fold["candidate_val"][n], n == "first"))
        assert fold["candidate"] == best
        own = json.loads((tmp_path / "run" / "candidates" / best / "folds" / f"fold_{fold['fold']}" / "result.json").read_text())
        assert own["accuracy"] == fold["accuracy"]
    assert result["n_clips"] == 180
    peer = result["linear_peer"]  # each fold's chosen candidate's peer, against the nested predictions
    for fold in result["folds"]:
        assert peer["chosen_C"][str(fold["fold"])] == fold["linear_peer"]["chosen_C"]
    assert peer["network_minus_peer"]["difference"] == pytest.approx(
        result["pooled_accuracy"] - peer["concatenation"]["pooled_accuracy"])
    print_cv_summary(result, tmp_path / "run")
    assert "candidates chosen per fold on its validation speakers (nested): fold 1:" in " ".join(capsys.readouterr().out.split())
    for fold in result["folds"]:  # folds/fold_k is the chosen candidate's fold
        linked = tmp_path / "run" / "folds" / f"fold_{fold['fold']}"
        assert linked.resolve() == (tmp_path / "run" / "candidates" / fold["candidate"] / "folds" / linked.name).resolve()
        assert (linked / "best.pt").is_file()
    predictor = Predictor(tmp_path / "run")
    assert predictor.run_dir == tmp_path / "run" / "candidates" / result["deployed_candidate"]
    assert load_run_model(tmp_path / "run")[1] == 1  # export reads the deployed candidate too
    assert main(["report", str(tmp_path / "run")]) == 0 and (tmp_path / "run" / "report.html").is_file()
    again = run_cross_validation(config, sample_dir(), tmp_path / "run", tmp_path / "cache", progress=False)  # resumes
    assert again["pooled_accuracy"] == result["pooled_accuracy"]
