"""Order per key under retries, as a property: push delivery (`DeliveryManager`) over a log kept
in memory, with a pusher whose answers follow a drawn failure pattern.

Hypothesis draws the messages (keys, some keyless), the partitions, how each message's first
attempts fail (500, 503 or 429 with Retry-After 0, timeouts, refused connections), which
messages fail forever (dead-lettered after the maximum), a Kafka-like re-send of part of the log
(the same ids again, later in their partitions), how many turns of the event loop each push
takes, and which messages are appended only while delivery runs. Whatever the draw, the
accounting of the fault tests holds: every message delivered or dead-lettered with its reason,
nothing else pushed, duplicates under the same webhook-id, and per key the first successful
pushes in publish order. Positions, leases and dead letters live in a real SQLite database.
"""

from __future__ import annotations

import asyncio
import io
import itertools
import shutil
import threading
import uuid
from collections import Counter, defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select
from sqlalchemy.engine import Engine

from audit.records import Record
from gateway.db import make_engine, migrate
from messaging.broker import Outgoing, Received, partition_for
from messaging.delivery import DeliveryManager, PushResult
from messaging.entries import SubscriptionEntry, TopicEntry
from messaging.leases import Leases, holder_name
from messaging.models import DeadLetter
from messaging.threads import Threads
from registry.models import RetrySchedule
from registry.types import Delivery, SubscriptionStatus
from tests.integration.messaging.hub_process import Push, check_zero_loss
from tests.wait import wait_until_async

TOPIC = "prop.events"
MAX_ATTEMPTS = 6  # more than the most failures drawn for a message that does get through
FAILURES = ("500", "503", "429", "timeout", "refused")
SETTLE_SECONDS = 20.0
STOP_SECONDS = 10.0


class MemoryBroker:
    """The Broker protocol over lists, one per partition (offsets are list indexes)."""

    name = "memory"

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._logs: dict[tuple[str, int], list[Received]] = defaultdict(list)

    def ensure_topic(self, topic: str, partitions: int, retention_ms: int) -> None:
        return None

    def produce(self, batch: Sequence[Outgoing]) -> None:
        with self._lock:
            for message in batch:
                log = self._logs[(message.topic, message.partition)]
                log.append(
                    Received(
                        topic=message.topic,
                        partition=message.partition,
                        offset=len(log),
                        key=message.key,
                        value=message.value,
                        message_id=message.message_id,
                        timestamp_ms=message.timestamp_ms,
                        headers=dict(message.headers),
                    )
                )

    def fetch(
        self, topic: str, partition: int, offset: int, *, max_records: int, wait_seconds: float
    ) -> list[Received]:
        with self._lock:
            return list(self._logs[(topic, partition)][offset : offset + max_records])

    def end_offset(self, topic: str, partition: int) -> int:
        with self._lock:
            return len(self._logs[(topic, partition)])

    def offset_for_time(self, topic: str, partition: int, timestamp_ms: int) -> int:
        with self._lock:
            log = self._logs[(topic, partition)]
            return next((r.offset for r in log if r.timestamp_ms >= timestamp_ms), len(log))

    def close(self) -> None:
        return None


class ScriptedPusher:
    """Answers each message's attempts as its script says, then 200 (or 500 forever)."""

    def __init__(
        self, script: dict[str, list[str]], forever: set[str], turns: dict[str, int]
    ) -> None:
        self.script, self.forever, self.turns = script, forever, turns
        self.calls: Counter[str] = Counter()
        self.pushes: list[Push] = []

    async def push(
        self, entry: SubscriptionEntry, body: bytes, headers: dict[str, str]
    ) -> PushResult:
        message_id = headers["webhook-id"]
        attempt = self.calls[message_id]
        self.calls[message_id] += 1
        for _ in range(self.turns[message_id]):
            await asyncio.sleep(0)  # other keys' pushes interleave here
        failures = self.script[message_id]
        if message_id in self.forever:
            answer = "500"
        elif attempt < len(failures):
            answer = failures[attempt]
        else:
            answer = "200"
        result = _result(answer)
        self.pushes.append(Push(message_id, body, result.status))
        return result


def _result(answer: str) -> PushResult:
    if answer == "timeout":
        return PushResult(status=None, error="the receiver did not answer in time", timed_out=True)
    if answer == "refused":
        return PushResult(status=None, error="could not connect to the receiver: refused")
    status = int(answer)
    retry_after = 0.0 if status in (429, 503) else None
    return PushResult(status=status, error=None if status < 300 else "no", retry_after=retry_after)


async def stop_within(manager: DeliveryManager, seconds: float) -> None:
    """Stop delivery, or fail saying which tasks go on running (a stop must not hang)."""
    stopping = asyncio.ensure_future(manager.stop())
    done, _ = await asyncio.wait({stopping}, timeout=seconds)
    if done:
        stopping.result()
        return
    stacks = io.StringIO()
    for task in asyncio.all_tasks():
        if task is not asyncio.current_task() and task is not stopping:
            task.print_stack(limit=3, file=stacks)
    raise AssertionError(
        f"DeliveryManager.stop() did not return within {seconds} s; still running:\n"
        + stacks.getvalue()
    )


@dataclass(frozen=True)
class Scenario:
    partitions: int
    keys: list[str | None]  # one per message, in publish order
    failures: list[list[str]]  # per message: how its first attempts fail
    forever: frozenset[int]  # messages answered 500 to every attempt
    turns: list[int]  # per message: event-loop turns each push of it takes
    early: int  # messages in the log before delivery starts; the rest come while it runs
    resent: int  # of the early ones, the last `resent` appended again (a producer's re-send)


@st.composite
def scenarios(draw: st.DrawFn) -> Scenario:
    count = draw(st.integers(1, 24))
    early = draw(st.integers(0, count))
    return Scenario(
        partitions=draw(st.integers(1, 3)),
        keys=draw(st.lists(st.sampled_from(["a", "b", "c", "d", None]), min_size=count,
                           max_size=count)),
        failures=draw(st.lists(st.lists(st.sampled_from(FAILURES), max_size=3), min_size=count,
                               max_size=count)),
        forever=frozenset(draw(st.sets(st.integers(0, count - 1), max_size=2))),
        turns=draw(st.lists(st.integers(0, 3), min_size=count, max_size=count)),
        early=early,
        resent=draw(st.integers(0, early)),
    )  # fmt: skip


@pytest.fixture(scope="module")
def databases(tmp_path_factory: pytest.TempPathFactory) -> Callable[[], Engine]:
    """A fresh migrated SQLite database per example, copied from one migrated once: nothing
    an example leaves behind (a lease, a thread still finishing) reaches the next."""
    folder = tmp_path_factory.mktemp("order")
    template = folder / "template.db"
    made = make_engine(f"sqlite:///{template}")
    migrate(made)
    with made.connect() as connection:
        connection.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
    made.dispose()
    count = itertools.count()

    def fresh() -> Engine:
        path = folder / f"example-{next(count)}.db"
        shutil.copyfile(template, path)
        return make_engine(f"sqlite:///{path}")

    return fresh


async def run(scenario: Scenario, engine: Engine) -> tuple[ScriptedPusher, dict[str, Any]]:
    """Deliver the scenario's messages until every log entry is finished; what was pushed and
    recorded."""
    ids = [f"m{i}-{uuid.uuid4().hex[:8]}" for i in range(len(scenario.keys))]
    outgoing = [
        Outgoing(
            topic=TOPIC,
            partition=(
                partition_for(key, scenario.partitions)
                if key is not None
                else i % scenario.partitions
            ),
            key=key,
            value=orjson.dumps({"k": key, "n": i}),
            message_id=ids[i],
            timestamp_ms=1_000 + i,
        )
        for i, key in enumerate(scenario.keys)
    ]
    broker = MemoryBroker()
    early = outgoing[: scenario.early]
    broker.produce(early)
    broker.produce(early[len(early) - scenario.resent :])  # the same ids, later in the log
    pusher = ScriptedPusher(
        script={ids[i]: f for i, f in enumerate(scenario.failures)},
        forever={ids[i] for i in scenario.forever},
        turns={ids[i]: t for i, t in enumerate(scenario.turns)},
    )
    records: list[Record] = []

    async def record(row: Record) -> None:
        records.append(row)

    async def gone(name: str, reason: str) -> None:
        raise AssertionError(f"no 410 is ever answered here: {reason}")

    entry = SubscriptionEntry(
        name=f"prop-{uuid.uuid4().hex[:12]}",
        topic=TOPIC,
        partitions=scenario.partitions,
        consumer="receiver-app",
        delivery=Delivery.PUSH,
        status=SubscriptionStatus.ACTIVE,
        generation=0,
        retry=RetrySchedule(delays=[0], jitter=0, max_attempts=MAX_ATTEMPTS),
        created_ms=0,
        url="http://receiver.invalid/hooks",
        secrets=(b"property-test-secret",),
    )
    threads = Threads(workers=8)
    topics: dict[str, TopicEntry] = {}
    manager = DeliveryManager(
        engine=engine,
        broker=broker,
        leases=Leases(engine, holder=holder_name(), seconds=30),
        pusher=pusher,
        record=record,
        on_gone=gone,
        subscriptions=lambda: {entry.name: entry},
        topics=lambda: topics,
        threads=threads,
        in_flight=4,
        window=8,  # a small read-ahead window: its limit is reached and released too
    )
    try:
        await manager.sync()
        await asyncio.sleep(0.01)
        broker.produce(outgoing[scenario.early :])
        manager.appended()
        worker = manager.workers[entry.name]

        async def finished() -> bool:
            assert not worker.task.done(), worker.task  # a worker that ended fails at once
            return len(worker.tracks) == scenario.partitions and all(
                track.position() == broker.end_offset(TOPIC, track.partition)
                for track in worker.tracks
            )

        await wait_until_async(
            finished, timeout=SETTLE_SECONDS, interval=0.01, what="delivery to finish the log"
        )
    finally:
        await stop_within(manager, STOP_SECONDS)
        await threads.idle(2)  # a call still running finishes on its own, in this example's db
        threads.close()
    with engine.connect() as connection:
        table = DeadLetter.__table__  # type: ignore[attr-defined]
        rows = connection.execute(select(table).where(table.c.subscription == entry.name))
        dead = {row.message_id: dict(row._mapping) for row in rows}
    accepted = {ids[i]: {"k": key, "n": i} for i, key in enumerate(scenario.keys)}
    order: dict[str, list[str]] = defaultdict(list)
    for i, key in enumerate(scenario.keys):
        order[key if key is not None else f"\x00{i}"].append(ids[i])
    expected_dead = {ids[i] for i in scenario.forever}
    return pusher, {
        "accepted": accepted,
        "order": order,
        "dead": dead,
        "expected_dead": expected_dead,
        "records": records,
    }


@settings(
    max_examples=60,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(scenario=scenarios())
def test_order_per_key_holds_under_retries(
    scenario: Scenario, databases: Callable[[], Engine]
) -> None:
    engine = databases()
    try:
        pusher, found = asyncio.run(run(scenario, engine))
    finally:
        engine.dispose()
    check_zero_loss(found["accepted"], pusher.pushes, order=found["order"], dead=found["dead"])
    assert set(found["dead"]) == found["expected_dead"]
    for letter in found["dead"].values():
        assert letter["attempts"] == MAX_ATTEMPTS and letter["state"] == "dead"
        assert letter["reason"] == f"gave up after {MAX_ATTEMPTS} attempts"
        assert letter["first_error"] == letter["last_error"] == "HTTP 500: no"
    # Every attempt has its record, with the hub's view of the outcome.
    recorded = Counter(row.message_id for row in found["records"])
    assert recorded == pusher.calls
    for row in found["records"]:
        assert row.hub_status in (200, 429, 500, 502, 503, 504)
        assert (row.error is None) == (row.hub_status == 200)
