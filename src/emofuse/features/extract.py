"""Parallel, cached, resumable feature extraction over many audio or video files, shardable across machines.

Within a machine, files are spread over worker processes. Across machines (or several processes),
``emofuse extract CONFIG --shard i/n`` takes only the i-th of n disjoint shares of the takes; all n
shards together fill the cache, and since each entry is written under a unique temporary name and
renamed into place (features/cache.py), shards or whole runs writing one shared cache at once
cannot clash: a reader sees a whole entry or none.
"""

from __future__ import annotations

import hashlib
import logging
import multiprocessing
from concurrent.futures import ProcessPoolExecutor, as_completed
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from emofuse.core.threads import thread_budget
from emofuse.core import console
from emofuse.core.errors import DataError
from emofuse.features.base import Extractor
from emofuse.features.cache import FeatureCache, file_digest
from emofuse.core.registry import ConfigError

log = logging.getLogger(__name__)


@dataclass
class ExtractionReport:
    features: dict[Path, np.ndarray] = field(default_factory=dict)
    info: dict[Path, dict] = field(default_factory=dict)  # file -> the extractor's record, where it keeps one
    digests: dict[Path, str] = field(default_factory=dict)  # file -> SHA-256 of its bytes
    failures: dict[Path, str] = field(default_factory=dict)  # file -> what is wrong
    computed: int = 0
    cached: int = 0


_worker_extractor: Extractor | None = None
VANISHED = "its cache entry vanished before it could be read"


def parse_shard(text: str) -> tuple[int, int]:
    """``"i/n"`` (1-based) as (i, n)."""
    try:
        index, count = (int(part) for part in text.split("/"))
    except ValueError:
        raise ConfigError(f"--shard {text!r}: expected i/n, e.g. 2/4") from None
    if not 1 <= index <= count:
        raise ConfigError(f"--shard {text!r}: i must be between 1 and n")
    return index, count


def in_shard(key: str, index: int, count: int) -> bool:
    """Whether ``key`` (a take id) falls in shard ``index`` of ``count``: decided by a hash of the key alone, so
    every machine agrees whatever else its file listing holds, and the shards are disjoint and cover everything."""
    return int(hashlib.sha256(key.encode()).hexdigest(), 16) % count == index - 1


def _init_worker(cls: type[Extractor], params: dict) -> None:
    global _worker_extractor
    import cv2
    import torch

    torch.set_num_threads(1)
    cv2.setNumThreads(1)  # the workers are the parallelism
    _worker_extractor = cls(cls.Params.model_validate(params))


def _extract_one(path: Path, digest: str, cache_root: str) -> str | None:
    """Extract one file into the cache; returns the problem instead of raising, so the batch goes on."""
    extractor = _worker_extractor
    try:
        features, info = extractor.extract_file(path)
    except DataError as err:
        return err.problem
    except Exception as err:  # a decoder or extractor failure on this file only
        return f"feature extraction failed ({type(err).__name__}: {err})"
    if not np.isfinite(features).all():
        return "extracted features hold NaN or infinity"
    FeatureCache(cache_root).save(extractor.settings_key(), digest, features, info)
    return None


def extract_features(
    files: list[Path],
    extractor: Extractor,
    cache: FeatureCache,
    workers: int = 2,
    progress: bool = True,
) -> ExtractionReport:
    """Features for every file, from the cache where present; failures are collected, not raised."""
    report = ExtractionReport()
    key = extractor.settings_key()
    digests = {path: file_digest(path) if path.is_file() else None for path in files}
    todo = []
    for path, digest in digests.items():
        if digest is None:
            report.failures[path] = "file does not exist"
            continue
        report.digests[path] = digest
        if _take_from_cache(report, path, extractor, cache):
            report.cached += 1
        else:
            todo.append(path)
    first = {}  # files with the same bytes (copies, links) are extracted once
    for path in todo:
        first.setdefault(digests[path], path)
    if first:
        log.info("extracting %s for %d files (%d cached) with %d workers", key, len(todo), report.cached, workers)
        _run_workers(list(first.values()), digests, extractor, cache, workers, progress, report)
    for path in todo:
        done = first[digests[path]]
        if path == done:
            continue
        if done in report.failures:
            report.failures[path] = report.failures[done]
        elif _take_from_cache(report, path, extractor, cache):
            report.computed += 1
        else:
            report.failures[path] = VANISHED
    return report


def _take_from_cache(report: ExtractionReport, path: Path, extractor: Extractor, cache: FeatureCache) -> bool:
    key, digest = extractor.settings_key(), report.digests[path]
    features = cache.load(key, digest, mmap=extractor.memmap)
    if features is None:
        return False
    report.features[path] = extractor.view(features)
    info = cache.load_info(key, digest)
    if info is not None:
        report.info[path] = info
    return True


def _run_workers(todo, digests, extractor, cache, workers, progress, report) -> None:
    global _worker_extractor
    with console.progress(f"extracting {extractor.registry_name}", len(todo), progress) as advance, ExitStack() as stack:
        if workers <= 1:  # in this process: no start-up cost, for small jobs and debugging
            stack.enter_context(thread_budget(parallel=True))  # the only work here: a thread per core (core/threads.py)
            _worker_extractor = extractor
            results = ((p, _extract_one(p, digests[p], str(cache.root))) for p in todo)
        else:
            pool = stack.enter_context(
                ProcessPoolExecutor(
                    workers, mp_context=multiprocessing.get_context("spawn"),  # fork is unsafe once torch threads exist
                    initializer=_init_worker, initargs=(type(extractor), extractor.params.model_dump(mode="json")),
                )
            )
            futures = {pool.submit(_extract_one, p, digests[p], str(cache.root)): p for p in todo}
            results = ((futures[f], f.result()) for f in as_completed(futures))
        for path, problem in results:
            if problem is None and _take_from_cache(report, path, extractor, cache):
                report.computed += 1
            else:
                report.failures[path] = problem or VANISHED
                log.warning("%s: %s", path, report.failures[path])
            advance()
