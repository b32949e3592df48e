"""Console and files: --version, rounded log lines, float64 metrics, file modes under the umask, progress lines
when output is not a terminal, "did you mean" for unknown keys and names, and the keys a run directory refuses;
whole tables in a pipe, a line before feature extraction starts, one-line argument errors, plain --help texts."""

import json
import logging
import os
import re
import stat
import warnings
from contextlib import contextmanager

import numpy as np
import pytest
import torch
import yaml

from emofuse import __version__
from emofuse.core.atomic import atomic_write_text
from emofuse.cli import COMMANDS, main
from emofuse.config.loading import config_from_dict, load_config
from emofuse.core.console import ProgressLines, listed, rounded
from emofuse.tasks.emi.config import load_emi_config
from emofuse.metrics.classification import headline_scores
from emofuse.protocol.cross_validation import run_cross_validation
from emofuse.features import EXTRACTORS
from emofuse.features.cache import FeatureCache
from emofuse.datasets.build import build_features
from emofuse.features.extract import extract_features
from emofuse.inference.printing import print_predictions
from emofuse.core.registry import ConfigError
from emofuse.reporting.report import print_cv_summary
from emofuse.core.runs import start_run

from conftest import REPO

TINY = {
    "name": "tiny",
    "seed": 3,
    "features": {"audio": {"name": "mfcc", "params": {"n_mfcc": 13}}, "workers": 1},
    "model": {"encoders": {"audio": {"name": "cnn1d", "params": {"channels": [8], "kernel_size": 3}},
                           "visual": {"name": "mlp", "params": {"hidden": [8]}}}},
    "train": {"epochs": 2, "batch_size": 16},
    "protocol": {"n_folds": 3, "val_fraction": 0.25},
}


@contextmanager
def umask(mask):
    old = os.umask(mask)
    try:
        yield
    finally:
        os.umask(old)


def mode(path):
    return stat.S_IMODE(path.stat().st_mode)


def test_version_flag(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["--version"])
    assert exit_.value.code == 0
    assert capsys.readouterr().out.strip() == f"emofuse {__version__}"


def test_rounded_for_display():
    noisy = {"audio": float(np.float32(13 / 30)), "actors": (1, 2, 3), "nested": [np.float32(0.1), {"x": 2.0 / 3}]}
    assert noisy["audio"] == 0.4333333373069763
    assert rounded(noisy) == {"audio": 0.4333, "actors": [1, 2, 3], "nested": [0.1, {"x": 0.6667}]}
    assert listed((1, 2, 3)) == "1, 2, 3"
    assert rounded("text") == "text" and rounded(7) == 7


def test_accuracy_macro_f1_and_ua_are_float64_of_the_exact_counts():
    from sklearn.metrics import balanced_accuracy_score
    from torchmetrics.classification import MulticlassAccuracy, MulticlassF1Score

    rng = np.random.default_rng(0)
    for n_classes, n in [(8, 30), (3, 7), (5, 1)]:
        probs = rng.random((n, n_classes)).astype(np.float32)
        target = torch.as_tensor(rng.integers(0, n_classes, n))
        accuracy, macro_f1, ua = headline_scores(probs, target, n_classes)
        assert accuracy == int((probs.argmax(1) == target.numpy()).sum()) / n  # float64 of the exact fraction
        assert accuracy == pytest.approx(MulticlassAccuracy(n_classes, average="micro")(torch.as_tensor(probs), target).item())
        assert macro_f1 == pytest.approx(MulticlassF1Score(n_classes, average="macro")(torch.as_tensor(probs), target).item())
        with warnings.catch_warnings():  # sklearn warns of predicted classes the targets lack; UA leaves them out too
            warnings.simplefilter("ignore")
            assert ua == pytest.approx(balanced_accuracy_score(target.numpy(), probs.argmax(1)), abs=1e-12)


def test_cv_run_files_follow_the_umask_and_hold_float64_and_rounded_logs(ravdess_fixture, tmp_path):
    out = tmp_path / "run"
    with umask(0o027):
        summary = run_cross_validation(config_from_dict(TINY), ravdess_fixture, out, tmp_path / "cache",
                                       progress=False, only_folds=[1, 2])
        entry = next((tmp_path / "cache").rglob("*.npy"))
    for name in ("results.json", "predictions.csv", "config.yaml", "versions.json", "data_fingerprint.json", "log.txt",
                 "folds/fold_1/result.json", "folds/fold_1/predictions.csv", "folds/fold_1/best.pt"):
        assert mode(out / name) == 0o640, name  # 0666 & ~027, as for any new file; never mkstemp's 0600
    assert mode(entry) == 0o640

    results = json.loads((out / "results.json").read_text())
    for fold in results["folds"]:
        correct = round(fold["accuracy"] * fold["n_test"])
        assert fold["accuracy"] == correct / fold["n_test"]  # no float32 noise such as 0.4333333373069763
        for value in fold["modality_accuracy"].values():
            assert value == round(value * fold["n_test"]) / fold["n_test"]
    assert results["accuracy_mean"] == float(np.mean([f["accuracy"] for f in results["folds"]]))
    assert summary["accuracy_mean"] == results["accuracy_mean"]

    log_text = (out / "log.txt").read_text()
    fold_lines = [line for line in log_text.splitlines() if re.search(r"fold \d: (test|accuracy)", line)]
    assert len(fold_lines) == 4
    for line in fold_lines:
        message = line.split(": ", 1)[1]
        assert not re.search(r"\d\.\d{5,}", message), line  # at most 4 decimals
        assert "(" not in message.split("(best")[0], line  # actors as "1, 2, 3, 4", not a tuple


@pytest.mark.parametrize("mask, expected", [(0o022, 0o644), (0o002, 0o664), (0o077, 0o600)])
def test_atomic_writes_and_cache_entries_follow_the_umask(tmp_path, mask, expected):
    with umask(mask):
        atomic_write_text(tmp_path / "a" / "results.json", "{}\n")
        FeatureCache(tmp_path / "cache").save("key", "digest", np.zeros(3), info={"frames": 3})
    assert mode(tmp_path / "a" / "results.json") == expected
    assert mode(tmp_path / "cache" / "key" / "digest.npy") == expected
    assert mode(tmp_path / "cache" / "key" / "digest.json") == expected
    assert [p.name for p in (tmp_path / "a").iterdir()] == ["results.json"]  # no temporary file left


class Clock:
    def __init__(self):
        self.now = 100.0

    def __call__(self):
        return self.now


def test_progress_lines_at_most_every_interval(caplog):
    clock = Clock()
    lines = ProgressLines("extracting mfcc", 1440, interval=5.0, clock=clock)
    with caplog.at_level(logging.INFO, logger="emofuse"):
        for _ in range(124):
            clock.now += 0.125  # 8 files per second
            lines.advance()
        lines.finish()
    messages = [r.getMessage() for r in caplog.records]
    assert messages == ["extracting mfcc: 40/1440 files, 5 s", "extracting mfcc: 80/1440 files, 10 s",
                        "extracting mfcc: 120/1440 files, 15 s",
                        "extracting mfcc: 124/1440 files, 16 s"]


def test_extraction_logs_progress_when_output_is_not_a_terminal(ravdess_fixture, tmp_path, caplog):
    files = sorted((ravdess_fixture / "audio16k").rglob("*.wav"))[:4]
    extractor = EXTRACTORS.create("mfcc", {"n_mfcc": 13})
    with caplog.at_level(logging.INFO, logger="emofuse"):  # pytest captures stdout: not a terminal
        extract_features(files, extractor, FeatureCache(tmp_path / "cache"), workers=1, progress=True)
    assert re.fullmatch(r"extracting mfcc: 4/4 files, \d+ s", caplog.records[-1].getMessage())
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="emofuse"):
        extract_features(files[:2] + [tmp_path / "new.wav"], extractor, FeatureCache(tmp_path / "cache2"), workers=1,
                         progress=False)
    assert not any("files," in r.getMessage() for r in caplog.records)


@pytest.mark.parametrize("override, message", [
    ("train.epoch=3", "unknown key 'train.epoch' (did you mean 'train.epochs'?)"),
    ("trian.epochs=3", "unknown key 'trian' (did you mean 'train'?)"),
    ("train.early_stopping.patienc=3", "unknown key 'train.early_stopping.patienc' (did you mean 'train.early_stopping.patience'?)"),
    ("model.fusion.name=concta", "unknown fusion 'concta' (did you mean 'concat'?); registered: average,"),
    ("features.audio.name=mfc", "unknown feature extractor 'mfc' (did you mean 'mfcc'?)"),
    ("model.encoders.visual.params.hiden=[8]",
     "unknown key 'model.encoders.visual.params.hiden' (did you mean 'model.encoders.visual.params.hidden'?)"),
])
def test_unknown_keys_and_names_get_a_suggestion(override, message):
    with pytest.raises(ConfigError) as err:
        load_config(REPO / "configs" / "ravdess_mars.yaml", [override])
    assert message in str(err.value)


def test_suggestions_in_emi_configs_and_none_when_nothing_is_close():
    with pytest.raises(ConfigError, match=re.escape("unknown key 'train.ema_decy' (did you mean 'train.ema_decay'?)")):
        load_emi_config(REPO / "configs" / "emi_hume.yaml", ["train.ema_decy=0.9"])
    with pytest.raises(ConfigError) as err:
        load_emi_config(REPO / "configs" / "emi_hume.yaml", ["model.colour=red"])
    assert "unknown key 'model.colour'" in str(err.value) and "did you mean" not in str(err.value)


def test_a_refused_run_directory_names_the_differing_keys(tmp_path):
    tree = {"name": "a", "seed": 3, "train": {"lr": 0.001, "epochs": 30, "early_stopping": {"patience": 8}}}
    start_run(tmp_path, yaml.safe_dump(tree, sort_keys=False))
    other = {"name": "a", "seed": 4, "train": {"lr": 0.0003, "epochs": 30, "early_stopping": None, "ema_decay": 0.999}}
    with pytest.raises(ConfigError) as err:
        start_run(tmp_path, yaml.safe_dump(other, sort_keys=False))
    message = str(err.value)
    assert "seed: 3 -> 4" in message and "train.lr: 0.001 -> 0.0003" in message
    assert "train.early_stopping.patience: 8 -> (absent)" in message and "train.ema_decay: (absent) -> 0.999" in message
    assert "train.epochs" not in message
    start_run(tmp_path, yaml.safe_dump(tree, sort_keys=False))  # the same config resumes


def test_a_run_written_before_a_key_existed_resumes_unless_the_key_changes_what_it_did(tmp_path):
    """A config.yaml without a key added since (at its default) is the same config; one without a key whose absence
    meant another value (OLD_DEFAULTS: protocol.linear_peer was off), or with a changed value, is refused."""
    from emofuse.config.loading import dump_config, load_config, recorded_config

    config = dump_config(load_config(REPO / "configs" / "manifest_audio.yaml", ["data.path=m.csv"]))
    tree = yaml.safe_load(config)
    for key in ("features", "protocol"):
        older = {**tree, key: {k: v for k, v in tree[key].items() if k not in ("augment", "test_conditions")}}
        run = tmp_path / key
        run.mkdir()
        (run / "config.yaml").write_text(yaml.safe_dump(older, sort_keys=False))
        start_run(run, config, recorded_config)
        assert (run / "config.yaml").read_text() == config  # rewritten in full
    before_peer = {**tree, "protocol": {k: v for k, v in tree["protocol"].items() if k != "linear_peer"}}
    (tmp_path / "peer").mkdir()
    (tmp_path / "peer" / "config.yaml").write_text(yaml.safe_dump(before_peer, sort_keys=False))
    with pytest.raises(ConfigError, match="protocol.linear_peer: \\(absent\\) -> True"):
        start_run(tmp_path / "peer", config, recorded_config)
    with pytest.raises(ConfigError, match="holds a run of a different config"):
        start_run(tmp_path / "features", config.replace("seed: 0", "seed: 1"), recorded_config)


def cv_summary(modalities=("audio", "visual")):
    folds = [{"fold": k + 1, "test_actors": [4 * k + 1, 4 * k + 2, 4 * k + 3, 4 * k + 4], "val_actors": [10, 13, 17, 24],
              "accuracy": 0.95 - k / 100, "macro_f1": 0.9475, "modality_accuracy": {m: 0.705 for m in modalities},
              "best_epoch": 10, "epochs_run": 21} for k in range(6)]
    return {"name": "ravdess_mars", "folds": folds, "accuracy_mean": 0.8892, "accuracy_std": 0.0403, "macro_f1_mean": 0.8877,
            "modality_accuracy_mean": {m: 0.6875 for m in modalities}, "n_clips": 1440, "speaker_norm": "none"}


def test_tables_are_whole_in_a_pipe_of_80_columns(monkeypatch, capsys, tmp_path):
    monkeypatch.setenv("COLUMNS", "80")  # capsys: stdout is not a terminal, as in a pipe
    print_cv_summary(cv_summary(("audio", "visual", "text")), tmp_path)
    lines = capsys.readouterr().out.splitlines()
    header = next(line for line in lines if "fold" in line and "accuracy" in line).split()
    assert header == ["fold", "test", "actors", "val", "actors", "accuracy", "macro-F1", "acc", "audio", "acc", "visual",
                      "acc", "text", "best", "epoch"]
    assert any(line.split()[:11] == ["6", "21,", "22,", "23,", "24", "10,", "13,", "17,", "24", "0.9000", "0.9475"]
               for line in lines)
    assert any("0.8892 ± 0.0403" in line for line in lines)

    classes = ("neutral", "calm", "happy", "sad", "angry", "fearful", "disgust", "surprised")
    probs = {c: 0.125 for c in classes}
    entries = [{"file": f"/data/{'long_recording_name_' * 2}{i}.wav", "pred": "surprised", "probs": probs, "missing": {}}
               for i in range(2)]
    print_predictions(entries, classes)
    lines = capsys.readouterr().out.splitlines()
    assert next(line for line in lines if "pred" in line).split() == ["file", "pred", *[c[:3] for c in classes]]
    assert lines[-2].split() == [f"{'long_recording_name_' * 2}1.wav", "surprised", *["0.12"] * 8]


def test_feature_building_says_what_it_does_before_loading_the_extractor(ravdess_fixture, tmp_path, caplog, monkeypatch):
    config = config_from_dict(TINY)
    said_before = []
    create = EXTRACTORS.create

    def creating(*args, **kwargs):
        said_before.append([r.getMessage() for r in caplog.records])
        return create(*args, **kwargs)

    monkeypatch.setattr(EXTRACTORS, "create", creating)
    with caplog.at_level(logging.INFO, logger="emofuse"):
        fs = build_features(config.data, config.features, ravdess_fixture, FeatureCache(tmp_path / "cache"), progress=False)
    assert said_before[0] == [f"getting mfcc features for {len(fs.meta)} samples (cache {tmp_path / 'cache'}): loading "
                              "the extractor, reading what is cached ..."]


@pytest.mark.parametrize("argv, message", [
    (["serve", "run", "--port", "80000"], "argument --port: port 80000 is out of range: 1 to 65535"),
    (["serve", "run", "--port", "http"], "argument --port: invalid port 'http': a whole number from 1 to 65535"),
    (["serve", "run", "--max-upload-mb", "inf"], "argument --max-upload-mb: inf is not a positive number"),
    (["serve", "run", "--max-queue", "-1"], "argument --max-queue: -1 is negative"),
    (["compre", "a.yaml"], "argument COMMAND: invalid choice: 'compre' (did you mean 'compare'?); choose from 'cv', "),
    (["export", "run", "--format", "onxx"], "invalid choice: 'onxx' (did you mean 'onnx'?); choose from 'onnx', "),
])
def test_argument_mistakes_are_one_line_errors(argv, message, capsys):
    with pytest.raises(SystemExit) as exit_:
        main(argv)
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def test_help_texts_are_plain(capsys):
    for argv in [[], ["fixtures"], *(name.split() for name in COMMANDS)]:
        with pytest.raises(SystemExit):
            main([*argv, "--help"])
        out = capsys.readouterr().out
        assert "usage: emofuse" in out and "``" not in out, argv
