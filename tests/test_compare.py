"""emofuse compare / sensitivity: the output contract, statistics from the runs' predictions, one budget rule for
all methods, config inheritance."""

import itertools
import json

import numpy as np
import pandas as pd
import pytest

from emofuse.cli import main
from emofuse.config.loading import config_from_dict, load_config
from emofuse.core.registry import ConfigError
from tests.conftest import REPO

TINY = {
    "seed": 0,
    "features": {"audio": {"name": "mfcc", "params": {"n_mfcc": 13, "deltas": False}}, "speaker_norm": True, "workers": 1},
    "model": {"encoders": {"audio": {"name": "cnn1d", "params": {"channels": [8, 8], "kernel_size": 3}},
                           "visual": {"name": "mlp", "params": {"hidden": [16, 16], "dropout": 0.1}}}},
    "train": {"epochs": 4, "batch_size": 16, "early_stopping": {"patience": 1, "min_epochs": 0}},
    "protocol": {"n_folds": 3, "val_fraction": 0.25},
}


def write_config(path, name, **parts):
    import yaml

    path.write_text(yaml.safe_dump({**TINY, "name": name, **parts}))
    return path


@pytest.mark.slow
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
    for column in ("method", "accuracy_mean", "accuracy_std", "macro_f1_mean", "params", "accuracy_audio_mean",
                   "accuracy_visual_mean", "ci_low", "ci_high", "delta_vs_reference", "delta_ci_low", "delta_ci_high",
                   "p_fold", "p_speaker", "p_fold_holm", "p_speaker_holm", "epochs_run_median", "stopped_by_patience"):
        assert column in table.columns
    assert "p_value" not in table.columns  # the Wilcoxon test over (seed, fold) runs is gone
    assert (table["n_runs"] == 6).all() and (table["n_folds"] == 3).all() and (table["n_speakers"] == 6).all()
    assert np.isnan(table.loc[0, "p_fold"]) and table.loc[1:, ["p_fold", "p_speaker"]].stack().between(0, 1).all()
    assert (table["ci_low"] <= table["accuracy_pooled"]).all() and (table["accuracy_pooled"] <= table["ci_high"]).all()
    assert (table["p_fold_holm"].iloc[1:] >= table["p_fold"].iloc[1:]).all()
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
    by_method = table.set_index("method")
    assert by_method.loc["ce", "accuracy_mean"] == pytest.approx(ce_runs["accuracy"].mean())
    # the difference and the fold-level p come from correct-clip counts of the runs' predictions, seeds summed
    def correct_per_fold(method):
        preds = pd.concat([pd.read_csv(out / method / f"seed_{s}" / "predictions.csv") for s in (0, 1)])
        return (preds["label"] == preds["pred"]).groupby(preds["fold"]).sum(), len(preds)
    (ce_correct, n), (mars_correct, _) = correct_per_fold("ce"), correct_per_fold("mars")
    difference = (ce_correct - mars_correct).to_numpy()
    assert by_method.loc["ce", "delta_vs_reference"] == pytest.approx(difference.sum() / n)
    signs = np.array(list(itertools.product([-1, 1], repeat=3)))
    assert by_method.loc["ce", "p_fold"] == np.mean(np.abs(signs @ difference) >= abs(difference.sum()))
    assert by_method.loc["ce", "delta_ci_low"] <= by_method.loc["ce", "delta_vs_reference"] <= by_method.loc["ce", "delta_ci_high"]
    # one budget rule for every method: Mars' L = 1 plus patience 1 is the strictest minimum
    summary = json.loads((out / "comparison.json").read_text())
    assert summary["budget"]["min_epochs"] == 2 and summary["budget"]["set_by"] == "mars"
    assert summary["budget"]["own_min_epochs"] == {"mars": 2, "ce": 1, "mmtm": 1, "concat": 1}
    assert summary["statistics"]["smallest_p_fold"] == 2 / 8
    for method in ("ce", "mars", "mmtm", "concat"):
        assert load_config(out / method / "seed_0" / "config.yaml").train.early_stopping.min_epochs == 2
    assert (runs["epochs_run"] >= 2).all() and set(runs["stop_reason"]) <= {"patience", "budget_end"}
    assert (runs["stage_start_epoch"] == np.where(runs["method"] == "mars", 1, 0)).all()
    for name in ("accuracy.png", "confusion_mars.png", "confusion_concat.png", "mars_weights_mars.png",
                 "train_loss_histograms.png"):
        assert (out / "plots" / name).stat().st_size > 1000, name
    markdown = (out / "comparison.md").read_text()
    assert "| `mars` |" in markdown and "p folds (Holm)" in markdown and "smallest p it can give is 2/2^3 = 0.25" in markdown
    assert "early stopping never before 2 epochs" in markdown
    # each method beside its linear peer, on the same clips of the same seeds
    peer = pd.concat([pd.read_csv(f).assign(seed=s) for s in (0, 1)
                      for f in sorted((out / "ce" / f"seed_{s}" / "folds").glob("fold_*/peer_predictions.csv"))])
    preds = pd.concat([pd.read_csv(out / "ce" / f"seed_{s}" / "predictions.csv") for s in (0, 1)])
    assert len(peer) == len(preds)
    assert by_method.loc["ce", "peer_accuracy_pooled"] == pytest.approx((peer["label"] == peer["pred"]).mean())
    assert by_method.loc["ce", "delta_vs_peer"] == pytest.approx((preds["label"] == preds["pred"]).mean()
                                                                  - (peer["label"] == peer["pred"]).mean())
    assert "linear peer; Δ points [95% CI]" in markdown
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
    assert used.train.early_stopping.min_epochs == 3  # every value under the rule of the strictest, L = 2 + patience 1
    assert load_config(out / "mars__loss.params.switch_epoch=0" / "seed_0" / "config.yaml").train.early_stopping.min_epochs == 3


def test_method_configs_share_everything_but_fusion_and_loss():
    base = load_config(REPO / "configs" / "ravdess_ce.yaml").model_dump()
    methods = sorted((REPO / "configs").glob("ravdess_*.yaml"))
    # pinned features, other backbones, another modality (text, speech), or a training variant (the speaker adversary)
    compared = [p for p in methods if not any(b in p.stem for b in ("_cnn", "_video", "_whisper", "_egemaps", "_adversary", "_text", "_speech"))]
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
