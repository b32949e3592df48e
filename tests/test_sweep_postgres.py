"""Two `emofuse sweep` workers on one PostgreSQL study: every grid point runs once, and a worker killed
mid-trial loses only that trial. The server tests need one: `bash .ci/with-postgres python -m pytest -q
tests/test_sweep_postgres.py` starts a throwaway one and sets EMOFUSE_TEST_PG_URL (CI runs every test so).
The same recovery logic is also checked on SQLite, with an abandoned trial standing in for a killed worker."""

import copy
import functools
import json
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections import Counter
from datetime import datetime

import pytest
import yaml
from conftest import make_ravdess_fixture
from test_resume import TINY

PG_URL = os.environ.get("EMOFUSE_TEST_PG_URL")
requires_pg = pytest.mark.skipif(
    not PG_URL, reason="EMOFUSE_TEST_PG_URL is not set: run under `bash .ci/with-postgres` (as CI does) for a server")

CONFIG = copy.deepcopy(TINY)
CONFIG["loss"]["params"]["gamma"] = {"audio": 1.0, "visual": 1.0}
CONFIG["train"]["epochs"] = 12  # about a second or more per trial: long enough to be killed mid-trial
SPACE = {"params": {"loss.params.switch_epoch": [0, 1, 2], "loss.params.gamma.visual": [1.0, 2.0]}}
GRID = [{"loss.params.switch_epoch": s, "loss.params.gamma.visual": g} for s in (0, 1, 2) for g in (1.0, 2.0)]


def key(params: dict) -> str:
    return json.dumps(params, sort_keys=True)


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    root = tmp_path_factory.mktemp("pg_sweep")
    data = make_ravdess_fixture(root / "ravdess")
    config = root / "tiny.yaml"
    config.write_text(yaml.safe_dump(CONFIG))
    space = root / "space.yaml"
    space.write_text(yaml.safe_dump(SPACE))
    cache = root / "cache"
    # Fill the feature cache once, so that the workers start on trials rather than on extraction.
    subprocess.run([sys.executable, "-m", "emofuse", "extract", str(config), "--data", str(data), "--cache", str(cache),
                    "--no-progress"], check=True, capture_output=True)
    return {"config": config, "space": space, "data": data, "cache": cache}


def start_worker(files, study: str, out) -> subprocess.Popen:
    args = [sys.executable, "-m", "emofuse", "sweep", str(files["config"]), "--space", str(files["space"]),
            "--data", str(files["data"]), "--cache", str(files["cache"]), "--out", str(out), "--storage", PG_URL,
            "--study", study, "--folds", "1", "--heartbeat", "1", "--no-progress"]
    return subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            env={**os.environ, "OMP_NUM_THREADS": "1"})


def finish(worker: subprocess.Popen) -> str:
    try:
        output, _ = worker.communicate(timeout=300)
    except subprocess.TimeoutExpired:
        worker.kill()
        output, _ = worker.communicate()
        pytest.fail(f"sweep worker {worker.pid} did not finish:\n{output[-3000:]}")
    assert worker.returncode == 0, output[-3000:]
    return output


@functools.cache
def reader():
    """One storage (one connection pool) for all the test's reads: a new one per poll would exhaust the server's
    connections."""
    import optuna

    return optuna.storages.RDBStorage(PG_URL)


def trials_of(study: str):
    import optuna

    return optuna.load_study(study_name=study, storage=reader()).get_trials(deepcopy=False)


def worker_name(process: subprocess.Popen) -> str:
    return f"{socket.gethostname()}:{process.pid}"


@requires_pg
def test_two_workers_run_every_grid_point_once(files, tmp_path):
    from optuna.trial import TrialState

    study = f"two-workers-{uuid.uuid4().hex[:8]}"
    workers = [start_worker(files, study, tmp_path / f"worker_{i}") for i in range(2)]
    for w in workers:
        finish(w)

    trials = trials_of(study)
    assert len(trials) == len(GRID)  # no duplicate, no extra trial
    assert all(t.state == TrialState.COMPLETE for t in trials)
    assert sorted(key(t.params) for t in trials) == sorted(key(p) for p in GRID)
    by_worker = Counter(t.user_attrs["worker"] for t in trials)
    assert set(by_worker) == {worker_name(w) for w in workers}, by_worker  # both workers did work

    best = max(t.value for t in trials)
    for i in range(2):  # each worker waited for the other's trials, so both report the finished study
        summary = json.loads((tmp_path / f"worker_{i}" / "sweep.json").read_text())
        assert (summary["n_trials"], summary["n_complete"], summary["n_failed"]) == (len(GRID), len(GRID), 0)
        assert summary["best_value"] == best
        assert summary["storage"].startswith("postgresql")


@requires_pg
def test_a_killed_worker_loses_only_its_trial(files, tmp_path):
    from optuna.trial import TrialState

    study = f"killed-worker-{uuid.uuid4().hex[:8]}"
    a, b = start_worker(files, study, tmp_path / "a"), start_worker(files, study, tmp_path / "b")

    victim = None
    deadline = time.monotonic() + 180
    while victim is None:  # a trial of worker a that has been running for a moment: kill a in the middle of it
        assert time.monotonic() < deadline and a.poll() is None, "worker a never ran a trial"
        time.sleep(0.2)
        try:
            trials = trials_of(study)
        except KeyError:  # the study is not created yet
            continue
        victim = next((t for t in trials if t.state == TrialState.RUNNING and t.user_attrs.get("worker") == worker_name(a)
                       and (datetime.now() - t.datetime_start).total_seconds() > 0.5), None)
    os.kill(a.pid, signal.SIGKILL)
    a.wait()
    assert next(t for t in trials_of(study) if t.number == victim.number).state == TrialState.RUNNING

    restarted = start_worker(files, study, tmp_path / "a")
    finish(restarted)
    finish(b)

    trials = trials_of(study)
    states = Counter(t.state for t in trials)
    assert states == {TrialState.COMPLETE: len(GRID), TrialState.FAIL: 1}, states
    killed = next(t for t in trials if t.number == victim.number)
    assert killed.state == TrialState.FAIL  # failed once its heartbeat went stale
    retries = [t for t in trials if t.system_attrs.get("failed_trial") == victim.number]
    assert len(retries) == 1 and retries[0].state == TrialState.COMPLETE
    assert retries[0].params == killed.system_attrs["fixed_params"]  # the killed trial's point, run again
    complete = [t for t in trials if t.state == TrialState.COMPLETE]
    assert sorted(key(t.params) for t in complete) == sorted(key(p) for p in GRID)  # every point once

    summary = json.loads((tmp_path / "a" / "sweep.json").read_text())
    assert (summary["n_complete"], summary["n_failed"], summary["n_running"]) == (len(GRID), 1, 0)


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore::optuna.exceptions.ExperimentalWarning", "ignore:Heartbeat of storage")
def test_stale_and_repeated_trials_on_sqlite(ravdess_fixture, tmp_path):
    """An abandoned RUNNING trial (its worker died) is failed once stale and its point rerun; a point enqueued
    twice (workers racing to re-enqueue) runs once, the repeat being recorded as a FAIL with `duplicate_of`."""
    import optuna
    from optuna.trial import TrialState

    from emofuse.cli import main

    config = tmp_path / "tiny.yaml"
    tiny = copy.deepcopy(CONFIG)
    tiny["train"]["epochs"] = 2
    config.write_text(yaml.safe_dump(tiny))
    space = tmp_path / "space.yaml"
    space.write_text(yaml.safe_dump({"params": {"loss.params.switch_epoch": [0, 1]}}))
    out = tmp_path / "sweep"
    args = ["sweep", str(config), "--space", str(space), "--data", str(ravdess_fixture), "--out", str(out),
            "--cache", str(tmp_path / "cache"), "--folds", "1", "--heartbeat", "1", "--no-progress"]
    assert main(args + ["--trials", "1"]) == 0  # trial 0 runs; trial 1 (the other point) stays WAITING

    storage = optuna.storages.RDBStorage(f"sqlite:///{out / 'sweep.db'}", heartbeat_interval=1)
    study = optuna.load_study(study_name="tiny-sweep", storage=storage)
    abandoned = study.ask()  # a worker takes trial 1, beats once and dies
    storage.record_heartbeat(abandoned._trial_id)
    study.enqueue_trial(study.trials[0].params)  # trial 2 repeats the finished point of trial 0

    assert main(args) == 0
    trials = {t.number: t for t in optuna.load_study(study_name="tiny-sweep", storage=storage).trials}
    assert [trials[i].state for i in range(4)] == [TrialState.COMPLETE, TrialState.FAIL, TrialState.FAIL,
                                                   TrialState.COMPLETE]
    assert trials[2].user_attrs["duplicate_of"] == 0
    assert trials[3].system_attrs["failed_trial"] == 1 and trials[3].params == trials[1].system_attrs["fixed_params"]
    assert sorted(t.params["loss.params.switch_epoch"] for t in trials.values() if t.state == TrialState.COMPLETE) \
        == [0, 1]
    summary = json.loads((out / "sweep.json").read_text())
    assert (summary["n_complete"], summary["n_failed"], summary["n_waiting"]) == (2, 2, 0)
