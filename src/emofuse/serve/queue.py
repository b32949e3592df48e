"""One prediction at a time, a bounded number of requests waiting, the rest refused at once.

The model is CPU-bound and already uses the machine's cores, so running two predictions side by
side would only make both slower; requests beyond the bound get 503 (with Retry-After) instead of
piling up memory and temporary files. Admission counts a request from before its upload is read,
so refused uploads cost nothing.
"""

from __future__ import annotations

import asyncio
from contextlib import asynccontextmanager
from typing import Callable, TypeVar

import anyio

from emofuse.serve.errors import RequestError

T = TypeVar("T")


class PredictionQueue:
    def __init__(self, max_waiting: int):
        if max_waiting < 0:
            raise ValueError("max_waiting must be 0 or more")
        self.max_waiting = max_waiting
        self.admitted = 0  # requests between admission and answer: the one running, those waiting or uploading
        self.running = False
        self._turn = asyncio.Lock()

    @asynccontextmanager
    async def admission(self):
        """Hold a place for one request, or refuse it with 503 when every place is taken."""
        if self.admitted >= 1 + self.max_waiting:
            raise RequestError(503, "busy", f"the server is busy: one prediction running and {self.max_waiting} waiting; "
                                            "try again shortly", retry_after_s=1)
        self.admitted += 1
        try:
            yield
        finally:
            self.admitted -= 1

    async def run(self, work: Callable[..., T], *args) -> T:
        """Run ``work`` in a worker thread once the ones before it are done (the event loop keeps serving)."""
        async with self._turn:
            self.running = True
            try:
                return await anyio.to_thread.run_sync(work, *args)
            finally:
                self.running = False
