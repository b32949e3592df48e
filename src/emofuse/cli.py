"""The ``emofuse`` command line."""

from __future__ import annotations

import argparse
import logging
import shutil
import sys
from pathlib import Path

from emofuse.registry import ConfigError


def _overrides_arg(p: argparse.ArgumentParser, help: str = "override a config value, e.g. --set train.epochs=5 (repeatable)") -> None:
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE", help=help)


def _common_data_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data", type=Path, default=None,
                   help="RAVDESS directory (Actor_XX audio under data.audio_dir, visual table at data.visual.path); "
                        "default: the packaged sample (6 actors)")
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
    parser = argparse.ArgumentParser(prog="emofuse", description=__doc__)
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging on the console")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    cv = sub.add_parser("cv", help="speaker-independent cross-validation of one config",
                        description="Train and test CONFIG on every actor fold; writes results.json, "
                                    "predictions.csv, the resolved config, versions, data fingerprint and a log to --out. "
                                    "Rerunning with the same --out resumes where it stopped.")
    cv.add_argument("config", type=Path, help="experiment YAML, e.g. configs/ravdess_mars.yaml")
    cv.add_argument("--out", type=Path, required=True, help="run directory")
    cv.add_argument("--folds", type=int, nargs="+", default=None, help="run only these fold numbers (1-based)")
    cv.add_argument("--overwrite", action="store_true", help="delete --out first instead of resuming")
    _common_data_args(cv)

    ex = sub.add_parser("extract", help="extract (and cache) the features a config needs",
                        description="Extract audio features for every take in parallel into the cache, "
                                    "and check that every take has its visual features.")
    ex.add_argument("config", type=Path, help="experiment YAML")
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

    ev = sub.add_parser("evaluate", help="EMI regression: predict and score a split with a trained run",
                        description="Predict one split of a feature directory with the selected weights of an "
                                    "`emofuse train` run (its feature standardisation included) and score it where it "
                                    "has targets. Writes <split>_predictions.csv and <split>.json to --out.")
    ev.add_argument("run_dir", type=Path, help="run directory written by `emofuse train`")
    ev.add_argument("--data", type=Path, required=True, help="feature directory (labels.csv + one folder or .npz per modality)")
    ev.add_argument("--split", choices=["train", "val", "test"], default="test", help="rows of labels.csv to use (default: test)")
    ev.add_argument("--out", type=Path, default=None, help="where to write (default: RUN_DIR/evaluation)")

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
                                    "pruned (MedianPruner). After the search the best configuration, and only it, is "
                                    "scored once on the test folds in OUT/best. Writes OUT/sweep.json and OUT/trials.csv. "
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
    _common_data_args(sw)

    show = sub.add_parser("registry", help="list the registered extractors, encoders, fusions and losses",
                          description="List every registered part that a config can name.")
    show.set_defaults(overrides=[])
    return parser


def _data_dir(arg: Path | None) -> Path:
    if arg is not None:
        return arg
    from emofuse.sample import sample_dir

    return sample_dir()


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
    from emofuse.data.errors import DataError

    try:
        return COMMANDS[args.command](args)
    except (ConfigError, DataError) as err:
        print(f"emofuse: error: {err}", file=sys.stderr)
        return 2


def cmd_cv(args) -> int:
    from emofuse.config import load_config
    from emofuse.evaluation.cross_validation import run_cross_validation
    from emofuse.report import print_cv_summary

    config = load_config(args.config, args.overrides)
    if args.overwrite and args.out.exists():
        shutil.rmtree(args.out)
    summary = run_cross_validation(config, _data_dir(args.data), args.out, _cache_dir(args.cache),
                                   progress=not args.no_progress, only_folds=args.folds)
    print_cv_summary(summary, args.out)
    return 0


def cmd_extract(args) -> int:
    from emofuse.config import load_config
    from emofuse.features.cache import FeatureCache
    from emofuse.features.dataset import build_ravdess_features

    config = load_config(args.config, args.overrides)
    fs = build_ravdess_features(_data_dir(args.data), config.data, config.features, FeatureCache(_cache_dir(args.cache)),
                                progress=not args.no_progress)
    print(f"{len(fs.meta)} takes ready; feature dims {fs.input_dims}; {len(fs.skipped)} skipped")
    return 0


def cmd_registry(args) -> int:
    from emofuse.features import EXTRACTORS
    from emofuse.losses import LOSSES
    from emofuse.models import ENCODERS, FUSIONS

    for reg in (EXTRACTORS, ENCODERS, FUSIONS, LOSSES):
        print(f"{reg.kind}: {', '.join(reg.names())}")
    return 0


def cmd_train(args) -> int:
    from emofuse.emi_config import load_emi_config
    from emofuse.evaluation.emi_experiment import run_emi

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
    from emofuse.evaluation.emi_experiment import evaluate_run

    out = args.out or args.run_dir / "evaluation"
    result = evaluate_run(args.run_dir, args.data, args.split, out)
    score = f"mean Pearson {result['pearson_mean']:.4f}" if result["scored"] else "no targets, not scored"
    print(f"{args.split}: {result['n']} rows, {score}; predictions in {out}/{args.split}_predictions.csv")
    return 0


def cmd_make_emi_fixture(args) -> int:
    from emofuse.data.emi_fixture import write_emi_fixture

    write_emi_fixture(args.out_dir, args.n_train, args.n_val, args.n_test, args.seed, args.blank_test_targets, args.fmt)
    print(f"synthetic EMI feature directory in {args.out_dir} ({args.n_train}/{args.n_val}/{args.n_test} train/val/test rows)")
    return 0


def cmd_ablation(args) -> int:
    from emofuse.evaluation.emi_ablation import markdown_table, run_ablation

    table = run_ablation(args.configs, args.data, args.out, args.overrides)
    print(markdown_table(table), end="")
    print(f"table in {args.out}/ablation.md and {args.out}/ablation.csv")
    return 0


def cmd_emi_ravdess(args) -> int:
    from emofuse.emi_config import load_emi_config
    from emofuse.evaluation.emi_ravdess import folds_table, load_ravdess_source, run_ravdess_emi

    config = load_emi_config(args.config, args.overrides)
    summary = run_ravdess_emi(config, load_ravdess_source(args.features), _data_dir(args.data), args.out, _cache_dir(args.cache),
                              progress=not args.no_progress, only_folds=args.folds)
    print(folds_table(summary), end="")
    print(f"pooled test mean Pearson {summary['pooled_test_pearson_mean']:.4f}; results in {args.out}/results.json")
    return 0


def cmd_sweep(args) -> int:
    from emofuse.config import load_config
    from emofuse.evaluation.sweep import load_space, run_sweep

    config = load_config(args.config, args.overrides)
    space = load_space(args.space)
    if args.trials is not None and args.trials < 1:
        raise ConfigError("--trials must be at least 1")
    s = run_sweep(config, space, _data_dir(args.data), args.out, _cache_dir(args.cache), sampler=args.sampler,
                  n_trials=args.trials, storage=args.storage, study_name=args.study, only_folds=args.folds,
                  prune=not args.no_prune, progress=not args.no_progress, space_source=str(args.space))
    print(f"{s['n_complete']} complete, {s['n_pruned']} pruned of {s['n_trials']} trials ({s['sampler']}); "
          f"best {s['best_params']}: validation accuracy {s['best_value']:.4f}")
    t = s["test"]
    print(f"test (best configuration, scored once): accuracy {t['accuracy_mean']:.4f} +- {t['accuracy_std']:.4f}, "
          f"macro-F1 {t['macro_f1_mean']:.4f}; sweep in {args.out}/sweep.json")
    return 0


COMMANDS = {"cv": cmd_cv, "extract": cmd_extract, "registry": cmd_registry, "train": cmd_train, "evaluate": cmd_evaluate,
            "make-emi-fixture": cmd_make_emi_fixture, "ablation": cmd_ablation, "emi-ravdess": cmd_emi_ravdess, "sweep": cmd_sweep}

if __name__ == "__main__":
    sys.exit(main())
