"""How many threads a piece of work runs on: torch's intra-op pool and the BLAS / OpenMP pools of numpy and
scikit-learn.

Small networks on clip features (MLPs, 1D CNNs, the linear peer) have nothing to split: a second thread only adds its
wake-up, and when another process keeps a core busy, threads that wait for each other spin (measured on the 2-core
machine: 150-250 ms per training step instead of 3.5 ms). Such work runs on one thread. Work whose every step is large
(a 3D CNN over face clips) keeps one thread per physical core. ``--threads N`` or ``EMOFUSE_THREADS=N`` overrides the
choice everywhere; it travels to worker processes through the environment.
"""

from __future__ import annotations

import os
from contextlib import contextmanager
from functools import lru_cache
from typing import Iterator

from emofuse.core.registry import ConfigError

ENV = "EMOFUSE_THREADS"


def requested() -> int | None:
    """The thread count the user asked for (``EMOFUSE_THREADS``), or None to let the work choose."""
    text = os.environ.get(ENV, "").strip()
    if not text:
        return None
    try:
        count = int(text)
    except ValueError:
        raise ConfigError(f"{ENV}={text!r}: expected a whole number of threads, e.g. {ENV}=1") from None
    if count < 1:
        raise ConfigError(f"{ENV}={text!r}: the number of threads must be at least 1")
    return count


@contextmanager
def requesting(count: int | None) -> Iterator[None]:
    """``--threads`` for the block: in the environment, so that spawned extraction workers and torchrun ranks see it
    too; the environment as it was afterwards."""
    before = os.environ.get(ENV)
    if count is not None:
        os.environ[ENV] = str(count)
    try:
        requested()  # refuse a bad count at once
        yield
    finally:
        if before is None:
            os.environ.pop(ENV, None)
        else:
            os.environ[ENV] = before


def threads_for(parallel: bool) -> int:
    """The user's count if given, else one thread per physical core for ``parallel`` work and one otherwise."""
    chosen = requested()
    if chosen is not None:
        return chosen
    if not parallel:
        return 1
    import torch

    return torch.get_num_threads() if _default is None else _default


_default: int | None = None  # torch's own choice (physical cores), remembered before the first change


@contextmanager
def thread_budget(parallel: bool) -> Iterator[int]:
    """Run the block on :func:`threads_for` threads (torch and the BLAS pools), restoring the previous counts after."""
    global _default
    import torch

    before = torch.get_num_threads()
    if _default is None:
        _default = before
    count = threads_for(parallel)
    torch.set_num_threads(count)
    try:
        with _blas_pools().limit(limits=count):
            yield count
    finally:
        torch.set_num_threads(before)


@lru_cache(maxsize=1)
def _blas_pools():
    """threadpoolctl's view of the loaded BLAS / OpenMP libraries, found once (finding them takes milliseconds, and
    predict enters a budget per file). numpy's, torch's and scipy's are loaded before any work starts (the layers
    import them at module level), so the first look finds them."""
    from threadpoolctl import ThreadpoolController

    return ThreadpoolController()
