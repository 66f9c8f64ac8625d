"""Blocking calls run in threads, counted, so that shutdown can wait for them.

Cancelling a task that awaits `asyncio.to_thread` does not stop the thread: it goes on with its
query or its fetch. Before the engine and the broker are closed, the process waits until every
such thread has returned, so none of them finds its connection closed under it.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

T = TypeVar("T")


class Threads:
    """A pool of its own: messaging's many short database and broker calls never queue behind
    (or in front of) the registry's and the publishers' calls in asyncio's default pool."""

    def __init__(self, workers: int = 32) -> None:
        self._lock = threading.Lock()
        self._running = 0
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="messaging")

    async def run(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        with self._lock:
            self._running += 1

        def counted() -> T:
            try:
                return fn(*args, **kwargs)
            finally:
                with self._lock:
                    self._running -= 1

        return await asyncio.get_running_loop().run_in_executor(self._pool, counted)

    @property
    def running(self) -> int:
        return self._running

    async def idle(self, seconds: float) -> bool:
        """Wait until no call is running (True), or `seconds` passed (False). Polled: the
        threads cannot signal the event loop they are leaving without one more handoff."""
        deadline = time.monotonic() + seconds
        while self._running and time.monotonic() < deadline:  # noqa: ASYNC110
            await asyncio.sleep(0.02)
        return self._running == 0

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
