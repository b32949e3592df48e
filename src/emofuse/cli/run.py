"""Commands that train and score: cross-validation, the final fit, method comparisons and sensitivity, sweeps, robustness, diagnose, and scoring a finished run on other data.

Each command imports what it needs when it runs, so that `emofuse --help` and argument errors stay quick."""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

from emofuse.api import locate_data
from emofuse.cli.commands import command
from emofuse.cli.common import _compared_methods_args, _common_data_args, _located, _cache_dir, _config
from emofuse.core.registry import ConfigError


def parser_cv(cv) -> None:
    cv.add_argument("config", type=_config, help="experiment YAML or shipped config name, e.g. ravdess_mars")
    cv.add_argument("--out", type=Path, required=True, help="run directory")
    cv.add_argument("--folds", type=int, nargs="+", default=None, help="run only these fold numbers (1-based)")
    cv.add_argument("--overwrite", action="store_true", help="delete --out first instead of resuming")
    cv.add_argument("--no-linear-peer", dest="overrides", action="append_const", const="protocol.linear_peer=false",
                    default=[], help="do not fit the linear peer beside the network (as --set protocol.linear_peer=false)")
    _common_data_args(cv)


def parser_fit(ft) -> None:
    ft.add_argument("config", type=_config, help="classification YAML or shipped config name, e.g. ravdess_speech")
    ft.add_argument("--out", type=Path, required=True, help="model directory")
    epoch = ft.add_mutually_exclusive_group(required=True)
    epoch.add_argument("--epochs-from", type=Path, default=None, metavar="CV_RUN",
                       help="a finished `emofuse cv` run of CONFIG: train up to the median of its folds' selected epochs")
    epoch.add_argument("--epoch", type=int, default=None, help="train epochs 0..N of the config's schedule")
    _common_data_args(ft)


def parser_compare(cmp) -> None:
    _compared_methods_args(cmp, seeds="seeds per method")


def parser_sensitivity(sens) -> None:
    sens.add_argument("config", type=_config, help="experiment YAML or shipped config name, e.g. ravdess_mars")
    sens.add_argument("--param", required=True, help="dotted config key, e.g. loss.params.switch_epoch or loss.params.gamma.audio")
    sens.add_argument("--values", nargs="+", required=True, help="values to try (parsed as YAML scalars)")
    sens.add_argument("--out", type=Path, required=True, help="run directory")
    sens.add_argument("--seeds", type=int, default=1, help="seeds per value (default 1)")
    sens.add_argument("--jobs", type=int, default=1, help="runs at a time, one thread each (default 1)")
    _common_data_args(sens)


def parser_sweep(sw) -> None:
    sw.add_argument("config", type=_config, help="experiment YAML or shipped config name, e.g. ravdess_mars")
    sw.add_argument("--space", type=_config, required=True, help="search space YAML or shipped name, e.g. spaces/mars_grid")
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


def parser_robustness(rb) -> None:
    rb.add_argument("--axis", required=True, help="dotted config key, e.g. data.label_noise.rate")
    rb.add_argument("--values", nargs="+", required=True, help="levels (YAML scalars; .inf is an infinite SNR)")
    _compared_methods_args(rb, seeds="seeds per method and level")


def parser_diagnose(dg) -> None:
    dg.add_argument("run_dirs", type=Path, nargs="+", help="run directories of `emofuse cv` (e.g. the seeds of one method)")
    dg.add_argument("--out", type=Path, default=None, help="output directory (default: RUN_DIR/diagnosis of the first)")
    dg.add_argument("--top", type=int, default=20, help="hardest clips listed in hardest_clips.md (default 20)")
    dg.set_defaults(overrides=[])


def parser_evaluate(ev) -> None:
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
    ev.add_argument("--enrolment-clips", type=int, default=None, metavar="K",
                    help="cv run with speaker_norm inductive: each speaker enrols with K of their clips, which are not "
                         "scored (default: the run's features.adapt_clips; 0: every file on its own)")
    ev.add_argument("--cache", type=Path, default=None,
                    help="cv run: feature cache directory (default: $EMOFUSE_CACHE or ~/.cache/emofuse)")
    ev.add_argument("--no-progress", action="store_true", help="no progress bars")


@command("cv", "run", parser_cv, help="speaker-independent cross-validation of one config",
         description="Train and test CONFIG on every actor fold; writes results.json, "
                     "predictions.csv, the resolved config, versions, data fingerprint and a log to --out. "
                     "Rerunning with the same --out resumes where it stopped. Under torchrun "
                     "(torchrun --nproc-per-node N -m emofuse cv ...) each fold's model is trained "
                     "with DistributedDataParallel over the N processes (gloo on CPU, nccl on CUDA); "
                     "rank 0 writes the run directory.")
def cmd_cv(args) -> int:
    config, data = _located(args)
    from emofuse.datasets.build import build_features
    from emofuse.features.cache import FeatureCache
    from emofuse.protocol.cross_validation import run_cross_validation
    from emofuse.reporting.report import print_cv_summary
    from emofuse.training import distributed

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


@command("fit", "run", parser_fit, help="train one classification model on every speaker, for deployment",
         description="Train CONFIG on every speaker of --data (no speaker held out) up to the epoch that "
                     "a finished cross-validation of the same config selected (the median over its folds, "
                     "--epochs-from RUN), or --epoch N. --out is then a model directory that `emofuse "
                     "predict`, `serve` and `export` read like a cv run; its accuracy on new speakers is "
                     "estimated by the cv run, not by this one.")
def cmd_fit(args) -> int:
    config, data = _located(args)
    from emofuse.protocol.final_fit import fit_final

    result = fit_final(config, data, args.out, _cache_dir(args.cache), epoch=args.epoch, cv_run=args.epochs_from,
                       progress=not args.no_progress)
    print(f"trained on {len(result['train_actors'])} speakers ({result['n_train']} clips), epochs 0..{result['epoch']}; "
          f"model in {args.out} (emofuse predict {args.out} FILE...)")
    return 0


@command("compare", "run", parser_compare, help="compare methods (configs) under the same folds and seeds",
         description="Cross-validate every CONFIG with seeds 0..N-1 (same folds and validation actors for "
                     "all; each run in OUT/<config name>/seed_<s>, resumable) and write OUT/comparison.csv, "
                     "OUT/comparison.md (accuracy and macro-F1 as mean ± std over folds x seeds, branch "
                     "accuracies, parameters, speaker-bootstrap intervals, sign-flip p-values over folds "
                     "and speakers against --reference; docs/statistics.md), OUT/runs.csv "
                     "(one row per seed and fold) and plots in OUT/plots (accuracy spread, a confusion "
                     "matrix per method, Mars weights per epoch, last-epoch training-loss histograms). "
                     "Every method trains under the strictest early-stopping minimum of them all.")
def cmd_compare(args) -> int:
    from emofuse.api import compare

    s = compare(args.configs, args.out, data=args.data, seeds=args.seeds, overrides=args.overrides,
                reference=args.reference, cache=args.cache, jobs=args.jobs, progress=not args.no_progress)
    print((args.out / "comparison.md").read_text(), end="")
    print(f"{len(args.configs)} methods x {args.seeds} seeds in {s['seconds']:.0f} s; table in {args.out}/comparison.csv, "
          f"plots in {args.out}/plots")
    return 0


@command("sensitivity", "run", parser_sensitivity, help="accuracy against one config value (e.g. Mars' switching epoch L)",
         description="Cross-validate CONFIG once per value of --param and write OUT/sensitivity.csv and "
                     "OUT/sensitivity.png: validation accuracy (what a search selects on) and test "
                     "accuracy (reported, never used for selection) per value.")
def cmd_sensitivity(args) -> int:
    import yaml

    config, data = _located(args)
    from emofuse.experiments.compare import run_sensitivity

    values = [yaml.safe_load(v) for v in args.values]
    table = run_sensitivity(config, args.param, values, data, args.out, _cache_dir(args.cache),
                            seeds=args.seeds, progress=not args.no_progress, jobs=args.jobs)
    print(table.to_string(index=False, float_format=lambda x: f"{x:.4f}"))
    print(f"table in {args.out}/sensitivity.csv, plot in {args.out}/sensitivity.png")
    return 0


@command("sweep", "run", parser_sweep, help="hyper-parameter search over a config (optuna: grid or TPE)",
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
def cmd_sweep(args) -> int:
    config, data = _located(args)
    from emofuse.core.console import rounded
    from emofuse.experiments.sweep import run_sweep
    from emofuse.experiments.sweep_space import load_space

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


@command("robustness", "run", parser_robustness,
         help="accuracy of several methods against a corruption level (label or modality noise)",
         description="Cross-validate every CONFIG at every --values of the dotted config key --axis (e.g. "
                     "data.label_noise.rate, data.modality_noise.level), with seeds 0..N-1 (each run in "
                     "OUT/<config>__<axis>=<value>/seed_<s>, resumable), and write OUT/robustness.csv, "
                     "OUT/robustness.md (accuracy per method and level and the difference to --reference, "
                     "with speaker-bootstrap intervals and sign-flip p-values as in compare), "
                     "OUT/robustness.png and OUT/runs.csv. "
                     "On a label-noise axis also OUT/separation.csv: how well the Mars weight and the "
                     "training-dynamics coordinates single out the flipped clips. Other corruption keys "
                     "are given with --set, e.g. --set data.modality_noise.modality=audio.")
def cmd_robustness(args) -> int:
    from dataclasses import replace

    from emofuse.experiments.robustness import load_levels, run_robustness

    levels = load_levels(args.configs, args.axis, args.values, args.overrides)
    located = [locate_data(level.config, args.data) for level in levels]
    levels = [replace(level, config=config) for level, (config, _) in zip(levels, located)]
    s = run_robustness(levels, args.axis, located[0][1], args.out, _cache_dir(args.cache), seeds=args.seeds,
                       reference=args.reference, progress=not args.no_progress, jobs=args.jobs,
                       sources=[str(p) for p in args.configs])
    print((args.out / "robustness.md").read_text(), end="")
    print(f"{len(s['methods'])} methods x {len(s['values'])} levels x {args.seeds} seeds in {s['seconds']:.0f} s; "
          f"table in {args.out}/robustness.csv, plot in {args.out}/robustness.png")
    return 0


@command("diagnose", "run", parser_diagnose, help="noisy-versus-hard diagnostic of finished `emofuse cv` runs",
         description="From the training dynamics each fold recorded (folds/fold_k/dynamics.npz: p_m[y] of "
                     "every training clip per branch and epoch) write to --out: separation.csv / .md (with "
                     "planted label noise: AUROC and precision at the planted rate of the last epoch's Mars "
                     "weight and of the cartography coordinates for telling flipped from clean clips), "
                     "cartography.png (the map with flipped clips marked) and hardest_clips.csv / .md "
                     "(training clips every branch finds hardest, with their audio files).")
def cmd_diagnose(args) -> int:
    from emofuse.experiments.diagnose import diagnose

    out = args.out or args.run_dirs[0] / "diagnosis"
    s = diagnose(args.run_dirs, out, top=args.top)
    if s["separation_md"]:
        print(s["separation_md"], end="")
    print((out / "hardest_clips.md").read_text(), end="")
    print(f"diagnosis in {out}: separation.csv, cartography.png, hardest_clips.csv")
    return 0


@command("evaluate", "run", parser_evaluate, help="score a finished run on other data: a cv run on another corpus's manifest, "
              "an EMI run on a feature directory",
         description="An `emofuse cv` run: predict every row of the manifest --data with the run's fold "
                     "ensemble (cross-corpus), the classes both share mapped by name (--label-map for "
                     "others), and write predictions.csv, confusion.csv, confusion_shared.png and "
                     "evaluation.json (accuracy, UAR, macro-F1 deciding among all classes and among the "
                     "shared ones; unmapped labels; speakers normalised with training statistics) to "
                     "--out. An `emofuse train` (EMI) run: predict one split of a feature directory "
                     "with its selected weights (its feature standardisation included) and score it "
                     "where it has targets; writes <split>_predictions.csv and <split>.json to --out.")
def cmd_evaluate(args) -> int:
    from emofuse.tasks.emi.experiment import evaluate_run

    out = args.out or args.run_dir / "evaluation"
    if (args.run_dir / "folds").is_dir():  # an `emofuse cv` run: cross-corpus on a manifest
        from emofuse.protocol.cross_corpus import evaluate_on_manifest, parse_label_map, print_evaluation

        result = evaluate_on_manifest(args.run_dir, args.data, out, _cache_dir(args.cache), parse_label_map(args.label_map),
                                      args.split, args.on_incomplete, args.modalities, args.enrolment_clips,
                                      progress=not args.no_progress)
        print_evaluation(result, out)
        return 0
    if args.label_map or args.on_incomplete or args.modalities or args.enrolment_clips is not None:
        raise ConfigError(f"{args.run_dir} is an `emofuse train` (EMI) run: --label-map, --on-incomplete, --modalities "
                          "and --enrolment-clips are for `emofuse cv` runs")
    args.split = args.split or "test"
    result = evaluate_run(args.run_dir, args.data, args.split, out)
    score = f"mean Pearson {result['pearson_mean']:.4f}" if result["scored"] else "no targets, not scored"
    print(f"{args.split}: {result['n']} rows, {score}; predictions in {out}/{args.split}_predictions.csv")
    return 0
