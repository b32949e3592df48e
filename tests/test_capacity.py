"""Capacity that fits the data: the `linear` encoder makes a branch a logistic regression, the generic configs choose
among capacities per fold on validation speakers (nested), and `emofuse fit` trains the candidate most folds chose."""

import json

import numpy as np
import pandas as pd
import pytest
import torch

from emofuse.cli import main
from emofuse.config.loading import load_config
from emofuse.config.schema import candidate_config
from emofuse.core.registry import ConfigError
from emofuse.models.multimodal import create_model
from emofuse.protocol.final_fit import fit_final

from conftest import REPO

GENERIC = ["manifest_audio", "manifest_av", "manifest_features"]


def test_a_linear_branch_is_a_logistic_regression():
    config = load_config(REPO / "configs" / "manifest_audio.yaml")
    spec = candidate_config(config, "linear").model
    model = create_model(spec, {"audio": 6}, {"audio": False}, n_classes=3).eval()
    x = torch.randn(4, 6)
    weight, bias = model.classifiers["audio"][1].weight, model.classifiers["audio"][1].bias
    assert model.n_parameters() == 6 * 3 + 3
    assert torch.allclose(model({"audio": x}).probs, torch.softmax(x @ weight.T + bias, -1), atol=1e-6)
    with pytest.raises(ValueError, match="clip-level vectors"):
        create_model(spec, {"audio": 6}, {"audio": True}, n_classes=3)


@pytest.mark.parametrize("name", GENERIC)
def test_generic_configs_choose_their_capacity_per_fold(name):
    config = load_config(REPO / "configs" / f"{name}.yaml")
    candidates = config.selection.candidates
    assert {"mlp", "linear"} <= set(candidates)
    for candidate in candidates:  # every candidate a valid model of the config's modalities
        chosen = candidate_config(config, candidate)
        create_model(chosen.model, {m: 8 for m in chosen.model.encoders}, {m: False for m in chosen.model.encoders}, 4)
    linear = candidate_config(config, "linear")
    assert {p.name for p in linear.model.encoders.values()} == {"linear"}


def features_manifest(root, n_speakers=6, per_class=8, dims=10, seed=0):
    """Per-sample .npy audio and touch features with a planted linear signal: few samples, many dimensions."""
    rng = np.random.default_rng(seed)
    directions = rng.normal(size=(3, dims))
    rows = []
    for s in range(n_speakers):
        for label in range(3):
            for i in range(per_class):
                for m in ("audio", "touch"):
                    np.save(root / f"p{s}_{label}_{i}_{m}.npy", (1.5 * directions[label] + rng.normal(size=dims)).astype(np.float32))
                rows.append({"id": f"p{s}_{label}_{i}", "speaker": f"p{s}", "label": ["angry", "happy", "sad"][label],
                             "audio_features": f"p{s}_{label}_{i}_audio.npy", "touch_features": f"p{s}_{label}_{i}_touch.npy"})
    pd.DataFrame(rows).to_csv(root / "m.csv", index=False)
    return root / "m.csv"


@pytest.mark.slow
def test_the_capacity_choice_is_nested_and_fit_trains_the_deployed_candidate(tmp_path):
    manifest = features_manifest(tmp_path)
    overrides = ["protocol.n_folds=3", "train.epochs=4", "train.early_stopping.min_epochs=0", "loss.params.switch_epoch=2",
                 "features.workers=1", "features.adapt_clips=4"]
    config = load_config(REPO / "configs" / "manifest_features.yaml", [f"data.path={manifest}", *overrides])
    run = tmp_path / "cv"
    assert main(["cv", str(REPO / "configs" / "manifest_features.yaml"), "--data", str(manifest), "--out", str(run),
                 "--cache", str(tmp_path / "cache"), "--no-progress", *[a for o in overrides for a in ("--set", o)]]) == 0
    results = json.loads((run / "results.json").read_text())
    sign = -1 if results["selection"]["monitor"] == "nll" else 1
    for fold in results["folds"]:  # each fold's choice: the best on its own validation speakers (ties: first listed)
        order = list(config.selection.candidates)
        best = max(order, key=lambda n: (sign * fold["candidate_val"][n], -order.index(n)))
        assert fold["candidate"] == best
    deployed = results["deployed_candidate"]
    fit = fit_final(config, manifest, tmp_path / "fit", tmp_path / "cache", cv_run=run, progress=False)
    trained = load_config(tmp_path / "fit" / "config.yaml")
    assert trained.selection is None
    expected = candidate_config(config, deployed).model.encoders
    assert {m: (p.name, p.params.get("hidden")) for m, p in trained.model.encoders.items()} == \
        {m: (p.name, p.params.get("hidden")) for m, p in expected.items()}
    own = json.loads((run / "candidates" / deployed / "results.json").read_text())["folds"]
    assert fit["epoch"] == int(np.floor(np.median([f["best_epoch"] for f in own])))
    with pytest.raises(ConfigError, match="fitted from its cv run"):
        fit_final(config, manifest, tmp_path / "fit2", tmp_path / "cache", epoch=3, progress=False)


def test_a_capacity_best_only_on_a_folds_test_speakers_is_not_chosen_for_it(tmp_path):
    """Planted: the linear candidate is by far the best on fold 2's test speakers but not on its validation speakers
    (the generic configs choose by validation log-loss: lower is better); fold 2 keeps the MLP, so the pooled figure
    does not take the test speakers' side."""
    from emofuse.protocol.selection import run_selection
    from test_selection import fake_candidate

    config = load_config(REPO / "configs" / "manifest_audio.yaml", ["data.path=m.csv"])
    assert config.selection.monitor == "nll"
    plan = {"mlp": ({1: 0.90, 2: 0.60}, {1: 0.7, 2: 0.5}),
            "mlp_wide": ({1: 1.00, 2: 0.80}, {1: 0.6, 2: 0.6}),
            "linear": ({1: 0.50, 2: 0.65}, {1: 0.8, 2: 1.0})}
    result = run_selection(config, tmp_path / "run", lambda cfg, out: fake_candidate(out, *plan[out.name], metric="nll"))
    assert result["selection"]["chosen"] == {1: "linear", 2: "mlp"}
    assert result["selection"]["monitor"] == "nll"
    assert result["pooled_accuracy"] == pytest.approx((8 + 5) / 20)
    # by accuracy (the same numbers read as scores, higher better) the choice turns over
    by_accuracy = config.model_copy(update={"selection": config.selection.model_copy(update={"monitor": "accuracy"})})
    result = run_selection(by_accuracy, tmp_path / "acc", lambda cfg, out: fake_candidate(out, *plan[out.name]))
    assert result["selection"]["chosen"] == {1: "mlp_wide", 2: "mlp_wide"}


def test_a_selection_monitor_no_candidate_recorded_is_an_error_naming_it(tmp_path):
    from emofuse.protocol.selection import run_selection
    from test_selection import fake_candidate

    config = load_config(REPO / "configs" / "manifest_audio.yaml", ["data.path=m.csv"])
    plan = {name: ({1: 0.5}, {1: 0.5}) for name in config.selection.candidates}
    with pytest.raises(ConfigError, match="selection.monitor 'nll': no validation nll recorded for candidate"):
        run_selection(config, tmp_path / "run", lambda cfg, out: fake_candidate(out, *plan[out.name]))
