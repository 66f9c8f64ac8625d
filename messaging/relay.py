"""The relay: moves accepted messages from the outbox to the broker, oldest first.

One relay runs at a time across replicas (a lease). It reads a batch of unrelayed rows in `seq`
order, hands them to the broker (which acknowledges with acks=all), then stamps them relayed. A
crash between the two steps sends the batch again: the database broker stores each message id
once, and on Kafka the duplicate carries the same message id, which delivery recognises.
While the broker is unreachable the rows simply wait in the outbox; nothing is dropped.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import delete, select, update
from sqlalchemy.engine import Engine

from messaging.broker import Broker, Outgoing
from messaging.entries import TopicEntry
from messaging.errors import BrokerUnavailable
from messaging.leases import Leases
from messaging.models import Message
from messaging.threads import Threads
from registry.types import as_utc, utcnow

log = logging.getLogger(__name__)

LEASE = "relay"
IDLE_POLL_SECONDS = 0.25  # another replica's publishes are seen within this
RETENTION_EVERY_SECONDS = 60.0
MAX_BACKOFF_SECONDS = 2.0


class Relay:
    def __init__(
        self,
        engine: Engine,
        broker: Broker,
        leases: Leases,
        topics: Callable[[], dict[str, TopicEntry]],
        *,
        on_appended: Callable[[], None] = lambda: None,
        threads: Threads,
        batch: int = 500,
    ) -> None:
        self.engine = engine
        self.broker = broker
        self.leases = leases
        self.topics = topics
        self.batch = batch
        self.threads = threads
        self.on_appended = on_appended
        self._wake = asyncio.Event()
        self._ensured: set[str] = set()
        self._task: asyncio.Task[None] | None = None
        self.relayed = 0  # observability and tests
        self.failures = 0

    def wake(self) -> None:
        """A message was just accepted here: relay it without waiting for the next poll."""
        self._wake.set()

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="outbox-relay")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        with contextlib.suppress(Exception):
            await self.threads.run(self.leases.release, LEASE)

    async def _run(self) -> None:
        backoff = 0.05
        renewed = 0.0
        retained = time.monotonic()
        while True:
            try:
                if time.monotonic() - renewed > self.leases.seconds / 3:
                    if not await self.threads.run(self.leases.acquire, LEASE):
                        await asyncio.sleep(self.leases.seconds / 3)
                        continue
                    renewed = time.monotonic()
                moved = await self.relay_once()
                backoff = 0.05
                if time.monotonic() - retained > RETENTION_EVERY_SECONDS:
                    retained = time.monotonic()
                    await self.threads.run(self.retain)
                if moved == 0:
                    self._wake.clear()
                    # asyncio.timeout, not wait_for: on 3.11 wait_for swallows a cancellation
                    # that arrives as the wake-up completes, and stop() would wait forever.
                    with contextlib.suppress(TimeoutError):
                        async with asyncio.timeout(IDLE_POLL_SECONDS):
                            await self._wake.wait()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the broker or the database is away: wait, then retry
                self.failures += 1
                self._ensured.clear()  # a fresh broker may have lost its topics
                log.warning("relay: %s: %s (retrying in %.2f s)", type(exc).__name__, exc, backoff)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, MAX_BACKOFF_SECONDS)

    async def relay_once(self) -> int:
        """Hand one batch to the broker; how many messages were relayed."""
        rows = await self.threads.run(self._pending)
        if not rows:
            return 0
        outgoing = [self._outgoing(row) for row in rows]
        await self.threads.run(self._produce, outgoing)
        self.on_appended()
        await self.threads.run(self._mark, [row.seq for row in rows])
        self.relayed += len(rows)
        return len(rows)

    def _pending(self) -> list[Any]:
        table = Message.__table__  # type: ignore[attr-defined]
        with self.engine.connect() as connection:
            return list(
                connection.execute(
                    select(table)
                    .where(table.c.relayed_at.is_(None))
                    .order_by(table.c.seq)
                    .limit(self.batch)
                )
            )

    @staticmethod
    def _outgoing(row: Any) -> Outgoing:
        created = as_utc(row.created_at)
        assert created is not None
        return Outgoing(
            topic=row.topic,
            partition=row.partition,
            key=row.key,
            value=row.value.encode(),
            message_id=row.id,
            timestamp_ms=int(created.timestamp() * 1000),
            headers={"lgsp-producer": row.producer},
        )

    def _produce(self, outgoing: list[Outgoing]) -> None:
        topics = self.topics()
        for name in {o.topic for o in outgoing} - self._ensured:
            entry = topics.get(name)
            partitions = entry.partitions if entry else max(o.partition for o in outgoing) + 1
            retention_ms = (entry.retention_hours if entry else 168) * 3_600_000
            self.broker.ensure_topic(name, partitions, retention_ms)
            self._ensured.add(name)
        try:
            self.broker.produce(outgoing)
        except BrokerUnavailable:
            raise
        except Exception as exc:  # any client failure counts as the broker being away
            raise BrokerUnavailable(str(exc)) from exc

    def retain(self) -> None:
        """Forget what is older than each topic's retention: relayed messages (and with them
        their idempotency keys) and, on the database broker, its log entries. Kafka applies
        the topic's retention.ms itself."""
        table = Message.__table__  # type: ignore[attr-defined]
        now_ms = int(time.time() * 1000)
        trim = getattr(self.broker, "trim", None)
        for name, topic in self.topics().items():
            before_ms = now_ms - topic.retention_hours * 3_600_000
            if trim is not None:
                trim(name, before_ms)
            with self.engine.begin() as connection:
                connection.execute(
                    delete(table)
                    .where(table.c.topic == name)
                    .where(table.c.relayed_at.is_not(None))
                    .where(table.c.created_at < datetime.fromtimestamp(before_ms / 1000, UTC))
                )

    def _mark(self, seqs: list[int]) -> None:
        table = Message.__table__  # type: ignore[attr-defined]
        now = utcnow()
        with self.engine.begin() as connection:
            connection.execute(update(table).where(table.c.seq.in_(seqs)).values(relayed_at=now))
