"""An interrupted run resumes from its last checkpoint and ends exactly where an uninterrupted one does."""

import json

import numpy as np
import pytest
import torch

from emofuse.config.loading import config_from_dict
from emofuse.protocol.cross_validation import run_cross_validation

TINY = {
    "name": "tiny",
    "seed": 3,
    "features": {"audio": {"name": "mfcc", "params": {"n_mfcc": 13}}, "speaker_norm": True, "workers": 1},
    "model": {
        "encoders": {
            "audio": {"name": "cnn1d", "params": {"channels": [16, 16], "kernel_size": 3}},
            "visual": {"name": "mlp", "params": {"hidden": [16], "dropout": 0.2}},
        },
        "dropout": 0.2,
    },
    "loss": {"name": "mars", "params": {"gamma": 1.0, "switch_epoch": 2}},
    "train": {"epochs": 5, "batch_size": 16, "crop_frames": 30, "ema_decay": 0.9,
              "early_stopping": {"patience": 10}, "record_dynamics": "on"},
    "protocol": {"n_folds": 3, "val_fraction": 0.25},
}


class Interrupt(Exception):
    pass


def interrupt_at(epoch_to_stop):
    def callback(epoch, record):
        if epoch == epoch_to_stop:
            raise Interrupt

    return callback


def test_trainer_resume_is_exact(ravdess_fixture, tmp_path, monkeypatch):
    from emofuse.protocol import cross_validation as cv
    config = config_from_dict(TINY)
    whole = run_cross_validation(config, ravdess_fixture, tmp_path / "whole", tmp_path / "cache", progress=False, only_folds=[1])

    real_train_fold = cv.train_fold
    monkeypatch.setattr(cv, "train_fold", lambda *a, **k: real_train_fold(*a, **k, epoch_callbacks=[interrupt_at(2)]))
    with pytest.raises(Interrupt):
        run_cross_validation(config, ravdess_fixture, tmp_path / "cut", tmp_path / "cache", progress=False, only_folds=[1])
    ckpt = torch.load(tmp_path / "cut" / "folds" / "fold_1" / "last.pt", weights_only=False)
    assert ckpt["epoch"] == 1 and not ckpt["finished"]
    monkeypatch.setattr(cv, "train_fold", real_train_fold)
    resumed = run_cross_validation(config, ravdess_fixture, tmp_path / "cut", tmp_path / "cache", progress=False, only_folds=[1])

    assert resumed["folds"][0]["accuracy"] == whole["folds"][0]["accuracy"]
    a = torch.load(tmp_path / "whole" / "folds" / "fold_1" / "best.pt")
    b = torch.load(tmp_path / "cut" / "folds" / "fold_1" / "best.pt")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    hist_a = (tmp_path / "whole" / "folds" / "fold_1" / "history.csv").read_text().splitlines()
    hist_b = (tmp_path / "cut" / "folds" / "fold_1" / "history.csv").read_text().splitlines()
    strip = lambda rows: [",".join(r.split(",")[:-1]) for r in rows]  # drop the wall-time column
    assert strip(hist_a) == strip(hist_b)
    # the training dynamics too: the interrupted fold had recorded epoch 2 before its last checkpoint (epoch 1)
    dyn_a = np.load(tmp_path / "whole" / "folds" / "fold_1" / "dynamics.npz")
    dyn_b = np.load(tmp_path / "cut" / "folds" / "fold_1" / "dynamics.npz")
    assert list(dyn_b["epochs"]) == list(range(5))
    assert all(np.array_equal(dyn_a[k], dyn_b[k]) for k in dyn_a.files)


def test_finished_folds_are_not_retrained(ravdess_fixture, tmp_path):
    config = config_from_dict(TINY)
    out = tmp_path / "run"
    first = run_cross_validation(config, ravdess_fixture, out, tmp_path / "cache", progress=False)
    fold1 = out / "folds" / "fold_1" / "best.pt"
    stamp = fold1.stat().st_mtime_ns
    (out / "folds" / "fold_3" / "result.json").unlink()  # fold 3 "did not finish"
    second = run_cross_validation(config, ravdess_fixture, out, tmp_path / "cache", progress=False)
    assert fold1.stat().st_mtime_ns == stamp
    assert [f["accuracy"] for f in first["folds"]] == [f["accuracy"] for f in second["folds"]]
    assert json.loads((out / "results.json").read_text())["n_clips"] == 6 * 16


def test_a_run_directory_refuses_another_config(ravdess_fixture, tmp_path):
    from emofuse.core.registry import ConfigError

    out = tmp_path / "run"
    run_cross_validation(config_from_dict(TINY), ravdess_fixture, out, tmp_path / "cache", progress=False, only_folds=[1])
    other = config_from_dict({**TINY, "seed": 4})
    with pytest.raises(ConfigError, match="different config"):
        run_cross_validation(other, ravdess_fixture, out, tmp_path / "cache", progress=False)
