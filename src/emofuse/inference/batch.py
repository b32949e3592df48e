"""Many recordings in constant memory: a folder of thousands of clips, predicted chunk by chunk.

The recordings are taken ``chunk`` at a time: decoded and put through the run's extractors (in ``workers`` processes,
each with its own copy of the extractors and one thread, while this process runs the fold models, writes, and reads
files itself whenever the workers are behind, as while they start), then predicted and handed on as one chunk of
results, in the order given. Only the features of the chunk in hand and of the
next (read ahead by the workers) are held, whatever the number of recordings. Each file is predicted on its own, as
``emofuse predict`` does without ``--speaker``: a speaker group's statistics would need all of its files at once.
A file that cannot be predicted (missing, empty, corrupt, no usable modality) gets its error entry and the batch goes on.
"""

from __future__ import annotations

import multiprocessing
import os
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path

from emofuse.core import console
from emofuse.core.threads import thread_budget
from emofuse.data.inputs import Item
from emofuse.inference.formats import result, result_id
from emofuse.inference.predict import Predictor

CHUNK = 32  # recordings per chunk: the unit of writing and of memory
MIN_FILES_PER_WORKER = 64  # below this, starting a worker process (torch and the extractors: seconds) costs more than it gives


@dataclass
class BatchReport:
    named: int  # recordings named
    skipped: int  # already in the output: not predicted again
    predicted: int = 0
    failed: dict[str, str] = field(default_factory=dict)  # id -> why it got no prediction
    seconds: float = 0.0

    def summary(self, out: Path | None = None) -> str:
        """``1000 recordings: 995 predicted, 3 already in out.jsonl, 2 failed; 41.2 s (24.2 files/s)``."""
        rate = f" ({self.predicted / self.seconds:.1f} files/s)" if self.seconds > 0 and self.predicted else ""
        parts = [f"{self.predicted} predicted"]
        if self.skipped:
            parts.append(f"{self.skipped} already in {out}")
        parts.append(f"{len(self.failed)} failed")
        return f"{self.named} recordings: {', '.join(parts)}; {self.seconds:.1f} s{rate}"


def default_workers(predictor: Predictor, files: int) -> int:
    """The run's ``features.workers``, at most one per core and as many as the files keep busy (one per
    MIN_FILES_PER_WORKER files)."""
    return max(1, min(predictor.config.features.workers, os.cpu_count() or 1, files // MIN_FILES_PER_WORKER))


def run_batch(predictor: Predictor, items: Sequence[Item], write: Callable[[list[dict]], None],
              done: Iterable[str] = (), chunk: int = CHUNK, workers: int | None = None, progress: bool = True,
              openface_dir: Path | None = None, classes: Sequence[str] | None = None,
              min_confidence: float | None = None, top_k: int | None = None,
              on_failure: Callable[[str, str], None] | None = None) -> BatchReport:
    """Predict ``items`` (those whose id is in ``done`` skipped), handing ``write`` each chunk's results (formats.result:
    the entries, error entries included) as soon as they are made; ``on_failure(id, reason)`` for each file
    that failed. A progress bar on stderr counts the recordings."""
    predictor.class_indices(classes)  # refused before any file is read
    done = set(done)
    todo = [item for item in items if item.id not in done]
    report = BatchReport(named=len(items), skipped=len(items) - len(todo))
    workers = default_workers(predictor, len(todo)) if workers is None else workers
    started = time.perf_counter()
    with console.progress("predicting", len(todo), progress, stderr=True) as advance:
        for results in predicted_chunks(predictor, todo, chunk, workers, openface_dir, classes, min_confidence, top_k):
            write(results)
            for r in results:
                if "error" in r:
                    report.failed[result_id(r)] = r["error"]
                    if on_failure is not None:
                        on_failure(result_id(r), r["error"])
                else:
                    report.predicted += 1
                advance()
    report.seconds = time.perf_counter() - started
    return report


def predicted_chunks(predictor: Predictor, items: Sequence[Item], chunk: int = CHUNK, workers: int = 1,
                     openface_dir: Path | None = None, classes: Sequence[str] | None = None,
                     min_confidence: float | None = None, top_k: int | None = None) -> Iterator[list[dict]]:
    """Each chunk's results in the order of ``items``, each file on its own (no speaker groups)."""
    if chunk < 1:
        raise ValueError(f"chunk must be at least 1, got {chunk}")
    with ExitStack() as stack:
        pool = stack.enter_context(worker_pool(predictor, workers)) if workers > 1 else None
        features = _features_in_order(predictor, items, openface_dir, pool, ahead=2 * chunk)
        for start in range(0, len(items), chunk):
            part = items[start : start + chunk]
            extracted = [next(features) for _ in part]
            entries = predictor.predict_extracted([str(i.path) for i in part], extracted, classes=classes,
                                                  min_confidence=min_confidence)
            yield [result(e, i.id, top_k) for e, i in zip(entries, part)]


def _features_in_order(predictor: Predictor, items: Sequence[Item], openface_dir: Path | None,
                       pool: ProcessPoolExecutor | None, ahead: int) -> Iterator[tuple[dict, dict, dict]]:
    """``Predictor.features`` of each item in turn: here, or in the pool with up to ``ahead`` files read ahead. While
    the next result is not ready (the workers still starting, say), this process reads a file no worker has taken yet,
    the last one queued, and keeps its result for its turn."""
    if pool is None:
        for item in items:
            yield _features_here(predictor, item.path, openface_dir)
        return
    queued: deque[list] = deque()  # [item, future or None, result read here]
    upcoming = iter(items)
    while True:
        while len(queued) < ahead and (item := next(upcoming, None)) is not None:
            queued.append([item, pool.submit(_worker_features, item.path, openface_dir), None])
        if not queued:
            return
        head = queued[0]
        while head[1] is not None and not head[1].done():
            spare = next((q for q in reversed(queued) if q[1] is not None and q[1].cancel()), None)
            if spare is None:
                break
            spare[1], spare[2] = None, _features_here(predictor, spare[0].path, openface_dir)
        queued.popleft()
        yield head[2] if head[1] is None else head[1].result()


def _features_here(predictor: Predictor, path: Path, openface_dir: Path | None) -> tuple[dict, dict, dict]:
    """One file's features in this process, on one thread as in a worker (thread_budget: --threads overrides)."""
    with thread_budget(parallel=False):
        return _features(predictor, path, openface_dir)


def _features(predictor: Predictor, path: Path, openface_dir: Path | None) -> tuple[dict, dict, dict]:
    """A file's (features, missing, records); an unexpected failure on it becomes its error, not the batch's end."""
    try:
        return predictor.features(path, openface_dir)
    except Exception as err:  # noqa: BLE001  (a decoder or extractor failure on this file only)
        return {}, {}, {"error": f"{path}: cannot be read ({type(err).__name__}: {err})"}


def worker_pool(predictor: Predictor, workers: int) -> ProcessPoolExecutor:
    """Processes that each hold the run's extractors (``Predictor.features``) on one thread."""
    return ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"),  # fork is unsafe once torch threads exist
                               initializer=_init_worker, initargs=(str(predictor.run_dir), predictor.speech_gate))


_worker: Predictor | None = None


def _init_worker(run_dir: str, speech_gate: bool) -> None:
    global _worker
    import torch

    torch.set_num_threads(1)  # the workers are the parallelism
    _worker = Predictor(run_dir, speech_gate=speech_gate)


def _worker_features(path: Path, openface_dir: Path | None) -> tuple[dict, dict, dict]:
    return _features(_worker, path, openface_dir)
