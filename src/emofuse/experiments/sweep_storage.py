"""Where a sweep's trials are kept and how workers share them: the optuna storage (SQLite or PostgreSQL), a worker's
name, and the heartbeat that tells a live worker's running trial from a dead one's."""

from __future__ import annotations

import json
import os
import random
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager


from emofuse.core.registry import ConfigError


HEARTBEAT_S = 60
GRACE_HEARTBEATS = 3  # a RUNNING trial without a heartbeat for this many intervals belongs to a dead worker


def public_url(url: str) -> str:
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:  # not an SQLAlchemy URL: keep only what follows any credentials
        return url.split("@", 1)[-1] if "@" in url else url


def _storage(url: str, heartbeat_s: int):
    """An RDB storage with heartbeats: stale trials of killed workers are failed and re-enqueued (twice at most)."""
    import inspect

    from optuna import storages

    if hasattr(storages, "RetryHeartbeatStaleTrialCallback"):  # optuna >= 4.9
        retry = {"heartbeat_stale_trial_callback": storages.RetryHeartbeatStaleTrialCallback(max_retry=2)}
    else:
        retry = {"failed_trial_callback": storages.RetryFailedTrialCallback(max_retry=2)}
    assert set(retry) <= set(inspect.signature(storages.RDBStorage).parameters)
    from sqlalchemy.exc import SQLAlchemyError

    for attempt in range(5):
        try:
            return storages.RDBStorage(url, heartbeat_interval=heartbeat_s, grace_period=GRACE_HEARTBEATS * heartbeat_s,
                                       **retry)
        except ImportError as err:
            raise ConfigError(f"storage {public_url(url)}: its database driver is missing ({err}); for PostgreSQL: "
                              f"pip install 'emofuse[postgres]'") from None
        except SQLAlchemyError as err:
            # Workers started together on an empty database race to create optuna's tables; the losers find
            # them on the next try. Anything else (a wrong URL, no server) still fails after the last try.
            if attempt == 4:
                raise ConfigError(f"storage {public_url(url)}: {type(err).__name__}: {str(err).splitlines()[0]}") from None
            time.sleep(0.5 + random.random())


def _params_key(params: dict) -> str:
    return json.dumps(params, sort_keys=True, default=str)


def _point(trial) -> dict:
    """A trial's parameters; an enqueued trial carries them as fixed params until it suggests them."""
    return trial.system_attrs.get("fixed_params") or trial.params


def worker_id() -> str:
    """Names the process in each trial it runs (user attr ``worker``): which machine did what, who died."""
    return f"{socket.gethostname()}:{os.getpid()}"


@contextmanager
def _heartbeat(storage, trial_id: int) -> Iterator[None]:
    """Record the trial's heartbeat every interval while it runs, as optuna's own optimize loop does."""
    stop = threading.Event()

    def beat() -> None:
        while True:
            storage.record_heartbeat(trial_id)
            if stop.wait(storage.get_heartbeat_interval()):
                return

    thread = threading.Thread(target=beat, name=f"heartbeat-{trial_id}", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()
