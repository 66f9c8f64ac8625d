"""Push delivery: each active push subscription's messages, POSTed in order per key, retried,
dead-lettered when the retries run out, every attempt recorded.

One worker per subscription, in one replica at a time (a lease). Per partition it reads ahead
from the stored position, queues the messages by key, and drains each key's queue one message at
a time: a failing key waits with its later messages behind it while other keys flow. The stored
position is the oldest message not yet finished (delivered or dead-lettered), saved every 200 ms;
after a crash or a takeover delivery resumes there, so a message may be pushed twice, always with
the same `webhook-id`, never lost.

A broker failure restarts the worker from the stored positions: a transient one after a second,
a terminal one (the topic misconfigured on the broker, messaging/errors.py) sets the subscription
aside (messaging/set_aside.py: recorded, logged, shown in /readyz) and is tried again with
backoff up to a minute, and at once when the registry changes.

Outcomes of one attempt: 2xx delivered; 410 Gone disables the subscription (the message stays
undelivered, and resuming the subscription delivers it); connection failures, timeouts, 408, 429
and 5xx are retried on the subscription's schedule (with jitter, and never sooner than a
Retry-After asks); other 4xx answers are final and dead-letter the message at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any, Protocol

import orjson
from sqlalchemy import insert, select, update
from sqlalchemy.engine import Engine

from audit.records import Record, RecordKind
from messaging import positions, webhooks
from messaging.broker import Broker, Received
from messaging.entries import SubscriptionEntry, TopicEntry
from messaging.errors import Terminal, terminal_cause
from messaging.leases import Leases
from messaging.models import DeadLetter, DeadLetterState, SetAsideKind
from messaging.set_aside import RETRY_FIRST_SECONDS, RETRY_MAX_SECONDS, SetAsideBook
from messaging.threads import Threads
from registry.models import RetrySchedule
from registry.types import Delivery, SubscriptionStatus, utcnow

log = logging.getLogger(__name__)

SAVE_EVERY_SECONDS = 0.2
IDLE_POLL_SECONDS = 0.25  # messages relayed by another replica are seen within this
LOG_CHECK_SECONDS = 2.0  # an idle partition compares its position with the log's end this often
REQUEUE_POLL_SECONDS = 1.0
MAX_RETRY_AFTER_SECONDS = 3600.0
RECENT_IDS = 100_000  # delivered ids remembered to skip a re-sent duplicate from the broker


@dataclass(slots=True)
class PushResult:
    status: int | None  # None: no HTTP answer (connection failure, timeout)
    error: str | None = None
    retry_after: float | None = None
    latency_us: int = 0
    timed_out: bool = False  # no whole answer within the attempt deadline (retry.timeout)


class Pusher(Protocol):
    async def push(
        self, entry: SubscriptionEntry, body: bytes, headers: dict[str, str]
    ) -> PushResult: ...


RecordSink = Callable[[Record], Awaitable[None]]
GoneHandler = Callable[[str, str], Awaitable[None]]


class Verdict(StrEnum):
    DELIVERED = "delivered"
    RETRY = "retry"
    REFUSED = "refused"  # a final 4xx: dead-lettered at once
    GONE = "gone"  # 410: the subscription is disabled


def judge(result: PushResult) -> Verdict:
    status = result.status
    if status is None or status in (408, 429) or status >= 500:
        return Verdict.RETRY
    if 200 <= status < 300:
        return Verdict.DELIVERED
    if status == 410:
        return Verdict.GONE
    return Verdict.REFUSED


def delay_before(
    schedule: RetrySchedule, attempt: int, retry_after: float | None, rng: random.Random
) -> float:
    """Seconds to wait after failed attempt number `attempt` (1-based)."""
    base = schedule.delays[min(attempt - 1, len(schedule.delays) - 1)]
    spread = base * schedule.jitter
    delay = max(0.0, base + rng.uniform(-spread, spread))
    if retry_after is not None:
        delay = max(delay, min(retry_after, MAX_RETRY_AFTER_SECONDS))
    return delay


def describe(result: PushResult) -> str:
    if result.status is None:
        return result.error or "no answer"
    return f"HTTP {result.status}" + (f": {result.error}" if result.error else "")


@dataclass(slots=True)
class Attempts:
    """How the attempts at one message ended."""

    verdict: Verdict
    attempts: int
    first_error: str | None
    last_error: str | None
    first_at: datetime
    last_at: datetime
    reason: str = ""


class LogReplaced(Exception):
    """The broker lost the topic's log and started a new one: the worker starts over."""


class Track:
    """One partition of a subscription: what was read ahead and what is finished."""

    def __init__(self, partition: int, offset: int) -> None:
        self.partition = partition
        self.next_fetch = offset
        self.pending: deque[int] = deque()
        self.finished: set[int] = set()
        self.saved = offset
        self.room = asyncio.Event()
        self.checked = time.monotonic()  # when the log's end was last compared with next_fetch
        self.last_id: str | None = None  # the message at next_fetch - 1, as read

    def finish(self, offset: int) -> None:
        self.finished.add(offset)
        self.room.set()

    def position(self) -> int:
        while self.pending and self.pending[0] in self.finished:
            self.finished.discard(self.pending.popleft())
        return self.pending[0] if self.pending else self.next_fetch


class LeaseLost(Exception):
    pass


class DeliveryManager:
    """Runs a worker for every active push subscription of the current snapshot."""

    def __init__(
        self,
        *,
        engine: Engine,
        broker: Broker,
        leases: Leases,
        pusher: Pusher,
        record: RecordSink,
        on_gone: GoneHandler,
        subscriptions: Callable[[], dict[str, SubscriptionEntry]],
        topics: Callable[[], dict[str, TopicEntry]],
        threads: Threads,
        in_flight: int = 64,
        window: int = 2000,
        retry_seconds: tuple[float, float] = (RETRY_FIRST_SECONDS, RETRY_MAX_SECONDS),
    ) -> None:
        self.engine = engine
        self.broker = broker
        self.leases = leases
        self.pusher = pusher
        self.record = record
        self.on_gone = on_gone
        self.subscriptions = subscriptions
        self.topics = topics
        self.threads = threads
        self.in_flight = in_flight
        self.window = window
        self.workers: dict[str, Worker] = {}
        self.set_aside = SetAsideBook(
            engine,
            SetAsideKind.SUBSCRIPTION,
            first_seconds=retry_seconds[0],
            max_seconds=retry_seconds[1],
        )
        self._appended = asyncio.Event()
        self.rng = random.Random()
        self.delivered = 0  # observability and tests
        self.dead_lettered = 0
        # How many times each topic's log was replaced (a broker that lost it): set from the
        # broker's thread before any record reaches the new log, read by the workers.
        self._log_epochs: dict[str, int] = {}
        self._epochs_lock = threading.Lock()

    def log_replaced(self, topic: str) -> None:
        """The broker created `topic` again and its subscriptions' stored positions were
        reset: a worker still reading at its old positions must not push what it reads next
        (the new log's offsets mean other messages). Called before any record is sent there."""
        with self._epochs_lock:
            self._log_epochs[topic] = self._log_epochs.get(topic, 0) + 1

    def log_epoch(self, topic: str) -> int:
        with self._epochs_lock:
            return self._log_epochs.get(topic, 0)

    def appended(self) -> None:
        """The relay of this process handed messages to the broker: readers look at once."""
        event, self._appended = self._appended, asyncio.Event()
        event.set()

    def signal(self) -> asyncio.Event:
        """Set at the next append in this process: taken before looking, so none is missed."""
        return self._appended

    async def sync(self) -> None:
        """Start, stop or restart workers to match the current subscriptions."""
        wanted = {
            name: entry
            for name, entry in self.subscriptions().items()
            if entry.delivery is Delivery.PUSH and entry.status is SubscriptionStatus.ACTIVE
        }
        for name, worker in list(self.workers.items()):
            entry = wanted.get(name)
            if (
                entry is None
                or entry.generation != worker.generation
                or entry.topic != worker.topic
            ):
                del self.workers[name]
                await worker.stop()
        for name, entry in wanted.items():
            if name not in self.workers:
                self.workers[name] = Worker(self, entry)
        self.set_aside.registry_changed()  # a subscription set aside is tried again now
        try:  # nobody delivers a deleted or paused subscription: nothing waits on it
            await self.threads.run(self.set_aside.forget, set(wanted))
        except Exception as exc:
            log.warning("delivery: set-aside subscriptions not cleared: %s", exc)

    async def stop(self) -> None:
        workers, self.workers = list(self.workers.values()), {}
        await asyncio.gather(*(w.stop() for w in workers), return_exceptions=True)


class Worker:
    def __init__(self, manager: DeliveryManager, entry: SubscriptionEntry) -> None:
        self.m = manager
        self.name = entry.name
        self.topic = entry.topic
        self.generation = entry.generation
        self.epoch = 0  # the topic's log epoch its positions were loaded in
        self.lease = f"deliver:{entry.name}"
        self.tracks: list[Track] = []
        self.recent: OrderedDict[str, None] = OrderedDict()
        self.gate = asyncio.Semaphore(manager.in_flight)
        self.redelivering: set[int] = set()
        self.task = asyncio.create_task(self._run(), name=f"deliver-{entry.name}")

    def entry(self) -> SubscriptionEntry | None:
        return self.m.subscriptions().get(self.name)

    async def stop(self) -> None:
        self.task.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await self.task

    # ------------------------------------------------------------ lifecycle

    async def _run(self) -> None:
        while True:
            try:
                if not await self.m.threads.run(self.m.leases.acquire, self.lease):
                    await asyncio.sleep(self.m.leases.seconds / 3)
                    continue
                await self._deliver_while_leased()
            except asyncio.CancelledError:
                await self._save(final=True)
                with contextlib.suppress(Exception):
                    await self.m.threads.run(self.m.leases.release, self.lease)
                raise
            except Exception as exc:
                await self._save(final=True)
                terminal = terminal_cause(exc)
                if terminal is not None:
                    await self._set_aside(terminal)
                    continue
                log.warning("delivery %s restarts: %s: %s", self.name, type(exc).__name__, exc)
                await asyncio.sleep(1.0)

    async def _set_aside(self, error: Terminal) -> None:
        """A retry will not help until the topic is fixed: say so (once), then wait, longer
        each time up to a minute, or until the registry changes (an operator's fix)."""
        book = self.m.set_aside
        tried = book.changes
        try:
            await self.m.threads.run(book.fail, self.name, error, tried=tried)
        except Exception as exc:  # the database is away too: the log says it
            log.error("delivery %s set aside (%s), not recorded: %s", self.name, error, exc)
        await book.until_due(self.name, tried=tried)

    async def _deliver_while_leased(self) -> None:
        entry = self.entry()
        if entry is None:
            await asyncio.Event().wait()  # the manager stops this worker on its next sync
            return
        topic = self.m.topics().get(entry.topic)
        retention_ms = (topic.retention_hours if topic else 168) * 3_600_000
        await self.m.threads.run(
            self.m.broker.ensure_topic, entry.topic, entry.partitions, retention_ms
        )
        self.epoch = self.m.log_epoch(entry.topic)  # before the positions it goes with
        start = await self.m.threads.run(positions.starting, self.m.engine, self.m.broker, entry)
        await self.m.threads.run(self.m.set_aside.resume, self.name)  # if it was set aside
        await self.m.threads.run(self._unclaim_all)
        self.tracks = [Track(p, start[p]) for p in range(entry.partitions)]
        self.recent.clear()
        try:
            async with asyncio.TaskGroup() as group:
                for track in self.tracks:
                    group.create_task(self._pump(group, track))
                group.create_task(self._keep(group))
                group.create_task(self._redeliver(group))
        except* LeaseLost:
            log.warning("delivery %s lost its lease; another replica delivers now", self.name)

    async def _keep(self, group: asyncio.TaskGroup) -> None:
        """Renew the lease and save positions, until the lease is lost."""
        renewed = time.monotonic()
        while True:
            await asyncio.sleep(SAVE_EVERY_SECONDS)
            await self._save()
            if time.monotonic() - renewed > self.m.leases.seconds / 3:
                if not await self.m.threads.run(self.m.leases.acquire, self.lease):
                    raise LeaseLost
                renewed = time.monotonic()

    async def _save(self, *, final: bool = False) -> None:
        moved = {}
        for track in self.tracks:
            at = track.position()
            if at != track.saved:
                moved[track.partition] = at
        if not moved:
            return
        try:
            await self.m.threads.run(
                positions.save, self.m.engine, self.name, moved, generation=self.generation
            )
        except Exception as exc:
            if not final:
                raise
            log.warning("delivery %s could not save its positions: %s", self.name, exc)
            return
        for track in self.tracks:
            if track.partition in moved:
                track.saved = moved[track.partition]

    # ------------------------------------------------------------ reading ahead

    async def _pump(self, group: asyncio.TaskGroup, track: Track) -> None:
        queues: dict[str, deque[Received]] = {}
        while True:
            room = self.m.window - len(track.pending)
            if room <= 0:
                track.room.clear()
                track.position()  # drops finished offsets from the front
                if self.m.window - len(track.pending) <= 0:
                    await track.room.wait()
                continue
            signal = self.m.signal()
            # Read from the last message already read, when there is one: finding it again
            # proves the log is the one read so far. A broker replaced without its data (the
            # test broker keeps its log in memory) starts its offsets again: the new log is
            # then read from its start, and what the relay re-sends is skipped by message id.
            start = track.next_fetch - 1 if track.last_id is not None else track.next_fetch
            batch = await self.m.threads.run(
                self.m.broker.fetch,
                self.topic,
                track.partition,
                start,
                max_records=min(room, 500),
                wait_seconds=0,
            )
            if batch and self.m.log_epoch(self.topic) != self.epoch:
                # The log was replaced since these positions were loaded: start again from
                # the stored ones (reset to the new log's start), pushing nothing read here.
                raise LogReplaced(f"the log of {self.topic} was replaced")
            if track.last_id is not None:
                if batch and batch[0].offset == start and batch[0].message_id == track.last_id:
                    batch = batch[1:]
                elif not track.pending:
                    self._restart_log(
                        track, f"offset {start} no longer holds message {track.last_id}"
                    )
                    continue
                else:
                    batch = []  # finish what is in hand first, then start over
            if not batch:
                if time.monotonic() - track.checked > LOG_CHECK_SECONDS:
                    await self._check_log(track)
                # Wait in the event loop, not in a thread: for this process's relay, or a while
                # (for messages another replica's relay appended).
                with contextlib.suppress(TimeoutError):  # not wait_for: see relay.py
                    async with asyncio.timeout(IDLE_POLL_SECONDS):
                        await signal.wait()
                continue
            entry = self.entry()
            for message in batch:
                if message.offset < track.next_fetch:
                    continue
                track.next_fetch = message.offset + 1
                track.last_id = message.message_id
                track.pending.append(message.offset)
                if message.message_id in self.recent or (
                    entry is not None
                    and entry.filter is not None
                    and not entry.accepts(orjson.loads(message.value))
                ):
                    track.finish(message.offset)
                    continue
                key = message.key if message.key is not None else f"\x00{message.offset}"
                queue = queues.get(key)
                if queue is None:
                    queues[key] = deque([message])
                    group.create_task(self._drain(track, key, queues))
                else:
                    queue.append(message)

    async def _check_log(self, track: Track) -> None:
        """A partition whose log ends before our position was emptied (a broker replaced
        without its data): what it holds now is newer than anything delivered, so read it
        from the start. Whatever the relay re-sends is skipped by its message id."""
        track.checked = time.monotonic()
        end = await self.m.threads.run(self.m.broker.end_offset, self.topic, track.partition)
        if end < track.next_fetch and not track.pending:
            self._restart_log(track, f"the log ends at {end}, before position {track.next_fetch}")

    def _restart_log(self, track: Track, why: str) -> None:
        log.warning(
            "delivery %s: partition %d of %s was replaced (%s): reading it from its start",
            self.name, track.partition, self.topic, why,
        )  # fmt: skip
        track.next_fetch = 0
        track.last_id = None

    async def _drain(self, track: Track, key: str, queues: dict[str, deque[Received]]) -> None:
        queue = queues[key]
        while queue:
            message = queue[0]
            done = await self._attempt_all(message, redelivery=False)
            if done.verdict is not Verdict.DELIVERED:
                await self.m.threads.run(self._dead_letter, message, done)
                self.m.dead_lettered += 1
            self._remember(message.message_id)
            queue.popleft()
            track.finish(message.offset)
        del queues[key]

    def _remember(self, message_id: str) -> None:
        self.recent[message_id] = None
        if len(self.recent) > RECENT_IDS:
            self.recent.popitem(last=False)

    # ------------------------------------------------------------ attempts

    async def _attempt_all(self, message: Received, *, redelivery: bool) -> Attempts:
        """Push until delivered, refused, or out of attempts (the subscription's schedule)."""
        first_at = utcnow()
        first_error: str | None = None
        attempt = 0
        while True:
            entry = self.entry()
            if entry is None or entry.status is not SubscriptionStatus.ACTIVE:
                await asyncio.Event().wait()  # stopped by the manager's next sync
            assert entry is not None
            attempt += 1
            result = await self._push(entry, message, attempt)
            verdict = judge(result)
            await self._record(entry, message, attempt, result, verdict, redelivery)
            now = utcnow()
            if verdict is Verdict.DELIVERED:
                self.m.delivered += 1
                return Attempts(verdict, attempt, first_error, None, first_at, now)
            error = describe(result)
            first_error = first_error or error
            if verdict is Verdict.GONE:
                await self.m.on_gone(self.name, f"the receiver answered 410 Gone ({error})")
                await asyncio.Event().wait()  # the subscription is disabled: this worker stops
            if verdict is Verdict.REFUSED:
                return Attempts(
                    verdict, attempt, first_error, error, first_at, now,
                    f"the receiver refused the message: {error}",
                )  # fmt: skip
            schedule = entry.retry
            if attempt >= schedule.max_attempts:
                return Attempts(
                    verdict, attempt, first_error, error, first_at, now,
                    f"gave up after {attempt} attempts",
                )  # fmt: skip
            delay = delay_before(schedule, attempt, result.retry_after, self.m.rng)
            if (now - first_at).total_seconds() + delay > schedule.max_age_seconds:
                return Attempts(
                    verdict, attempt, first_error, error, first_at, now,
                    f"gave up after {attempt} attempts: the next would come after the "
                    f"maximum age of {schedule.max_age_seconds:g} s",
                )  # fmt: skip
            await asyncio.sleep(delay)

    async def _push(self, entry: SubscriptionEntry, message: Received, attempt: int) -> PushResult:
        headers = {
            "content-type": "application/json",
            **webhooks.headers(entry.secrets, message.message_id, int(time.time()), message.value),
            "x-lgsp-topic": entry.topic,
            "x-lgsp-subscription": entry.name,
            "x-lgsp-attempt": str(attempt),
            **entry.connector_headers,
        }
        async with self.gate:
            return await self.m.pusher.push(entry, message.value, headers)

    async def _record(
        self,
        entry: SubscriptionEntry,
        message: Received,
        attempt: int,
        result: PushResult,
        verdict: Verdict,
        redelivery: bool,
    ) -> None:
        status = result.status
        record = Record(
            kind=RecordKind.DELIVERY,
            consumer=entry.consumer,
            topic=entry.topic,
            subscription=entry.name,
            message_id=message.message_id,
            attempts=attempt,
            provider_status=status,
            # The hub's view: the receiver's status, or 504/502 when none came back.
            hub_status=status if status is not None else (504 if result.timed_out else 502),
            latency_us=result.latency_us,
            request_size=len(message.value),
            error=None if verdict is Verdict.DELIVERED else describe(result)[:1000],
            details={
                "partition": message.partition,
                "offset": message.offset,
                "outcome": verdict.value,
                "redelivery": redelivery,
            },
        )
        try:
            await self.m.record(record)
        except Exception as exc:  # the attempt happened; say loudly that it is not recorded
            log.error("delivery %s: attempt record not committed: %s", self.name, exc)

    # ------------------------------------------------------------ dead letters

    def _dead_letter(self, message: Received, done: Attempts) -> None:
        table = DeadLetter.__table__  # type: ignore[attr-defined]
        values = {
            "topic": message.topic,
            "partition": message.partition,
            "offset": message.offset,
            "key": message.key,
            "value": message.value.decode(),
            "headers": message.headers,
            "reason": done.reason[:1000],
            "attempts": done.attempts,
            "first_error": (done.first_error or "")[:1000] or None,
            "last_error": (done.last_error or "")[:1000] or None,
            "first_attempt_at": done.first_at,
            "last_attempt_at": done.last_at,
            "state": DeadLetterState.DEAD.value,
        }
        with self.m.engine.begin() as connection:
            moved = connection.execute(
                update(table)
                .where(table.c.subscription == self.name)
                .where(table.c.message_id == message.message_id)
                .values(**values)
            )
            if moved.rowcount == 0:
                connection.execute(
                    insert(table).values(
                        subscription=self.name,
                        message_id=message.message_id,
                        created_at=utcnow(),
                        redeliveries=0,
                        **values,
                    )
                )

    async def _redeliver(self, group: asyncio.TaskGroup) -> None:
        """Dead letters an operator requeued: pushed again (out of their key's order)."""
        while True:
            rows = await self.m.threads.run(self._requeued)
            for row in rows:
                if row.id not in self.redelivering:
                    self.redelivering.add(row.id)
                    group.create_task(self._redeliver_one(row))
            await asyncio.sleep(REQUEUE_POLL_SECONDS)

    def _requeued(self) -> list[Any]:
        table = DeadLetter.__table__  # type: ignore[attr-defined]
        with self.m.engine.connect() as connection:
            return list(
                connection.execute(
                    select(table)
                    .where(table.c.subscription == self.name)
                    .where(table.c.state == DeadLetterState.REQUEUED.value)
                    .order_by(table.c.id)
                    .limit(100)
                )
            )

    async def _redeliver_one(self, row: Any) -> None:
        message = Received(
            topic=row.topic,
            partition=row.partition,
            offset=row.offset,
            key=row.key,
            value=row.value.encode(),
            message_id=row.message_id,
            timestamp_ms=0,
            headers=dict(row.headers or {}),
        )
        try:
            if not await self.m.threads.run(self._claim, row):
                return  # read before another redelivery settled it: not ours any more
            done = await self._attempt_all(message, redelivery=True)
            await self.m.threads.run(self._settle, row, done)
        finally:
            self.redelivering.discard(row.id)

    def _claim(self, row: Any) -> bool:
        """Take a requeued dead letter for redelivery (compare-and-set on its state)."""
        table = DeadLetter.__table__  # type: ignore[attr-defined]
        with self.m.engine.begin() as connection:
            claimed = connection.execute(
                update(table)
                .where(table.c.id == row.id)
                .where(table.c.state == DeadLetterState.REQUEUED.value)
                .values(state=DeadLetterState.REDELIVERING.value)
            )
            return bool(claimed.rowcount == 1)

    def _unclaim_all(self) -> None:
        """Redeliveries a stopped worker left unfinished are requeued."""
        table = DeadLetter.__table__  # type: ignore[attr-defined]
        with self.m.engine.begin() as connection:
            connection.execute(
                update(table)
                .where(table.c.subscription == self.name)
                .where(table.c.state == DeadLetterState.REDELIVERING.value)
                .values(state=DeadLetterState.REQUEUED.value)
            )

    def _settle(self, row: Any, done: Attempts) -> None:
        table = DeadLetter.__table__  # type: ignore[attr-defined]
        if done.verdict is Verdict.DELIVERED:
            values: dict[str, Any] = {
                "state": DeadLetterState.REDELIVERED.value,
                "redelivered_at": utcnow(),
            }
        else:
            values = {
                "state": DeadLetterState.DEAD.value,
                "attempts": row.attempts + done.attempts,
                "last_error": (done.last_error or "")[:1000] or None,
                "last_attempt_at": done.last_at,
                "reason": done.reason[:1000],
            }
        with self.m.engine.begin() as connection:
            connection.execute(update(table).where(table.c.id == row.id).values(**values))
