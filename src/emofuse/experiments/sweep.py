"""Hyper-parameter search over a config (``emofuse sweep``), on optuna.

A space file names dotted config keys (e.g. ``loss.params.switch_epoch``) with either a list of
values (grid sampler; TPE treats a list as categorical) or a ``{low, high, log, step}`` range (TPE
only). Every trial builds the config with its values applied as overrides and runs the
speaker-independent folds of the base config, scoring the mean over folds of the validation
accuracy of the selected epoch: the test actors are never scored during the search. After each
fold the running mean is reported to optuna's MedianPruner, which stops trials whose running
mean falls below the median of earlier trials at the same fold.

After the search, the test folds are scored twice over, each fold once per configuration:
- nested (the headline): each fold takes the trial with the best validation accuracy on its own validation
  speakers (protocol/nested.py); the chosen trials' test folds are scored in ``RUN_DIR/trials/trial_N`` and
  gathered in ``RUN_DIR/nested``. With the grid sampler and no trial pruned this is strictly nested. TPE's proposals
  and the median pruner are steered by every fold's validation scores, whose speakers include each fold's test
  speakers; sweep.json says which held (strict nesting of an adaptive search needs one search per outer fold:
  ``--folds k`` runs one);
- not nested, for reference: the trial with the best mean over folds, on every fold, in ``RUN_DIR/best``.

Features are extracted once per sweep (keys under ``data``, ``features`` and ``protocol`` cannot
be searched). The study lives in an optuna RDB storage: by default ``sqlite:///RUN_DIR/sweep.db``;
any RDB URL (e.g. ``postgresql://user@host/db``) lets several workers share one study.

Several workers, exactly once: the worker that creates the study enqueues every grid point as a
WAITING trial (the others wait until it has), and a worker takes a trial only by switching it
from WAITING to RUNNING, which the storage does atomically (a row lock in PostgreSQL), so no grid
point is started twice and no worker invents a point of its own. Workers send a heartbeat; the
trial of a killed worker is marked FAIL by any worker once its heartbeat is older than the grace
period (3 heartbeats) and re-enqueued with the same parameters (optuna's retry callback), so a
killed worker loses only its current trial. A worker with nothing left to take waits for the
trials still running elsewhere, so that every worker ends on the finished study.
"""

from __future__ import annotations

import hashlib
import logging
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import yaml

from emofuse.core.threads import thread_budget
from emofuse.models.encoders import compute_bound
from emofuse.config.loading import dump_config
from emofuse.config.schema import ExperimentConfig
from emofuse.core.console import rounded
from emofuse.core.registry import ConfigError
from emofuse.core.runs import atomic_write_text, logging_to, write_json
from emofuse.experiments.sweep_space import SearchSpace, _suggest, apply_params, check_space
from emofuse.experiments.sweep_storage import _heartbeat, _params_key, _point, _storage, public_url, worker_id

log = logging.getLogger(__name__)

OBJECTIVE = "mean over folds of the validation accuracy of the selected epoch (test actors never scored)"
SAMPLERS = ("grid", "tpe")
FIXED_SECTIONS = ("name", "seed", "data", "features", "protocol")  # built once per sweep: not searchable
HEARTBEAT_S = 60
GRACE_HEARTBEATS = 3  # a RUNNING trial without a heartbeat for this many intervals belongs to a dead worker
READY_TIMEOUT_S = 120


@dataclass(frozen=True)
class SweepPlan:
    """What one sweep runs with, its defaults resolved (run_sweep checks the arguments and builds it)."""

    config: ExperimentConfig
    base: dict  # the config as a plain tree, which each trial's parameters are set in
    space: SearchSpace
    data_dir: Path
    run_dir: Path
    cache_dir: Path
    sampler_name: str  # "grid" or "tpe"
    grid: list[dict] | None  # every grid point (grid sampler), else None
    n_trials: int | None
    storage_url: str
    shared: bool  # a storage URL was given: workers on other machines may share the study
    study_name: str
    only_folds: list[int] | None
    prune: bool
    progress: bool
    heartbeat_s: int


def run_sweep(config: ExperimentConfig, space: SearchSpace, data_dir: Path, run_dir: Path, cache_dir: Path,
              sampler: str = "grid", n_trials: int | None = None, storage: str | None = None,
              study_name: str | None = None, only_folds: list[int] | None = None, prune: bool = True,
              progress: bool = True, space_source: str = "space", heartbeat_s: int = HEARTBEAT_S) -> dict:
    if sampler not in SAMPLERS:
        raise ConfigError(f"unknown sampler '{sampler}' (choose from {list(SAMPLERS)})")
    if heartbeat_s < 1:
        raise ConfigError(f"the heartbeat interval must be at least 1 second, got {heartbeat_s}")
    base = config.model_dump(mode="json")
    check_space(space, base, space_source)
    grid = space.grid() if sampler == "grid" else None
    if sampler == "tpe" and n_trials is None:
        n_trials = 20
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    import warnings

    from optuna.exceptions import ExperimentalWarning

    with logging_to(run_dir), warnings.catch_warnings(), thread_budget(compute_bound(config.model.encoders)):
        warnings.simplefilter("ignore", ExperimentalWarning)
        return _sweep(SweepPlan(
            config, base, space, Path(data_dir), run_dir, Path(cache_dir), sampler, grid, n_trials,
            storage or f"sqlite:///{(run_dir / 'sweep.db').resolve()}", storage is not None,
            study_name or f"{config.name}-sweep", only_folds, prune, progress, heartbeat_s))


def _open_study(storage, study_name: str, sampler, pruner, identity: str, grid: list[dict] | None, url: str):
    """Create the study and enqueue its grid, or join the study another worker created (and wait until it is ready)."""
    import optuna

    try:
        study = optuna.create_study(study_name=study_name, storage=storage, sampler=sampler, pruner=pruner,
                                    direction="maximize")
    except optuna.exceptions.DuplicatedStudyError:
        study = optuna.load_study(study_name=study_name, storage=storage, sampler=sampler, pruner=pruner)
        deadline = time.monotonic() + READY_TIMEOUT_S
        while not study.user_attrs.get("sweep_ready"):
            if time.monotonic() > deadline:
                raise ConfigError(f"study '{study_name}' in {public_url(url)} exists but its first worker never finished "
                                  f"setting it up (stopped while enqueueing?); delete it (optuna delete-study) or use "
                                  f"another --study") from None
            time.sleep(0.5)
        if study.user_attrs.get("sweep_identity") != identity:
            raise ConfigError(f"study '{study_name}' in {public_url(url)} was started with another config, space, "
                              f"sampler, fold selection or data; use another --study or --out") from None
        return study
    study.set_user_attr("sweep_identity", identity)
    study.set_user_attr("objective", OBJECTIVE)
    for params in grid or []:
        study.enqueue_trial(params)
    study.set_user_attr("sweep_ready", True)
    return study


def _requeue_failed_points(study, grid: list[dict]) -> None:
    """Grid points whose every trial failed (an error, or a worker killed more often than the retries allow)."""
    from optuna.trial import TrialState

    live = {_params_key(_point(t)) for t in study.get_trials(deepcopy=False) if t.state != TrialState.FAIL}
    for params in grid:
        if _params_key(params) not in live:
            log.info("grid point %s has only failed trials: enqueued again", rounded(params))
            study.enqueue_trial(params)


def _duplicate_of(trial, trials) -> int | None:
    """Another trial that owns this trial's grid point: a finished one, or an earlier live one (the lowest number
    wins), so that points enqueued twice by workers racing to re-enqueue failures still run once."""
    from optuna.trial import TrialState

    key = _params_key(_point(trial))
    for t in trials:
        if t.number != trial.number and _params_key(_point(t)) == key and (
            t.state in (TrialState.COMPLETE, TrialState.PRUNED)
            or (t.state in (TrialState.RUNNING, TrialState.WAITING) and t.number < trial.number)
        ):
            return t.number
    return None


def _run_claimed(study, storage, study_id: int, trial_id: int, objective) -> None:
    """Run one trial this worker has switched to RUNNING, with a heartbeat, and record how it ended."""
    import optuna
    from optuna.trial import TrialState

    trial = optuna.trial.Trial(study, trial_id)
    owner = _duplicate_of(storage.get_trial(trial_id), storage.get_all_trials(study_id, deepcopy=False))
    if owner is not None:
        log.info("trial %d repeats trial %d: not run", trial.number, owner)
        trial.set_user_attr("duplicate_of", owner)
        study.tell(trial, state=TrialState.FAIL)
        return
    state, value = TrialState.COMPLETE, None
    with _heartbeat(storage, trial_id):
        try:
            value = objective(trial)
        except optuna.TrialPruned:
            state = TrialState.PRUNED
        except BaseException:
            study.tell(trial, state=TrialState.FAIL)
            raise
    study.tell(trial, value if state == TrialState.COMPLETE else None, state=state)
    log.info("trial %d %s: %s", trial.number, rounded(trial.params), f"{value:.4f}" if value is not None else state.name.lower())


def _wait_or_take(study, storage, study_id: int, poll_s: float) -> int | None:
    """Take the next WAITING trial; with none, wait while trials run elsewhere (a killed worker's trial turns
    into a WAITING retry once stale). None when nothing is waiting or running."""
    from optuna.storages import fail_stale_trials
    from optuna.trial import TrialState

    announced = False
    while True:
        fail_stale_trials(study)
        trials = storage.get_all_trials(study_id, deepcopy=False, states=(TrialState.WAITING, TrialState.RUNNING))
        waiting = sorted(t.number for t in trials if t.state == TrialState.WAITING)
        for number in waiting:
            trial_id = storage.get_trial_id_from_study_id_trial_number(study_id, number)
            if storage.set_trial_state_values(trial_id, TrialState.RUNNING):  # False: another worker took it first
                storage.record_heartbeat(trial_id)  # at once: a trial that never beat is never found stale
                return trial_id
        if waiting:
            continue
        running = [t.number for t in trials if t.state == TrialState.RUNNING]
        if not running:
            return None
        if not announced:
            log.info("nothing left to start; waiting for running trials %s (other workers, or a killed worker's trial "
                     "that is failed and re-enqueued once its heartbeat is stale)", running)
            announced = True
        time.sleep(poll_s)


def _sweep(plan: SweepPlan) -> dict:
    import optuna
    from optuna.trial import TrialState

    from emofuse.protocol import cross_validation as cv
    from emofuse.features.cache import FeatureCache
    from emofuse.datasets.build import build_features

    started = time.perf_counter()
    worker = worker_id()
    atomic_write_text(plan.run_dir / "base_config.yaml", dump_config(plan.config))
    atomic_write_text(plan.run_dir / "space.yaml", yaml.safe_dump(plan.space.model_dump(mode="json"), sort_keys=False))

    # Features and folds: once per sweep, shared by every trial.
    fs = build_features(plan.config.data, plan.config.features, plan.data_dir, FeatureCache(plan.cache_dir), plan.progress)
    inputs = cv.prepare_inputs(fs, plan.config)
    folds = cv.dataset_folds(fs.meta, plan.config.protocol.n_folds, plan.config.protocol.val_fraction, plan.config.seed)
    if plan.only_folds:
        folds = [f for f in folds if f.index in plan.only_folds]
        if not folds:
            raise ConfigError(f"--folds {plan.only_folds}: no such fold (1..{plan.config.protocol.n_folds})")

    storage = _storage(plan.storage_url, plan.heartbeat_s)
    if plan.sampler_name == "grid":
        sampler = optuna.samplers.RandomSampler(seed=plan.config.seed)  # never asked: every grid trial is enqueued
    else:
        # Workers sharing a storage get their own seed, else they would propose the same points in step.
        seed = plan.config.seed if not plan.shared else \
            int(hashlib.sha256(f"{plan.config.seed}:{worker}".encode()).hexdigest()[:8], 16)
        sampler = optuna.samplers.TPESampler(seed=seed)
    pruner = optuna.pruners.MedianPruner(n_startup_trials=5, n_warmup_steps=1) if plan.prune else optuna.pruners.NopPruner()
    identity = hashlib.sha256((dump_config(plan.config) + _params_key(plan.space.model_dump(mode="json")) + plan.sampler_name
                               + _params_key([f.index for f in folds]) + fs.fingerprint).encode()).hexdigest()
    study = _open_study(storage, plan.study_name, sampler, pruner, identity, plan.grid, plan.storage_url)

    def objective(trial) -> float:
        trial.set_user_attr("worker", worker)
        params = _suggest(trial, plan.space)
        trial_config = apply_params(plan.base, params, f"trial {trial.number}")
        scores = []
        for step, fold in enumerate(folds):
            _model, fit, _data = cv.train_fold(trial_config, fs, inputs, fold, None)  # its test data is never scored
            scores.append(float(fit.best_metrics["accuracy"]))
            trial.set_user_attr("val_accuracy_folds", scores)
            running = float(np.mean(scores))
            trial.report(running, step=step)
            log.info("trial %d %s: fold %d validation accuracy %.4f (running mean %.4f)", trial.number, rounded(params),
                     fold.index, scores[-1], running)
            if step < len(folds) - 1 and trial.should_prune():
                log.info("trial %d pruned after fold %d", trial.number, fold.index)
                raise optuna.TrialPruned()
        return float(np.mean(scores))

    finished_states = (TrialState.COMPLETE, TrialState.PRUNED)
    poll_s = min(float(plan.heartbeat_s), 5.0)
    if plan.grid is not None:
        _requeue_failed_points(study, plan.grid)
        study_id = storage.get_study_id_from_name(plan.study_name)
        taken = 0
        while plan.n_trials is None or taken < plan.n_trials:
            trial_id = _wait_or_take(study, storage, study_id, poll_s)
            if trial_id is None:
                break
            taken += 1
            _run_claimed(study, storage, study_id, trial_id, objective)
    else:
        done = len(study.get_trials(deepcopy=False, states=finished_states))
        if done < plan.n_trials:
            study.optimize(objective, n_trials=None, gc_after_trial=False,
                           callbacks=[optuna.study.MaxTrialsCallback(plan.n_trials, states=finished_states)])

    trials = [t for t in study.get_trials(deepcopy=False) if t.state != TrialState.WAITING]
    write_trials_csv(plan.run_dir / "trials.csv", trials)
    complete = [t for t in trials if t.state == TrialState.COMPLETE]
    if not complete:
        raise ConfigError(f"study '{plan.study_name}': no trial completed, nothing to score")
    best = study.best_trial
    best_config = apply_params(plan.base, best.params, f"best trial {best.number}")
    best_dir = plan.run_dir / "best"
    config_file = best_dir / "config.yaml"
    if config_file.is_file() and config_file.read_text() != dump_config(best_config):
        log.info("%s holds the test run of an earlier best configuration; replacing it", best_dir)
        shutil.rmtree(best_dir)
    log.info("best trial %d %s: validation %.4f; scoring its test folds once", best.number, rounded(best.params), best.value)
    test = cv.run_cross_validation(best_config, plan.data_dir, best_dir, plan.cache_dir, progress=plan.progress,
                                   only_folds=plan.only_folds)
    nested = _score_nested(trials, [f.index for f in folds], plan.base, best.number, best_dir, plan.run_dir, plan.data_dir,
                           plan.cache_dir, plan.progress, strict=plan.sampler_name == "grid" and not any(
                               t.state == TrialState.PRUNED for t in trials))

    workers: dict[str, int] = {}
    for t in trials:
        if t.state in finished_states:
            workers[t.user_attrs.get("worker", "?")] = workers.get(t.user_attrs.get("worker", "?"), 0) + 1
    summary = {
        "study": plan.study_name,
        "storage": public_url(plan.storage_url),
        "sampler": plan.sampler_name,
        "pruner": "median (optuna MedianPruner, n_startup_trials=5, n_warmup_steps=1, on the running mean over folds)"
        if plan.prune else "none",
        "objective": OBJECTIVE,
        "space": {k: (v if isinstance(v, list) else v.model_dump()) for k, v in plan.space.params.items()},
        "folds": [f.index for f in folds],
        "best_trial": best.number,
        "best_params": best.params,
        "best_value": best.value,
        "best_val_accuracy_folds": best.user_attrs.get("val_accuracy_folds"),
        "n_trials": len(trials),
        "n_complete": len(complete),
        "n_pruned": sum(t.state == TrialState.PRUNED for t in trials),
        "n_failed": sum(t.state == TrialState.FAIL for t in trials),
        "n_running": sum(t.state == TrialState.RUNNING for t in trials),
        "n_waiting": len(study.get_trials(deepcopy=False, states=(TrialState.WAITING,))),
        "trials_by_worker": workers,
        "worker": worker,
        "nested": {key: nested[key] for key in ("nesting", "chosen_trials", "chosen_params", "fold_accuracy",
                                                 "accuracy_mean", "accuracy_std", "macro_f1_mean", "pooled_accuracy",
                                                 "n_clips", "run_dir")},
        "test": {
            "note": "not nested: the trial with the best validation accuracy averaged over all folds, whose "
                    "validation speakers include each fold's test speakers; a reference beside the nested figure",
            "accuracy_mean": test["accuracy_mean"],
            "accuracy_std": test["accuracy_std"],
            "macro_f1_mean": test["macro_f1_mean"],
            "pooled_accuracy": test["pooled_accuracy"],
            "run_dir": str(best_dir),
        },
        "trial_seconds_total": float(sum(t.duration.total_seconds() for t in trials if t.duration is not None)),
        "wall_seconds": time.perf_counter() - started,
    }
    write_json(plan.run_dir / "sweep.json", summary)
    return summary


NESTING = {
    True: "strictly nested: each fold chose among every grid point by its own validation speakers' accuracy",
    False: "per fold among a search steered by every fold's validation scores (TPE proposals or median pruning), "
           "whose validation speakers include each fold's test speakers: not strictly nested",
}


def _score_nested(trials, fold_ids: list[int], base: dict, best_number: int, best_dir: Path, run_dir: Path,
                  data_dir: Path, cache_dir: Path, progress: bool, strict: bool) -> dict:
    """Each fold's own choice of trial (protocol/nested.py), its test folds scored in RUN/trials/trial_N (the best
    trial's are RUN/best's), gathered in RUN/nested as a cv run directory."""
    from optuna.trial import TrialState

    from emofuse.protocol import cross_validation as cv
    from emofuse.protocol.nested import choose_per_fold, write_nested_run

    scored = sorted((t for t in trials if t.state in (TrialState.COMPLETE, TrialState.PRUNED)), key=lambda t: t.number)
    by_number = {t.number: t for t in scored}
    val = {t.number: dict(zip(fold_ids, t.user_attrs.get("val_accuracy_folds", []))) for t in scored}
    chosen = choose_per_fold(val)
    dirs = {}
    for number in sorted(set(chosen.values())):
        its_folds = [k for k, n in chosen.items() if n == number]
        out = best_dir if number == best_number else run_dir / "trials" / f"trial_{number}"
        if number != best_number:
            log.info("trial %d: chosen by fold(s) %s on their own validation speakers; scoring those test folds",
                     number, its_folds)
            cv.run_cross_validation(apply_params(base, by_number[number].params, f"trial {number}"), data_dir, out,
                                    cache_dir, progress=progress, only_folds=its_folds)
        dirs.update({k: (f"trial_{number}", out / "folds" / f"fold_{k}") for k in its_folds})
    nested_dir = run_dir / "nested"
    summary = write_nested_run(nested_dir, "nested choice per fold", dirs, {
        "nesting": NESTING[strict],
        "chosen_trials": chosen,
        "chosen_params": {k: by_number[n].params for k, n in chosen.items()},
        "chosen_val_accuracy": {k: val[n][k] for k, n in chosen.items()},
        "config": base,
    })
    summary["fold_accuracy"] = {r["fold"]: r["accuracy"] for r in summary["folds"]}
    summary["run_dir"] = str(nested_dir)
    log.info("nested test accuracy (each fold's own choice): %.4f +- %.4f over folds, pooled %.4f (%s)",
             summary["accuracy_mean"], summary["accuracy_std"], summary["pooled_accuracy"], summary["nesting"])
    return summary


def write_trials_csv(path: Path, trials) -> None:
    import pandas as pd

    rows = []
    for t in trials:
        row = {"number": t.number, "state": t.state.name, "value": t.value,
               "seconds": t.duration.total_seconds() if t.duration is not None else None,
               "worker": t.user_attrs.get("worker"), "retry_of": t.system_attrs.get("failed_trial")}
        row.update({f"params_{k}": v for k, v in t.params.items()})
        rows.append(row)
    atomic_write_text(path, pd.DataFrame(rows).to_csv(index=False))
