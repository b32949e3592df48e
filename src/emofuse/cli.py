"""The ``emofuse`` command line."""

from __future__ import annotations

import argparse
import logging
import math
import shutil
import sys
from pathlib import Path

from emofuse import __version__
from emofuse.core.registry import ConfigError, did_you_mean


class _Parser(argparse.ArgumentParser):
    """argparse with a "did you mean" for a mistyped choice (a command, --format, ...), as config keys get one."""

    def _check_value(self, action, value):
        if action.choices is not None and value not in action.choices:
            choices = ", ".join(map(repr, action.choices))
            raise argparse.ArgumentError(action, f"invalid choice: {value!r}{did_you_mean(value, action.choices)}; "
                                                 f"choose from {choices}")


def _port(text: str) -> int:
    """A TCP port, checked here: out of range, the server would fail with a traceback after loading the run."""
    try:
        port = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid port {text!r}: a whole number from 1 to 65535") from None
    if not 1 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"port {port} is out of range: 1 to 65535")
    return port


def _positive(text: str) -> float:
    """A positive, finite number: NaN and infinity would get past the server's own check and fail later."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid number {text!r}") from None
    if not (value > 0 and math.isfinite(value)):
        raise argparse.ArgumentTypeError(f"{text} is not a positive number")
    return value


def _at_least_zero(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid whole number {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"{value} is negative")
    return value


def _overrides_arg(p: argparse.ArgumentParser, help: str = "override a config value, e.g. --set train.epochs=5 (repeatable)") -> None:
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE", help=help)


def _compared_methods_args(p: argparse.ArgumentParser, seeds: str) -> None:
    """The arguments of the commands that run several configs and compare them with a reference (compare, robustness)."""
    p.add_argument("configs", type=Path, nargs="+", help="experiment YAMLs, one method each, e.g. configs/ravdess_{ce,mars}.yaml")
    p.add_argument("--out", type=Path, required=True, help="directory for the runs, tables and plots")
    p.add_argument("--seeds", type=int, default=3, help=f"{seeds} (default 3)")
    p.add_argument("--reference", default=None, help="config name the others are compared with (default: the first)")
    p.add_argument("--jobs", type=int, default=1, help="runs at a time, one thread each (default 1)")
    _common_data_args(p)


def _common_data_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data", type=Path, default=None,
                   help="RAVDESS directory (Actor_XX audio under data.audio_dir; the visual table, OpenFace CSVs or "
                        "videos at data.visual.path; default: the packaged sample, 6 actors), or for a manifest config "
                        "(data.dataset: manifest) the manifest CSV (default: data.path)")
    p.add_argument("--cache", type=Path, default=None,
                   help="feature cache directory (default: $EMOFUSE_CACHE or ~/.cache/emofuse)")
    _overrides_arg(p)
    p.add_argument("--no-progress", action="store_true", help="no progress bars")


def _emi_data_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data", type=Path, required=True,
                   help="feature directory: labels.csv (id, split, one column per target) and <modality>/<id>.npy "
                        "arrays (T, D), or one <modality>.npz per modality")
    p.add_argument("--out", type=Path, required=True, help="run directory")
    p.add_argument("--overwrite", action="store_true", help="delete --out first instead of resuming")
    _overrides_arg(p)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="emofuse", description="The emofuse command line: emofuse COMMAND --help tells a command's "
                                                 "arguments.")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging on the console")
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    cv = sub.add_parser("cv", help="speaker-independent cross-validation of one config",
                        description="Train and test CONFIG on every actor fold; writes results.json, "
                                    "predictions.csv, the resolved config, versions, data fingerprint and a log to --out. "
                                    "Rerunning with the same --out resumes where it stopped. Under torchrun "
                                    "(torchrun --nproc-per-node N -m emofuse cv ...) each fold's model is trained "
                                    "with DistributedDataParallel over the N processes (gloo on CPU, nccl on CUDA); "
                                    "rank 0 writes the run directory.")
    cv.add_argument("config", type=Path, help="experiment YAML, e.g. configs/ravdess_mars.yaml")
    cv.add_argument("--out", type=Path, required=True, help="run directory")
    cv.add_argument("--folds", type=int, nargs="+", default=None, help="run only these fold numbers (1-based)")
    cv.add_argument("--overwrite", action="store_true", help="delete --out first instead of resuming")
    _common_data_args(cv)

    cmp = sub.add_parser("compare", help="compare methods (configs) under the same folds and seeds",
                         description="Cross-validate every CONFIG with seeds 0..N-1 (same folds and validation actors for "
                                     "all; each run in OUT/<config name>/seed_<s>, resumable) and write OUT/comparison.csv, "
                                     "OUT/comparison.md (accuracy and macro-F1 as mean ± std over folds x seeds, branch "
                                     "accuracies, parameters, speaker-bootstrap intervals, sign-flip p-values over folds "
                                     "and speakers against --reference; docs/statistics.md), OUT/runs.csv "
                                     "(one row per seed and fold) and plots in OUT/plots (accuracy spread, a confusion "
                                     "matrix per method, Mars weights per epoch, last-epoch training-loss histograms). "
                                     "Every method trains under the strictest early-stopping minimum of them all.")
    _compared_methods_args(cmp, seeds="seeds per method")

    sens = sub.add_parser("sensitivity", help="accuracy against one config value (e.g. Mars' switching epoch L)",
                          description="Cross-validate CONFIG once per value of --param and write OUT/sensitivity.csv and "
                                      "OUT/sensitivity.png: validation accuracy (what a search selects on) and test "
                                      "accuracy (reported, never used for selection) per value.")
    sens.add_argument("config", type=Path, help="experiment YAML, e.g. configs/ravdess_mars.yaml")
    sens.add_argument("--param", required=True, help="dotted config key, e.g. loss.params.switch_epoch or loss.params.gamma.audio")
    sens.add_argument("--values", nargs="+", required=True, help="values to try (parsed as YAML scalars)")
    sens.add_argument("--out", type=Path, required=True, help="run directory")
    sens.add_argument("--seeds", type=int, default=1, help="seeds per value (default 1)")
    sens.add_argument("--jobs", type=int, default=1, help="runs at a time, one thread each (default 1)")
    _common_data_args(sens)

    rb = sub.add_parser("robustness", help="accuracy of several methods against a corruption level (label or modality noise)",
                        description="Cross-validate every CONFIG at every --values of the dotted config key --axis (e.g. "
                                    "data.label_noise.rate, data.modality_noise.level), with seeds 0..N-1 (each run in "
                                    "OUT/<config>__<axis>=<value>/seed_<s>, resumable), and write OUT/robustness.csv, "
                                    "OUT/robustness.md (accuracy per method and level and the difference to --reference, "
                                    "with speaker-bootstrap intervals and sign-flip p-values as in compare), "
                                    "OUT/robustness.png and OUT/runs.csv. "
                                    "On a label-noise axis also OUT/separation.csv: how well the Mars weight and the "
                                    "training-dynamics coordinates single out the flipped clips. Other corruption keys "
                                    "are given with --set, e.g. --set data.modality_noise.modality=audio.")
    rb.add_argument("--axis", required=True, help="dotted config key, e.g. data.label_noise.rate")
    rb.add_argument("--values", nargs="+", required=True, help="levels (YAML scalars; .inf is an infinite SNR)")
    _compared_methods_args(rb, seeds="seeds per method and level")

    dg = sub.add_parser("diagnose", help="noisy-versus-hard diagnostic of finished `emofuse cv` runs",
                        description="From the training dynamics each fold recorded (folds/fold_k/dynamics.npz: p_m[y] of "
                                    "every training clip per branch and epoch) write to --out: separation.csv / .md (with "
                                    "planted label noise: AUROC and precision at the planted rate of the last epoch's Mars "
                                    "weight and of the cartography coordinates for telling flipped from clean clips), "
                                    "cartography.png (the map with flipped clips marked) and hardest_clips.csv / .md "
                                    "(training clips every branch finds hardest, with their audio files).")
    dg.add_argument("run_dirs", type=Path, nargs="+", help="run directories of `emofuse cv` (e.g. the seeds of one method)")
    dg.add_argument("--out", type=Path, default=None, help="output directory (default: RUN_DIR/diagnosis of the first)")
    dg.add_argument("--top", type=int, default=20, help="hardest clips listed in hardest_clips.md (default 20)")
    dg.set_defaults(overrides=[])

    ex = sub.add_parser("extract", help="extract (and cache) the features a config needs",
                        description="Extract audio features (and, for configs whose visual input is video, face clips "
                                    "or face features) for every take in parallel into the cache, and check that "
                                    "every take has its visual features. With --shard i/n only the "
                                    "i-th of n disjoint shares of the takes: run shards 1..n on several machines (or "
                                    "processes) with one shared --cache and together they fill it.")
    ex.add_argument("config", type=Path, help="experiment YAML")
    ex.add_argument("--shard", default=None, metavar="I/N",
                    help="extract only shard I of N (1-based; takes are assigned by a hash of their id)")
    _common_data_args(ex)

    tr = sub.add_parser("train", help="EMI regression: train one config on a feature directory",
                        description="Train CONFIG (an EMI config, e.g. configs/emi_hume.yaml) on the train rows of a feature "
                                    "directory, select the epoch on its val rows and predict its test rows. Writes "
                                    "results.json (val and test mean and per-target Pearson), test_predictions.csv (id + "
                                    "one column per target), val_predictions.csv, the resolved config, versions, data "
                                    "fingerprint, history.csv, best.pt and a log to --out. Rerunning with the same --out "
                                    "resumes an interrupted run.")
    tr.add_argument("config", type=Path, help="EMI YAML, e.g. configs/emi_hume.yaml")
    _emi_data_args(tr)

    ft = sub.add_parser("fit", help="train one classification model on every speaker, for deployment",
                        description="Train CONFIG on every speaker of --data (no speaker held out) up to the epoch that "
                                    "a finished cross-validation of the same config selected (the median over its folds, "
                                    "--epochs-from RUN), or --epoch N. --out is then a model directory that `emofuse "
                                    "predict`, `serve` and `export` read like a cv run; its accuracy on new speakers is "
                                    "estimated by the cv run, not by this one.")
    ft.add_argument("config", type=Path, help="classification YAML, e.g. configs/ravdess_speech.yaml")
    ft.add_argument("--out", type=Path, required=True, help="model directory")
    epoch = ft.add_mutually_exclusive_group(required=True)
    epoch.add_argument("--epochs-from", type=Path, default=None, metavar="CV_RUN",
                       help="a finished `emofuse cv` run of CONFIG: train up to the median of its folds' selected epochs")
    epoch.add_argument("--epoch", type=int, default=None, help="train epochs 0..N of the config's schedule")
    _common_data_args(ft)

    ev = sub.add_parser("evaluate", help="score a finished run on other data: a cv run on another corpus's manifest, "
                                         "an EMI run on a feature directory",
                        description="An `emofuse cv` run: predict every row of the manifest --data with the run's fold "
                                    "ensemble (cross-corpus), the classes both share mapped by name (--label-map for "
                                    "others), and write predictions.csv, confusion.csv, confusion_shared.png and "
                                    "evaluation.json (accuracy, UAR, macro-F1 deciding among all classes and among the "
                                    "shared ones; unmapped labels; speakers normalised with training statistics) to "
                                    "--out. An `emofuse train` (EMI) run: predict one split of a feature directory "
                                    "with its selected weights (its feature standardisation included) and score it "
                                    "where it has targets; writes <split>_predictions.csv and <split>.json to --out.")
    ev.add_argument("run_dir", type=Path, help="run directory written by `emofuse cv` or `emofuse train`")
    ev.add_argument("--data", type=Path, required=True,
                    help="cv run: a manifest CSV; EMI run: a feature directory (labels.csv + one folder or .npz per modality)")
    ev.add_argument("--split", choices=["train", "val", "test"], default=None,
                    help="rows to use: EMI run, of labels.csv (default: test); cv run, of the manifest's split column "
                         "(default: every row)")
    ev.add_argument("--out", type=Path, default=None, help="where to write (default: RUN_DIR/evaluation)")
    ev.add_argument("--label-map", default=None, metavar="A=B,...",
                    help="cv run: the data's label A is the run's class B (default: the same name)")
    ev.add_argument("--on-incomplete", choices=["error", "skip"], default=None,
                    help="cv run: a row whose files are missing or unreadable stops the evaluation, or is left out and "
                         "listed (default: the run's data.on_incomplete)")
    ev.add_argument("--modalities", nargs="+", default=None, metavar="MODALITY",
                    help="cv run: score with these of the run's modalities only (its decision fusion averages the "
                         "branches it has), e.g. --modalities audio for a run whose visual branch the data cannot feed")
    ev.add_argument("--cache", type=Path, default=None,
                    help="cv run: feature cache directory (default: $EMOFUSE_CACHE or ~/.cache/emofuse)")
    ev.add_argument("--no-progress", action="store_true", help="no progress bars")

    fx = sub.add_parser("make-emi-fixture", help="write a synthetic Hume-Vidmimic2-shaped feature directory",
                        description="Write a synthetic feature directory with 6 EMI targets and visual / audio / text "
                                    "sequences of variable length that carry a planted signal (for tests and demos; "
                                    "not real data).")
    fx.add_argument("out_dir", type=Path, help="directory to write (labels.csv, visual/, audio/, text/)")
    fx.add_argument("--n-train", type=int, default=240, help="training rows (default 240)")
    fx.add_argument("--n-val", type=int, default=80, help="validation rows (default 80)")
    fx.add_argument("--n-test", type=int, default=80, help="test rows (default 80)")
    fx.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    fx.add_argument("--blank-test-targets", action="store_true",
                    help="leave the test rows' target cells empty, as in a challenge test split")
    fx.add_argument("--format", dest="fmt", choices=["npy", "npz"], default="npy",
                    help="one .npy per sample and modality (default) or one .npz per modality")

    tf = sub.add_parser("make-touch-fixture", help="write a synthetic social-touch manifest (8 x 8 pressure grids)",
                        description="Write synthetic social-touch data: 8 x 8 pressure grids at 50 Hz for four gestures "
                                    "(pat, stroke, press, tickle) by several people, one .npy of frames (T, 64) per sample "
                                    "and a manifest with a touch_features column (for tests and demos; not real data).")
    tf.add_argument("out_dir", type=Path, help="directory to write (manifest.csv, touch/)")
    tf.add_argument("--speakers", type=int, default=6, help="people touching (default 6)")
    tf.add_argument("--per-gesture", type=int, default=8, help="samples of each gesture per person (default 8)")
    tf.add_argument("--seed", type=int, default=0, help="random seed (default 0)")

    ab = sub.add_parser("ablation", help="EMI regression: run several configs and tabulate them",
                        description="Train every CONFIG on the same feature directory (each in OUT/<config name>, "
                                    "finished runs are read back) and write the table to OUT/ablation.md and "
                                    "OUT/ablation.csv, e.g. emofuse ablation configs/emi_ablation/*.yaml --data D --out O.")
    ab.add_argument("configs", type=Path, nargs="+", help="EMI YAMLs, one table row each, in this order")
    ab.add_argument("--data", type=Path, required=True, help="feature directory (labels.csv + one folder or .npz per modality)")
    ab.add_argument("--out", type=Path, required=True, help="directory for the runs and the table")
    _overrides_arg(ab, "override a value in every config, e.g. --set train.epochs=10 (repeatable)")

    rv = sub.add_parser("emi-ravdess", help="EMI real-data check: the recipe on RAVDESS intensities, 6 folds by actor",
                        description="Run an EMI config on RAVDESS with continuous targets (per non-neutral emotion: 0.5 "
                                    "normal, 1.0 strong intensity, else 0), speaker-independent folds by actor with "
                                    "validation actors from the training actors. Audio/visual features, speaker "
                                    "normalisation and folds come from the data, features and protocol sections of the "
                                    "YAML given with --features (e.g. configs/emi_ravdess_features.yaml). Writes "
                                    "the fold feature directories, one `emofuse train` run per fold, results.json, "
                                    "predictions.csv and folds.md to --out.")
    rv.add_argument("config", type=Path, help="EMI YAML, e.g. configs/emi_ravdess.yaml")
    rv.add_argument("--features", type=Path, required=True,
                    help="YAML whose data, features and protocol sections are used (other sections are ignored), "
                         "e.g. configs/emi_ravdess_features.yaml or a RAVDESS classification config")
    rv.add_argument("--out", type=Path, required=True, help="run directory")
    rv.add_argument("--folds", type=int, nargs="+", default=None, help="run only these fold numbers (1-based)")
    _common_data_args(rv)

    sw = sub.add_parser("sweep", help="hyper-parameter search over a config (optuna: grid or TPE)",
                        description="Search the config keys named in --space (lists of values: grid or categorical; "
                                    "{low, high, log, step} ranges: TPE) on the speaker-independent folds of CONFIG. "
                                    "A trial is scored by the mean over folds of the validation accuracy of the selected "
                                    "epoch only; trials whose running mean falls below the median of earlier trials are "
                                    "pruned (MedianPruner). After the search each fold takes the trial that scored best on its "
                                    "own validation actors and is scored once with it (the nested estimate, OUT/nested); "
                                    "the trial best on average over folds is scored on every fold in OUT/best, a "
                                    "non-nested reference. Writes OUT/sweep.json and OUT/trials.csv. "
                                    "The study is kept in --storage (default sqlite:///OUT/sweep.db): rerunning continues "
                                    "it, and workers started on several machines with one --storage URL and --study share it.")
    sw.add_argument("config", type=Path, help="experiment YAML, e.g. configs/ravdess_mars.yaml")
    sw.add_argument("--space", type=Path, required=True, help="search space YAML, e.g. configs/spaces/mars_grid.yaml")
    sw.add_argument("--out", type=Path, required=True, help="run directory")
    sw.add_argument("--sampler", choices=["grid", "tpe"], default="grid",
                    help="grid: every combination of the listed values (default); tpe: optuna's TPE sampler")
    sw.add_argument("--trials", type=int, default=None,
                    help="tpe: finished (complete or pruned) trials the study should reach (default 20); "
                         "grid: at most this many trials in this call (default: the rest of the grid)")
    sw.add_argument("--storage", default=None,
                    help="optuna RDB storage URL, e.g. postgresql://user@host/db (default: sqlite:///OUT/sweep.db)")
    sw.add_argument("--study", default=None, help="study name (default: <config name>-sweep)")
    sw.add_argument("--folds", type=int, nargs="+", default=None, help="search and test on only these fold numbers (1-based)")
    sw.add_argument("--no-prune", action="store_true", help="run every trial on every fold (no median pruning)")
    sw.add_argument("--heartbeat", type=int, default=60, metavar="SECONDS",
                    help="a worker records a heartbeat for its running trial every SECONDS (default 60); a trial "
                         "without one for 3 x SECONDS belongs to a killed worker and is failed and re-enqueued")
    _common_data_args(sw)

    pr = sub.add_parser("predict", help="emotion probabilities for audio/video files with a finished `emofuse cv` run",
                        description="Decode each FILE (mp4, flv, webm, mkv, wav, flac, mp3, ...), extract the features the "
                                    "run's config names and predict with the ensemble of the run's fold models "
                                    "(probabilities averaged over folds; --fold k for one). A modality that is missing "
                                    "or unreadable is left out of the decision fusion and reported. --json prints a "
                                    "list, one object per file: file, pred, probs, modality_probs, modalities, missing "
                                    "(and error where no prediction could be made). Exit code 1 when a file got an error entry.")
    pr.add_argument("paths", type=Path, nargs="*", metavar="[RUN_DIR] FILE",
                    help="a run directory written by `emofuse cv` or `emofuse fit` (default: the bundled model, "
                         "see `emofuse models`), then media files")
    pr.add_argument("--model", default=None, metavar="NAME", help="a bundled model instead of a run directory")
    pr.add_argument("--json", action="store_true", help="print JSON instead of a table")
    pr.add_argument("--openface", type=Path, default=None, metavar="DIR",
                    help="OpenFace per-frame CSVs named <file stem>.csv, for the visual branch")
    pr.add_argument("--fold", type=int, default=None, help="use this fold's model only (default: all folds, averaged)")
    speakers = pr.add_mutually_exclusive_group()
    speakers.add_argument("--speaker", default=None, metavar="NAME",
                          help="runs with features.speaker_norm: all FILEs are one speaker, normalised with their joint "
                               "statistics (default: each file on its own, with a typical training speaker's)")
    speakers.add_argument("--speakers", type=Path, default=None, metavar="CSV",
                          help="like --speaker, with a CSV (columns file, speaker) naming each FILE's speaker")
    pr.add_argument("--stream", type=Path, default=None, metavar="FILE",
                    help="play FILE's audio as live input: every --hop seconds, one line with the prediction of the last "
                         "--window seconds and its latency (--json: one object per line)")
    pr.add_argument("--window", type=_positive, default=3.0, metavar="SECONDS", help="--stream: window length (default 3)")
    pr.add_argument("--hop", type=_positive, default=1.0, metavar="SECONDS", help="--stream: seconds between windows (default 1)")
    pr.add_argument("--chunk-ms", type=_positive, default=100.0, metavar="MS",
                    help="--stream: the audio arrives in chunks this long (default 100)")
    pr.add_argument("--fast", action="store_true",
                    help="--stream: feed the chunks as fast as they are taken, not at the pace of the wall clock")
    pr.set_defaults(overrides=[])

    md = sub.add_parser("models", help="the bundled models, ready to predict without training (with a card each)",
                        description="List the models shipped with emofuse, or show one's card: training data and licence, "
                                    "classes, features, cross-validated accuracy for a new speaker, cross-corpus check, "
                                    "limits and the command that rebuilds it. `emofuse predict FILE` uses the default one.")
    md.add_argument("name", nargs="?", default=None, help="a bundled model's name")

    xp = sub.add_parser("export", help="export a cv run's fold model to ONNX (or TorchScript), checked against PyTorch",
                        description="Export the selected weights of one fold of an `emofuse cv` run: named inputs per "
                                    "modality (plus <modality>_lengths for frame sequences), outputs probs (fused) and "
                                    "probs_<modality>; batch and frame axes dynamic. The file is kept only if onnxruntime "
                                    "(or TorchScript) reproduces PyTorch within --atol on random inputs; where ONNX cannot "
                                    "express the model it falls back to TorchScript and says why. Writes the model and a "
                                    "JSON description beside it (default: RUN_DIR/export/fold_K.onnx).")
    xp.add_argument("run_dir", type=Path, help="run directory written by `emofuse cv`")
    xp.add_argument("--fold", type=int, default=None, help="fold number (default: the lowest fold with best.pt)")
    xp.add_argument("--out", type=Path, default=None, help="output file (default: RUN_DIR/export/fold_K.onnx or .pt)")
    xp.add_argument("--format", dest="fmt", choices=["onnx", "torchscript"], default="onnx",
                    help="onnx (default; TorchScript fallback) or torchscript")
    xp.add_argument("--atol", type=float, default=1e-5, help="largest accepted |exported - PyTorch| (default 1e-5)")
    xp.set_defaults(overrides=[])

    co = sub.add_parser("cost", help="parameters, FLOPs and latency per sample of every registered method",
                        description="One row per registered fusion (default parameters) and per loss-only variant of the "
                                    "average fusion, in two settings: `ravdess` (the encoders of --config on its feature "
                                    "dimensions) and `paper` (3D ResNeXt-50 on 30 face crops of 224x224 + the 1D CNN of "
                                    "--cnn-config on 2.45 s of MFCC frames). FLOPs: ptflops (pytorch backend) "
                                    "multiply-accumulates, reported as MACs and FLOPs = 2 x MACs. Latency: median of "
                                    "--repeats forward passes at batch 1 after --warmup, with torch's thread count.")
    co.add_argument("--json", action="store_true", help="print a JSON list of rows instead of a table")
    co.add_argument("--device", choices=["cpu", "cuda"], default=None,
                    help="cpu: CPU latency only; cuda: CPU and CUDA (default: cuda when available)")
    co.add_argument("--setting", choices=["ravdess", "paper", "all"], default="all", help="which setting(s) (default all)")
    co.add_argument("--config", type=Path, default=Path("configs/ravdess_mars.yaml"),
                    help="config of the ravdess setting (default configs/ravdess_mars.yaml)")
    co.add_argument("--cnn-config", type=Path, default=Path("configs/ravdess_mars_cnn.yaml"),
                    help="config whose audio encoder and features the paper setting uses (default configs/ravdess_mars_cnn.yaml)")
    co.add_argument("--repeats", type=int, default=10, help="timed forward passes per method (default 10)")
    co.add_argument("--warmup", type=int, default=2, help="untimed forward passes first (default 2)")
    co.add_argument("--out", type=Path, default=None, help="also write the rows as JSON to this file")
    co.set_defaults(overrides=[])

    rp = sub.add_parser("report", help="one self-contained HTML report of a cv, compare or sweep run directory",
                        description="Render RUN_DIR as one HTML file: the results tables, per-fold figures, confusion "
                                    "matrices, Mars weight and training-loss plots, the config and the data fingerprint. "
                                    "Figures are embedded, so the file opens anywhere without a network. The kind of run "
                                    "is told by its files (results.json: cv; comparison.json: compare; sweep.json: sweep).")
    rp.add_argument("run_dir", type=Path, help="run directory written by emofuse cv, compare or sweep")
    rp.add_argument("--out", type=Path, default=None, help="HTML file to write (default: RUN_DIR/report.html)")
    rp.add_argument("--kind", default=None, help="kind of run, when the directory's files do not tell it")
    rp.set_defaults(overrides=[])

    sv = sub.add_parser("serve", help="a local web page and JSON API to try a cv run on recordings",
                        description="Serve a page to upload or record a recording and see the fused and per-modality "
                                    "probabilities (with a timeline over sliding windows for long recordings), and "
                                    "POST /api/predict (multipart field 'file'; the JSON of `emofuse predict --json` for "
                                    "that file), GET /api/health, GET /api/model. Predictions run one at a time.")
    sv.add_argument("run_dir", type=Path, nargs="?", default=None,
                    help="run directory written by `emofuse cv` or `emofuse fit` (default: the bundled model)")
    sv.add_argument("--model", default=None, metavar="NAME", help="a bundled model instead of a run directory")
    sv.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1: this machine only)")
    sv.add_argument("--port", type=_port, default=8000, help="port, 1 to 65535 (default 8000)")
    sv.add_argument("--max-upload-mb", type=_positive, default=100.0, help="largest accepted upload in MB (default 100)")
    sv.add_argument("--max-queue", type=_at_least_zero, default=4,
                    help="requests that may wait while one prediction runs; more get 503 (default 4)")
    sv.set_defaults(overrides=[])

    mf = sub.add_parser("manifest", help="write a manifest CSV of a corpus folder to standard output",
                        description="List the samples of a corpus laid out as it ships (ravdess, crema-d, tess, savee, emodb) "
                                    "or as DIR/<label>/<file> (folder) as a manifest for data.dataset: manifest: id, speaker, "
                                    "gender (where the corpus documents it), label (common vocabulary: neutral, calm, happy, "
                                    "sad, angry, fearful, disgust, surprised), corpus_label (as the corpus writes it), audio, "
                                    "video, and the corpus's own fields. Files that do not fit the naming scheme are listed "
                                    "on standard error and left out.")
    mf.add_argument("corpus", help="ravdess, crema-d, tess, savee, emodb or folder")
    mf.add_argument("dir", type=Path, help="the corpus folder (searched at any depth)")
    mf.add_argument("--relative-to", type=Path, default=None,
                    help="write paths relative to this folder (where the manifest will be; default: absolute paths)")
    mf.add_argument("--speaker-regex", default=None,
                    help="find the speaker in each file name with this pattern (its group named speaker, else its first "
                         "group); required for folder, overrides the corpus's own speaker ids otherwise")
    mf.set_defaults(overrides=[])

    show = sub.add_parser("registry", help="list the registered extractors, encoders, fusions and losses",
                          description="List every registered part that a config can name.")
    show.set_defaults(overrides=[])
    return parser


def _data_dir(arg: Path | None) -> Path:
    if arg is not None:
        return arg
    from emofuse.data.sample import sample_dir

    return sample_dir()


def _with_data(config, arg: Path | None):
    """(config, data location): a RAVDESS config's directory (--data, else the packaged sample), or a manifest config's
    CSV (--data, recorded as data.path in the run's resolved config, else data.path)."""
    if config.data.dataset != "manifest":
        return config, _data_dir(arg)
    from emofuse.datasets.build import manifest_path

    path = manifest_path(config.data) if arg is None else arg
    return config.model_copy(update={"data": config.data.model_copy(update={"path": str(path)})}), Path(path)


def _cache_dir(arg: Path | None) -> Path:
    from emofuse.features.cache import default_cache_dir

    return arg if arg is not None else default_cache_dir()


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from rich.logging import RichHandler

    console = RichHandler(show_path=False)
    console.setLevel(logging.DEBUG if args.verbose else logging.INFO)

    logging.basicConfig(level=logging.WARNING, format="%(message)s", handlers=[console])
    logging.getLogger("emofuse").setLevel(logging.DEBUG if args.verbose else logging.INFO)
    from emofuse.core.errors import DataError

    try:
        return COMMANDS[args.command](args)
    except (ConfigError, DataError) as err:
        print(f"emofuse: error: {err}", file=sys.stderr)
        return 2


def cmd_cv(args) -> int:
    from emofuse.config.loading import load_config
    from emofuse.protocol.cross_validation import run_cross_validation
    from emofuse.reporting.report import print_cv_summary

    from emofuse.features.cache import FeatureCache
    from emofuse.datasets.build import build_features
    from emofuse.training import distributed

    config, data = _with_data(load_config(args.config, args.overrides), args.data)
    with distributed.process_group():  # joins the torchrun job, if this is one
        if not distributed.is_main():
            logging.getLogger("emofuse").setLevel(logging.WARNING)  # rank 0 tells the story
        if args.overwrite and args.out.exists() and distributed.is_main():
            shutil.rmtree(args.out)
        if distributed.active():  # each rank extracts its shard of any uncached features, then all read the cache
            build_features(config.data, config.features, data, FeatureCache(_cache_dir(args.cache)),
                           progress=False, shard=(distributed.rank() + 1, distributed.world_size()))
            distributed.barrier()
        summary = run_cross_validation(config, data, args.out, _cache_dir(args.cache),
                                       progress=not args.no_progress and distributed.is_main(), only_folds=args.folds)
        if distributed.is_main():
            print_cv_summary(summary, args.out)
    return 0


def cmd_compare(args) -> int:
    from emofuse.config.loading import load_config
    from emofuse.experiments.compare import Variant, run_compare

    located = [_with_data(load_config(path, args.overrides), args.data) for path in args.configs]
    variants = [Variant(c.name, c) for c, _ in located]
    s = run_compare(variants, located[0][1], args.out, _cache_dir(args.cache), seeds=args.seeds,
                    reference=args.reference, progress=not args.no_progress, sources=[str(p) for p in args.configs],
                    jobs=args.jobs)
    print((args.out / "comparison.md").read_text(), end="")
    print(f"{len(variants)} methods x {args.seeds} seeds in {s['seconds']:.0f} s; table in {args.out}/comparison.csv, "
          f"plots in {args.out}/plots")
    return 0


def cmd_sensitivity(args) -> int:
    import yaml

    from emofuse.config.loading import load_config
    from emofuse.experiments.compare import run_sensitivity

    config, data = _with_data(load_config(args.config, args.overrides), args.data)
    values = [yaml.safe_load(v) for v in args.values]
    table = run_sensitivity(config, args.param, values, data, args.out, _cache_dir(args.cache),
                            seeds=args.seeds, progress=not args.no_progress, jobs=args.jobs)
    print(table.to_string(index=False, float_format=lambda x: f"{x:.4f}"))
    print(f"table in {args.out}/sensitivity.csv, plot in {args.out}/sensitivity.png")
    return 0


def cmd_robustness(args) -> int:
    from dataclasses import replace

    from emofuse.experiments.robustness import load_levels, run_robustness

    levels = load_levels(args.configs, args.axis, args.values, args.overrides)
    located = [_with_data(level.config, args.data) for level in levels]
    levels = [replace(level, config=config) for level, (config, _) in zip(levels, located)]
    s = run_robustness(levels, args.axis, located[0][1], args.out, _cache_dir(args.cache), seeds=args.seeds,
                       reference=args.reference, progress=not args.no_progress, jobs=args.jobs,
                       sources=[str(p) for p in args.configs])
    print((args.out / "robustness.md").read_text(), end="")
    print(f"{len(s['methods'])} methods x {len(s['values'])} levels x {args.seeds} seeds in {s['seconds']:.0f} s; "
          f"table in {args.out}/robustness.csv, plot in {args.out}/robustness.png")
    return 0


def cmd_diagnose(args) -> int:
    from emofuse.experiments.diagnose import diagnose

    out = args.out or args.run_dirs[0] / "diagnosis"
    s = diagnose(args.run_dirs, out, top=args.top)
    if s["separation_md"]:
        print(s["separation_md"], end="")
    print((out / "hardest_clips.md").read_text(), end="")
    print(f"diagnosis in {out}: separation.csv, cartography.png, hardest_clips.csv")
    return 0


def cmd_extract(args) -> int:
    from emofuse.config.loading import load_config
    from emofuse.features.cache import FeatureCache
    from emofuse.datasets.build import build_features

    from emofuse.features.extract import parse_shard

    config, data = _with_data(load_config(args.config, args.overrides), args.data)
    shard = parse_shard(args.shard) if args.shard else None
    fs = build_features(config.data, config.features, data, FeatureCache(_cache_dir(args.cache)),
                        progress=not args.no_progress, shard=shard)
    where = f" (shard {shard[0]}/{shard[1]})" if shard else ""
    print(f"{len(fs.meta)} takes ready{where}; feature dims {fs.input_dims}; {len(fs.skipped)} skipped")
    return 0


def cmd_predict(args) -> int:
    import json

    from rich.console import Console
    from rich.logging import RichHandler

    from emofuse.data.corpora.base import VIDEO_SUFFIXES
    from emofuse.inference.predict import Predictor
    from emofuse.inference.printing import print_predictions
    from emofuse.inference.speaker_groups import read_speaker_map

    for handler in logging.getLogger().handlers:  # warnings to stderr: stdout is the JSON
        if isinstance(handler, RichHandler):
            handler.console = Console(stderr=True)
    if args.stream is not None:
        return predict_stream(args)
    args.run_dir, args.files = run_and_files(args.paths, args.model)
    predictor = Predictor(args.run_dir, fold=args.fold)
    speakers = read_speaker_map(args.speakers) if args.speakers else args.speaker
    entries = predictor.predict(args.files, args.openface, speakers)
    if args.json:
        print(json.dumps(entries, indent=2))
    else:
        print_predictions(entries, predictor.class_names)
    if "visual" not in predictor.modalities and any(Path(f).suffix.lower() in VIDEO_SUFFIXES for f in args.files):
        logging.getLogger("emofuse").info("this model has no visual branch: the picture of a video is not used")
    return 1 if any("error" in e for e in entries) else 0


def predict_stream(args) -> int:
    """``predict --stream FILE``: the file played as a microphone would deliver it, one line per window."""
    import json
    from dataclasses import asdict

    from emofuse.data.audio import load_audio
    from emofuse.inference.predict import Predictor
    from emofuse.inference.stream import audio_chunks

    run_dir, files = run_and_files([*args.paths, args.stream], args.model)
    if files != [args.stream]:
        raise ConfigError(f"--stream plays one file; predict {', '.join(map(str, files[:-1]))} without --stream")
    if args.openface or args.speaker or args.speakers:
        raise ConfigError("--stream predicts each window from its audio alone: --openface, --speaker and --speakers do not apply")
    predictor = Predictor(run_dir, fold=args.fold)

    def chunks():  # decoded once stream() has accepted the run, whose extractor gives the rate
        rate = predictor.extractor.sample_rate
        yield from audio_chunks(load_audio(args.stream, rate), rate, args.chunk_ms / 1000, real_time=not args.fast)

    windows = 0
    for w in predictor.stream(chunks(), window_s=args.window, hop_s=args.hop):
        if not windows:  # said once: the run's modalities that live input leaves out
            for m, reason in w.missing.items():
                print(f"{m} missing: {reason}", file=sys.stderr)
        windows += 1
        line = json.dumps(asdict(w)) if args.json else \
            f"{w.start_s:7.2f}-{w.end_s:7.2f} s  {w.pred:<10} {w.probs[w.pred]:.2f}  latency {1000 * w.latency_s:.0f} ms"
        print(line, flush=True)
    if not windows:
        print(f"{args.stream}: shorter than the {args.window:g} s window, nothing predicted", file=sys.stderr)
    return 0 if windows else 1


def run_and_files(paths: list[Path], model: str | None) -> tuple[Path, list[Path]]:
    """``[RUN_DIR] FILE...``: a leading directory with a config.yaml is the run; else the bundled model (--model, or
    the default one) answers."""
    from emofuse import zoo

    if not paths:
        raise ConfigError("name the media files to predict (after a run directory, or alone for the bundled model)")
    if paths[0].is_dir():
        if not (paths[0] / "config.yaml").is_file():
            raise ConfigError(f"{paths[0]}: no config.yaml; a directory before the files must be a run directory "
                              f"written by `emofuse cv` or `emofuse fit`")
        if model is not None:
            raise ConfigError(f"give a run directory ({paths[0]}) or --model {model}, not both")
        if len(paths) == 1:
            raise ConfigError(f"{paths[0]} is a run directory; name the media files to predict after it")
        return paths[0], paths[1:]
    return zoo.model_dir(model or zoo.DEFAULT), paths


def cmd_models(args) -> int:
    from emofuse import zoo

    if args.name is None:
        for name in zoo.names():
            c = zoo.card(name)
            k0, k10 = c["estimates"]["k=0"]["accuracy"], c["estimates"]["k=10"]["accuracy"]
            default = " (default)" if name == zoo.DEFAULT else ""
            print(f"{name}{default}: {c['task']}, {len(c['classes'])} classes, {', '.join(c['modalities'])}; new speaker "
                  f"{k0:.3f} from a file alone, {k10:.3f} with 10 of their clips; licence {c['training_data']['licence']}")
        print("emofuse models NAME shows a model's card")
        return 0
    print(zoo.format_card(zoo.card(args.name)), end="")
    return 0


def cmd_export(args) -> int:
    from emofuse.inference.export import export_run

    r = export_run(args.run_dir, fold=args.fold, out=args.out, fmt=args.fmt, atol=args.atol)
    if r.fallback_reason:
        print(f"exported TorchScript instead of ONNX: {r.fallback_reason}")
    runtime = "onnxruntime" if r.format == "onnx" else "TorchScript"
    print(f"fold {r.fold} exported as {r.format}: {r.path} (inputs {', '.join(r.inputs)}; outputs {', '.join(r.outputs)})")
    print(f"check: {runtime} vs PyTorch on {r.checks} random batches, max |difference| {r.max_abs_diff:.2e} <= atol {r.atol:g}: OK")
    return 0


def cmd_cost(args) -> int:
    import json

    import torch

    from emofuse.inference.cost import PAPER_GFLOPS, cost_table, devices_for, markdown_table, paper_setting, ravdess_setting
    from emofuse.core.runs import write_json

    devices = devices_for(args.device)
    settings = []
    if args.setting in ("ravdess", "all"):
        settings.append(ravdess_setting(args.config))
    if args.setting in ("paper", "all"):
        settings.append(paper_setting(args.cnn_config))
    rows = cost_table(settings, devices, repeats=args.repeats, warmup=args.warmup)
    if args.out:
        write_json(args.out, rows)
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    print(f"torch threads: {torch.get_num_threads()}; latency: median of {args.repeats} runs after {args.warmup} warm-up, batch 1")
    for s in settings:
        print(f"{s.name}: {s.note}")
    print(markdown_table(rows), end="")
    paper = next((r for r in rows if r["setting"] == "paper" and r["method"] == "average" and "gmacs" in r), None)
    if paper:
        print(f"paper setting, average fusion: {paper['gmacs']:.2f} GMACs = {paper['gflops']:.2f} GFLOPs; "
              f"the paper's Table II: {PAPER_GFLOPS} G")
    return 0


def cmd_report(args) -> int:
    from emofuse.reporting.html_report import write_report

    print(f"report in {write_report(args.run_dir, args.out, args.kind)}")
    return 0


def cmd_serve(args) -> int:
    from emofuse.serve import serve

    if args.run_dir is not None and args.model is not None:
        raise ConfigError(f"give a run directory ({args.run_dir}) or --model {args.model}, not both")
    if args.run_dir is None:
        from emofuse import zoo

        args.run_dir = zoo.model_dir(args.model or zoo.DEFAULT)
    serve(args.run_dir, host=args.host, port=args.port, max_upload_mb=args.max_upload_mb, max_queue=args.max_queue)
    return 0


def cmd_manifest(args) -> int:
    import re

    from emofuse.data.corpora import CORPORA, write_manifest
    from emofuse.core.errors import DataError

    try:
        regex = re.compile(args.speaker_regex) if args.speaker_regex else None
    except re.error as err:
        raise ConfigError(f"--speaker-regex {args.speaker_regex!r}: {err}") from None

    listing = CORPORA.get(args.corpus)(args.dir, regex)
    if not listing.rows:
        raise DataError(args.dir, f"no file fits the {args.corpus} naming scheme ({len(listing.unrecognised)} media files "
                                  f"found that do not)")
    sys.stdout.write(write_manifest(listing, args.relative_to))
    speakers = {r["speaker"] for r in listing.rows}
    print(f"{len(listing.rows)} samples of {len(speakers)} speakers from {args.dir}", file=sys.stderr)
    if listing.unrecognised:
        shown = ", ".join(str(p) for p in listing.unrecognised[:5])
        more = f" and {len(listing.unrecognised) - 5} more" if len(listing.unrecognised) > 5 else ""
        print(f"left out {len(listing.unrecognised)} files that do not fit the {args.corpus} naming scheme: {shown}{more}",
              file=sys.stderr)
    return 0


def cmd_registry(args) -> int:
    from emofuse.data.corpora import CORPORA
    from emofuse.features import EXTRACTORS, VIDEO_EXTRACTORS
    from emofuse.losses import LOSSES
    from emofuse.models import ENCODERS, FUSIONS

    for reg in (EXTRACTORS, VIDEO_EXTRACTORS, ENCODERS, FUSIONS, LOSSES, CORPORA):
        print(f"{reg.kind}: {', '.join(reg.names())}")
    return 0


def cmd_fit(args) -> int:
    from emofuse.config.loading import load_config
    from emofuse.protocol.final_fit import fit_final

    config, data = _with_data(load_config(args.config, args.overrides), args.data)
    result = fit_final(config, data, args.out, _cache_dir(args.cache), epoch=args.epoch, cv_run=args.epochs_from,
                       progress=not args.no_progress)
    print(f"trained on {len(result['train_actors'])} speakers ({result['n_train']} clips), epochs 0..{result['epoch']}; "
          f"model in {args.out} (emofuse predict {args.out} FILE...)")
    return 0


def cmd_train(args) -> int:
    from emofuse.tasks.emi.config import load_emi_config
    from emofuse.tasks.emi.experiment import run_emi

    config = load_emi_config(args.config, args.overrides)
    if args.overwrite and args.out.exists():
        shutil.rmtree(args.out)
    results = run_emi(config, args.data, args.out)
    for split in ("val", "test"):
        entry = results[split]
        score = f"mean Pearson {entry['pearson_mean']:.4f}" if entry["scored"] else "no targets, not scored"
        print(f"{split}: {entry['n']} rows, {score}")
    print(f"results in {args.out}/results.json, test predictions in {args.out}/test_predictions.csv")
    return 0


def cmd_evaluate(args) -> int:
    from emofuse.tasks.emi.experiment import evaluate_run

    out = args.out or args.run_dir / "evaluation"
    if (args.run_dir / "folds").is_dir():  # an `emofuse cv` run: cross-corpus on a manifest
        from emofuse.protocol.cross_corpus import evaluate_on_manifest, parse_label_map, print_evaluation

        result = evaluate_on_manifest(args.run_dir, args.data, out, _cache_dir(args.cache), parse_label_map(args.label_map),
                                      args.split, args.on_incomplete, args.modalities, progress=not args.no_progress)
        print_evaluation(result, out)
        return 0
    if args.label_map or args.on_incomplete or args.modalities:
        raise ConfigError(f"{args.run_dir} is an `emofuse train` (EMI) run: --label-map, --on-incomplete and --modalities "
                          "are for `emofuse cv` runs")
    args.split = args.split or "test"
    result = evaluate_run(args.run_dir, args.data, args.split, out)
    score = f"mean Pearson {result['pearson_mean']:.4f}" if result["scored"] else "no targets, not scored"
    print(f"{args.split}: {result['n']} rows, {score}; predictions in {out}/{args.split}_predictions.csv")
    return 0


def cmd_make_emi_fixture(args) -> int:
    from emofuse.tasks.emi.fixture import write_emi_fixture

    write_emi_fixture(args.out_dir, args.n_train, args.n_val, args.n_test, args.seed, args.blank_test_targets, args.fmt)
    print(f"synthetic EMI feature directory in {args.out_dir} ({args.n_train}/{args.n_val}/{args.n_test} train/val/test rows)")
    return 0


def cmd_make_touch_fixture(args) -> int:
    from emofuse.data.touch_fixture import write_touch_fixture

    manifest = write_touch_fixture(args.out_dir, args.speakers, args.per_gesture, args.seed)
    print(f"synthetic touch data for {args.speakers} people in {manifest} (4 gestures x {args.per_gesture} samples each)")
    return 0


def cmd_ablation(args) -> int:
    from emofuse.tasks.emi.ablation import markdown_table, run_ablation

    table = run_ablation(args.configs, args.data, args.out, args.overrides)
    print(markdown_table(table), end="")
    print(f"table in {args.out}/ablation.md and {args.out}/ablation.csv")
    return 0


def cmd_emi_ravdess(args) -> int:
    from emofuse.tasks.emi.config import load_emi_config
    from emofuse.tasks.emi.ravdess import folds_table, load_ravdess_source, run_ravdess_emi

    config = load_emi_config(args.config, args.overrides)
    summary = run_ravdess_emi(config, load_ravdess_source(args.features), _data_dir(args.data), args.out, _cache_dir(args.cache),
                              progress=not args.no_progress, only_folds=args.folds)
    print(folds_table(summary), end="")
    print(f"pooled test mean Pearson {summary['pooled_test_pearson_mean']:.4f}; results in {args.out}/results.json")
    return 0


def cmd_sweep(args) -> int:
    from emofuse.config.loading import load_config
    from emofuse.core.console import rounded
    from emofuse.experiments.sweep import load_space, run_sweep

    config, data = _with_data(load_config(args.config, args.overrides), args.data)
    space = load_space(args.space)
    if args.trials is not None and args.trials < 1:
        raise ConfigError("--trials must be at least 1")
    s = run_sweep(config, space, data, args.out, _cache_dir(args.cache), sampler=args.sampler,
                  n_trials=args.trials, storage=args.storage, study_name=args.study, only_folds=args.folds,
                  prune=not args.no_prune, progress=not args.no_progress, space_source=str(args.space),
                  heartbeat_s=args.heartbeat)
    print(f"{s['n_complete']} complete, {s['n_pruned']} pruned of {s['n_trials']} trials ({s['sampler']}); "
          f"best {rounded(s['best_params'])}: validation accuracy {s['best_value']:.4f}")
    n, t = s["nested"], s["test"]
    print(f"nested test (each fold's own choice, trials {rounded(n['chosen_trials'])}): accuracy "
          f"{n['accuracy_mean']:.4f} +- {n['accuracy_std']:.4f}, pooled {n['pooled_accuracy']:.4f}; {n['nesting']}")
    print(f"not nested, for reference (trial {s['best_trial']} on every fold): accuracy {t['accuracy_mean']:.4f} +- "
          f"{t['accuracy_std']:.4f}, pooled {t['pooled_accuracy']:.4f}; sweep in {args.out}/sweep.json")
    return 0


COMMANDS = {"predict": cmd_predict, "cv": cmd_cv, "fit": cmd_fit, "models": cmd_models, "compare": cmd_compare, "sensitivity": cmd_sensitivity, "extract": cmd_extract, "registry": cmd_registry, "train": cmd_train, "evaluate": cmd_evaluate,
            "make-emi-fixture": cmd_make_emi_fixture, "make-touch-fixture": cmd_make_touch_fixture, "ablation": cmd_ablation, "emi-ravdess": cmd_emi_ravdess, "sweep": cmd_sweep,
            "export": cmd_export, "cost": cmd_cost, "report": cmd_report, "serve": cmd_serve, "manifest": cmd_manifest,
            "robustness": cmd_robustness, "diagnose": cmd_diagnose}

if __name__ == "__main__":
    sys.exit(main())
