"""The relay: moves accepted messages from the outbox to the broker, oldest first.

One relay runs at a time across replicas (a lease). It reads a batch of unrelayed rows in `seq`
order, hands them to the broker (which acknowledges with acks=all), then stamps them relayed. A
crash between the two steps sends the batch again: the database broker stores each message id
once, and on Kafka the duplicate carries the same message id, which delivery recognises.

What a failure does depends on its marker (messaging/errors.py):
- Transient (the broker or the database away or slow): the batch stays in the outbox and is
  tried again after a backoff (up to 2 s); `failures` counts these. Nothing is dropped.
- Terminal, for one topic (misconfigured on the broker, refused, a message too large): that
  topic is set aside (messaging/set_aside.py). Its rows stay in the outbox, unrelayed and in
  order, while the other topics' rows flow: their oldest seqs are then read per topic from the
  outbox's (topic, seq) index alone, and only the rows chosen are read whole, so the waiting
  rows, however many, are never stepped over. The topic is
  tried again with backoff (5 s doubling to a minute) and at once when the registry changes;
  once the broker takes its oldest messages it is resumed, so order per key holds. A terminal
  error naming no topic of the batch is attributed by sending each topic's messages alone.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import logging
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any, TypeVar

from sqlalchemy import Connection, delete, func, select, text, union_all, update
from sqlalchemy.engine import Engine
from sqlalchemy.exc import SQLAlchemyError

from messaging.broker import Broker, Outgoing
from messaging.database_broker import translate
from messaging.entries import TopicEntry
from messaging.errors import Terminal, Transient
from messaging.leases import Leases
from messaging.models import Message, SetAsideKind
from messaging.set_aside import RETRY_FIRST_SECONDS, RETRY_MAX_SECONDS, SetAsideBook
from messaging.threads import Threads
from registry.types import as_utc, utcnow

log = logging.getLogger(__name__)
T = TypeVar("T")

LEASE = "relay"
IDLE_POLL_SECONDS = 0.25  # another replica's publishes are seen within this
RETENTION_EVERY_SECONDS = 60.0
MAX_BACKOFF_SECONDS = 2.0
TOPICS_PER_QUERY = 50  # per-topic reads joined in one statement, while topics are set aside

_TABLE = Message.__table__  # type: ignore[attr-defined]
_UNRELAYED = _TABLE.c.relayed_at.is_(None)
# The topics with unrelayed rows: one probe of the (topic, seq) index per topic, whatever the
# number of rows (a skip scan, written out for SQLite and PostgreSQL alike).
_PENDING_TOPICS = text(
    """
    WITH RECURSIVE pending(topic) AS (
        SELECT min(topic) FROM message WHERE relayed_at IS NULL
        UNION ALL
        SELECT (SELECT min(m.topic) FROM message m
                WHERE m.relayed_at IS NULL AND m.topic > pending.topic)
        FROM pending WHERE pending.topic IS NOT NULL
    )
    SELECT topic FROM pending WHERE topic IS NOT NULL
    """
)


class Relay:
    def __init__(
        self,
        engine: Engine,
        broker: Broker,
        leases: Leases,
        topics: Callable[[], dict[str, TopicEntry]],
        *,
        revision: Callable[[], int] = lambda: 0,
        on_appended: Callable[[], None] = lambda: None,
        threads: Threads,
        batch: int = 500,
        retry_seconds: tuple[float, float] = (RETRY_FIRST_SECONDS, RETRY_MAX_SECONDS),
    ) -> None:
        self.engine = engine
        self.broker = broker
        self.leases = leases
        self.topics = topics
        self.revision = revision  # the registry's: a change tries the set-aside topics again
        self._revision: int | None = None  # the last one seen
        self.batch = batch
        self.threads = threads
        self.on_appended = on_appended
        self.set_aside = SetAsideBook(
            engine, SetAsideKind.TOPIC, first_seconds=retry_seconds[0], max_seconds=retry_seconds[1]
        )
        self._wake = asyncio.Event()
        self._ensured: set[str] = set()
        self._task: asyncio.Task[None] | None = None
        self.leading = False  # this process holds the relay's lease
        self.relayed = 0  # observability and tests
        self.failures = 0  # transient failures, each followed by a backoff and a retry
        self.last_failure: str | None = None  # its class (the sentence, with hosts, is logged)
        self.failing_since: datetime | None = None  # failing now: since the first failure

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
        self.leading = False
        with contextlib.suppress(Exception):
            await self.threads.run(self.leases.release, LEASE)

    async def _run(self) -> None:
        backoff = 0.05
        renewed = 0.0
        retained = time.monotonic()
        while True:
            try:
                if time.monotonic() - renewed > self.leases.seconds / 3:
                    if not await self._query(
                        "the relay's lease could not be taken", self.leases.acquire, LEASE
                    ):
                        self.leading = False
                        # Another replica relays: nothing fails here now, whatever did before.
                        self.failing_since = None
                        await asyncio.sleep(self.leases.seconds / 3)
                        continue
                    if not self.leading:  # started, or taken over: what was set aside before
                        await self._query(
                            "the set-aside topics could not be read", self.set_aside.load
                        )
                        self.leading = True
                    renewed = time.monotonic()
                moved = await self.relay_once()
                backoff = 0.05
                self.failing_since = None
                if time.monotonic() - retained > RETENTION_EVERY_SECONDS:
                    retained = time.monotonic()
                    await self._query("old messages could not be deleted", self.retain)
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
                self.last_failure = type(exc).__name__
                self.failing_since = self.failing_since or utcnow()
                self._ensured.clear()  # a fresh broker may have lost its topics
                if not isinstance(exc, Transient):  # not a broker's or database's: a bug?
                    log.error("relay: unexpected failure (retrying)", exc_info=exc)
                log.warning("relay: %s: %s (retrying in %.2f s)", type(exc).__name__, exc, backoff)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, MAX_BACKOFF_SECONDS)

    async def relay_once(self) -> int:
        """Hand one batch to the broker; how many messages it settled (relayed, or waiting
        with their topic set aside)."""
        revision = self.revision()
        if revision != self._revision:
            self._revision = revision
            self.set_aside.registry_changed()
        tried = self.set_aside.changes
        waiting = self.set_aside.waiting()
        on_trial = set(self.set_aside.held) - waiting  # set aside, and due for a try now
        rows = await self._query("the outbox could not be read", self._pending, waiting)
        outgoing = [self._outgoing(row) for row in rows]
        sent, refused = await self.threads.run(self._produce, outgoing) if rows else (set(), {})
        if sent:
            self.on_appended()
            seqs = [row.seq for row in rows if row.topic in sent]
            await self._query("relayed messages could not be marked", self._mark, seqs)
            self.relayed += len(seqs)
        for topic, error in refused.items():
            self._ensured.discard(topic)  # its retry checks the topic with the broker again
            count = await self._query("the outbox could not be counted", self._waiting, topic)
            await self._query(
                "a topic set aside could not be recorded",
                self.set_aside.fail,
                topic,
                error,
                tried=tried,
                waiting=count,
            )
        # A topic on trial is resumed once the broker took its oldest messages, or when none
        # wait (the batch was not full, so it held every topic's oldest).
        for topic in on_trial - set(refused):
            if topic in sent or len(rows) < self.batch:
                await self._query(
                    "a topic resumed could not be recorded", self.set_aside.resume, topic
                )
        return len(rows)

    async def _query(self, doing: str, call: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """One of the relay's own database calls, in a thread. Its failure is translated here,
        once, as the broker's are (messaging/errors.py): DatabaseUnavailable, transient, whose
        detail is the driver's first line (SQLAlchemy's text holds the statement's parameters)."""
        try:
            return await self.threads.run(call, *args, **kwargs)
        except SQLAlchemyError as error:
            raise translate(error, doing) from error

    def _pending(self, waiting: set[str]) -> list[Any]:
        """The oldest unrelayed rows, in `seq` order, leaving out the topics that wait."""
        with self.engine.connect() as connection:
            if not waiting:
                return list(
                    connection.execute(
                        select(_TABLE).where(_UNRELAYED).order_by(_TABLE.c.seq).limit(self.batch)
                    )
                )
            pending: list[str] = list(connection.execute(_PENDING_TOPICS).scalars())
            topics = [topic for topic in pending if topic not in waiting]
            seqs: list[int] = []
            for start in range(0, len(topics), TOPICS_PER_QUERY):
                oldest = self._oldest(connection, topics[start : start + TOPICS_PER_QUERY])
                seqs = heapq.nsmallest(self.batch, seqs + oldest)
            if not seqs:
                return []
            # Only the rows chosen are read whole (values included), by primary key.
            return list(
                connection.execute(
                    select(_TABLE).where(_TABLE.c.seq.in_(seqs)).order_by(_TABLE.c.seq)
                )
            )

    def _oldest(self, connection: Connection, topics: Sequence[str]) -> list[int]:
        """Each topic's oldest unrelayed seqs (up to a batch), each read from its range of the
        (topic, seq) index alone: the rows themselves are not read to be left out."""
        parts = [
            select(_TABLE.c.seq)
            .where(_TABLE.c.topic == topic, _UNRELAYED)
            .order_by(_TABLE.c.seq)
            .limit(self.batch)
            .subquery()
            for topic in topics
        ]
        query = union_all(*(select(part) for part in parts)) if len(parts) > 1 else select(parts[0])
        seqs: list[int] = list(connection.execute(query).scalars())
        return seqs

    def _waiting(self, topic: str) -> int:
        """How many of the topic's messages wait in the outbox (an index range, counted)."""
        with self.engine.connect() as connection:
            count = connection.execute(
                select(func.count()).select_from(_TABLE).where(_TABLE.c.topic == topic, _UNRELAYED)
            ).scalar_one()
        return int(count)

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

    def _produce(self, outgoing: list[Outgoing]) -> tuple[set[str], dict[str, Terminal]]:
        """Hand the messages to the broker: the topics it took all of, and those it refused
        for good (with why). A transient failure raises: the whole batch is tried again."""
        topics = self.topics()
        refused: dict[str, Terminal] = {}
        for name in sorted({o.topic for o in outgoing} - self._ensured):
            entry = topics.get(name)
            partitions = entry.partitions if entry else max(o.partition for o in outgoing) + 1
            retention_ms = (entry.retention_hours if entry else 168) * 3_600_000
            try:
                self.broker.ensure_topic(name, partitions, retention_ms)
            except Terminal as error:
                refused[name] = error
                continue
            self._ensured.add(name)
        pending = [o for o in outgoing if o.topic not in refused]
        while pending:
            try:
                self.broker.produce(pending)
                break
            except Terminal as error:
                batch_topics = {o.topic for o in pending}
                if error.topic in batch_topics or len(batch_topics) == 1:
                    culprit = error.topic if error.topic in batch_topics else batch_topics.pop()
                    refused[culprit] = error
                    pending = [o for o in pending if o.topic != culprit]  # the others again
                    continue
                # Not said whose: each topic's messages on their own.
                for name in sorted(batch_topics):
                    try:
                        self.broker.produce([o for o in pending if o.topic == name])
                    except Terminal as alone:
                        refused[name] = alone
                break
        return {o.topic for o in outgoing} - set(refused), refused

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
