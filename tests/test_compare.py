"""emofuse compare / sensitivity: the output contract, paired statistics, config inheritance."""

import json

import numpy as np
import pandas as pd
import pytest
from scipy.stats import wilcoxon

from emofuse.cli import main
from emofuse.config import config_from_dict, load_config
from emofuse.evaluation.compare import paired_p_value
from emofuse.registry import ConfigError
from tests.conftest import REPO

TINY = {
    "seed": 0,
    "features": {"audio": {"name": "mfcc", "params": {"n_mfcc": 13, "deltas": False}}, "speaker_norm": True, "workers": 1},
    "model": {"encoders": {"audio": {"name": "cnn1d", "params": {"channels": [8, 8], "kernel_size": 3}},
                           "visual": {"name": "mlp", "params": {"hidden": [16, 16], "dropout": 0.1}}}},
    "train": {"epochs": 3, "batch_size": 16, "early_stopping": None},
    "protocol": {"n_folds": 3, "val_fraction": 0.25},
}


def write_config(path, name, **parts):
    import yaml

    path.write_text(yaml.safe_dump({**TINY, "name": name, **parts}))
    return path


def test_compare_writes_the_table_runs_and_plots(ravdess_fixture, tmp_path):
    ce = write_config(tmp_path / "ce.yaml", "ce")
    mars = write_config(tmp_path / "mars.yaml", "mars", loss={"name": "mars", "params": {"switch_epoch": 1}})
    mmtm = write_config(tmp_path / "mmtm.yaml", "mmtm", model={**TINY["model"], "fusion": {"name": "mmtm"}})
    concat = write_config(tmp_path / "concat.yaml", "concat", model={**TINY["model"], "fusion": {"name": "concat"}},
                          loss={"name": "fused_cross_entropy"})
    out = tmp_path / "cmp"
    args = ["compare", str(mars), str(ce), str(mmtm), str(concat), "--data", str(ravdess_fixture), "--out", str(out),
            "--seeds", "2", "--cache", str(tmp_path / "cache"), "--no-progress"]
    assert main(args) == 0
    table = pd.read_csv(out / "comparison.csv")
    assert list(table["method"]) == ["mars", "ce", "mmtm", "concat"]
    for column in ("method", "accuracy_mean", "accuracy_std", "macro_f1_mean", "params", "p_value",
                   "accuracy_audio_mean", "accuracy_visual_mean"):
        assert column in table.columns
    assert (table["n_runs"] == 6).all()  # 3 folds x 2 seeds
    assert np.isnan(table.loc[0, "p_value"]) and table.loc[1:, "p_value"].between(0, 1).all()
    assert table.set_index("method").loc["mmtm", "params"] > table.set_index("method").loc["ce", "params"]
    runs = pd.read_csv(out / "runs.csv")
    for r in runs.itertuples():
        fold_dir = out / r.method / f"seed_{r.seed}" / "folds" / f"fold_{r.fold}"
        assert (fold_dir / "predictions.csv").is_file() and (fold_dir / "train_losses.csv").is_file()
    # the seeds really differ (validation actors and initialisation); the test actors of a fold do not
    results = [json.loads((out / "ce" / f"seed_{s}" / "results.json").read_text()) for s in (0, 1)]
    assert [f["test_actors"] for f in results[0]["folds"]] == [f["test_actors"] for f in results[1]["folds"]]
    losses = [pd.read_csv(out / "ce" / f"seed_{s}" / "folds" / "fold_1" / "history.csv")["train/loss"][0] for s in (0, 1)]
    assert losses[0] != losses[1]
    # the table's mean is the mean of the per-(seed, fold) accuracies
    ce_runs = runs[runs["method"] == "ce"]
    assert table.set_index("method").loc["ce", "accuracy_mean"] == pytest.approx(ce_runs["accuracy"].mean())
    for name in ("accuracy.png", "confusion_mars.png", "confusion_concat.png", "mars_weights_mars.png",
                 "train_loss_histograms.png"):
        assert (out / "plots" / name).stat().st_size > 1000, name
    assert "| `mars` |" in (out / "comparison.md").read_text()
    # a second call reads every finished run back instead of training again
    before = (out / "ce" / "seed_0" / "folds" / "fold_1" / "best.pt").stat().st_mtime_ns
    assert main(args) == 0
    assert (out / "ce" / "seed_0" / "folds" / "fold_1" / "best.pt").stat().st_mtime_ns == before


def test_sensitivity_writes_validation_and_test_per_value(ravdess_fixture, tmp_path):
    mars = write_config(tmp_path / "mars.yaml", "mars", loss={"name": "mars", "params": {"switch_epoch": 1}})
    out = tmp_path / "sens"
    assert main(["sensitivity", str(mars), "--param", "loss.params.switch_epoch", "--values", "0", "2",
                 "--data", str(ravdess_fixture), "--out", str(out), "--cache", str(tmp_path / "cache"), "--no-progress"]) == 0
    table = pd.read_csv(out / "sensitivity.csv")
    assert list(table["value"]) == [0, 2] and (table["n_runs"] == 3).all()
    scores = table[["val_accuracy_mean", "accuracy_mean"]].to_numpy()
    assert ((scores >= 0) & (scores <= 1)).all()
    assert (out / "sensitivity.png").stat().st_size > 1000
    used = load_config(out / "mars__loss.params.switch_epoch=2" / "seed_0" / "config.yaml")
    assert used.loss.params["switch_epoch"] == 2


def test_paired_p_value_is_scipys_wilcoxon_on_matched_pairs():
    rng = np.random.default_rng(0)
    keys = pd.DataFrame([(s, f) for s in range(3) for f in range(1, 7)], columns=["seed", "fold"])
    ref = keys.assign(accuracy=rng.uniform(0.6, 0.8, len(keys)))
    other = keys.assign(accuracy=ref["accuracy"] + rng.normal(0.03, 0.02, len(keys))).sample(frac=1, random_state=0)
    delta, p = paired_p_value(other, ref)
    merged = other.merge(ref, on=["seed", "fold"])
    assert delta == pytest.approx((merged["accuracy_x"] - merged["accuracy_y"]).mean())
    assert p == pytest.approx(wilcoxon(merged["accuracy_x"] - merged["accuracy_y"], zero_method="zsplit").pvalue)
    assert p < 0.01
    assert paired_p_value(ref, ref) == (0.0, 1.0)


def test_method_configs_share_everything_but_fusion_and_loss():
    base = load_config(REPO / "configs" / "ravdess_ce.yaml").model_dump()
    methods = sorted((REPO / "configs").glob("ravdess_*.yaml"))
    compared = [p for p in methods if "_cnn" not in p.stem and "_video" not in p.stem]  # other backbones
    assert len(compared) >= 12
    for path in compared:
        config = load_config(path).model_dump()
        for section in ("data", "features", "train", "protocol", "seed"):
            assert config[section] == base[section], (path.name, section)
        assert config["model"]["encoders"] == base["model"]["encoders"], path.name


def test_extends_merges_and_rejects_loops(tmp_path):
    (tmp_path / "a.yaml").write_text("extends: b.yaml\nname: a\n")
    (tmp_path / "b.yaml").write_text("extends: a.yaml\nname: b\n")
    with pytest.raises(ConfigError, match="loops"):
        load_config(tmp_path / "a.yaml")
    (tmp_path / "c.yaml").write_text("extends: gone.yaml\nname: c\n")
    with pytest.raises(ConfigError, match="gone.yaml"):
        load_config(tmp_path / "c.yaml")
    child = load_config(REPO / "configs" / "ravdess_mars_epoch0.yaml")
    assert child.loss.name == "mars" and child.loss.params == {"gamma": {"audio": 1.0, "visual": 1.0}, "switch_epoch": 0}


def test_feature_fusion_with_a_branch_only_loss_is_refused():
    with pytest.raises(ConfigError, match="fused_cross_entropy"):
        config_from_dict({**TINY, "name": "x", "model": {**TINY["model"], "fusion": {"name": "tfn"}}})
    with pytest.raises(ConfigError, match="branch logits"):
        config_from_dict({**TINY, "name": "x", "loss": {"name": "fused_cross_entropy"}})
