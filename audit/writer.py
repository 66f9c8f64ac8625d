"""Group commit: concurrent requests' records share one transaction and one flush.

A request hands its record to the writer and awaits the commit; the writer thread takes every
record waiting (up to a batch limit), inserts them in one statement and commits once, then wakes
all their requests. While one commit flushes, the next batch gathers, so under load the cost of
the flush is shared by the whole batch and the answer still leaves only after its record is
durable.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import queue
import threading
from collections.abc import Sequence
from typing import Any

from sqlalchemy import insert
from sqlalchemy.engine import Engine

from audit.records import ExchangeRecord

log = logging.getLogger(__name__)

_TABLE = ExchangeRecord.__table__  # type: ignore[attr-defined]


class AuditUnavailable(Exception):
    """The record could not be committed; the exchange's answer must not leave."""


class _Pending:
    __slots__ = ("future", "loop", "row")

    def __init__(self, row: dict[str, Any], loop: asyncio.AbstractEventLoop) -> None:
        self.row = row
        self.loop = loop
        self.future: asyncio.Future[None] = loop.create_future()


def _settle(futures: Sequence[asyncio.Future[None]], error: BaseException | None) -> None:
    for future in futures:
        if future.done():
            continue
        if error is None:
            future.set_result(None)
        else:
            future.set_exception(AuditUnavailable(str(error)))


class AuditWriter:
    """One per process; `write` returns once the record is committed."""

    def __init__(self, engine: Engine, *, batch_max: int = 512) -> None:
        self._engine = engine
        self._batch_max = batch_max
        self._queue: queue.SimpleQueue[_Pending | None] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self.batches = 0  # observability: how many commits, how many records
        self.records = 0

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="audit-writer", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        """Commit what is queued, then stop."""
        if self._thread is not None:
            self._queue.put(None)
            self._thread.join()
            self._thread = None

    async def write(self, row: dict[str, Any]) -> None:
        pending = _Pending(row, asyncio.get_running_loop())
        self._queue.put(pending)
        await pending.future

    def _run(self) -> None:
        stopping = False
        while not stopping:
            first = self._queue.get()
            if first is None:
                break
            batch = [first]
            while len(batch) < self._batch_max:
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
                if item is None:
                    stopping = True
                    break
                batch.append(item)
            self._commit(batch)

    def _commit(self, batch: list[_Pending]) -> None:
        error: BaseException | None = None
        try:
            with self._engine.begin() as connection:
                connection.execute(insert(_TABLE), [p.row for p in batch])
            self.batches += 1
            self.records += len(batch)
        except Exception as exc:  # any database failure fails every request of the batch
            log.error("audit commit of %d records failed: %s", len(batch), exc)
            error = exc
        by_loop: dict[asyncio.AbstractEventLoop, list[asyncio.Future[None]]] = {}
        for p in batch:
            by_loop.setdefault(p.loop, []).append(p.future)
        for loop, futures in by_loop.items():
            # A closed loop has nobody waiting any more.
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(_settle, futures, error)
