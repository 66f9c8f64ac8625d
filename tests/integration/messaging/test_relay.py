"""The relay on a real database (SQLite, PostgreSQL) when the broker refuses one topic for good.

The embedded broker has no misconfiguration of its own to refuse a topic with, so the refusal
is made at the broker's boundary (refusing.py): the database broker, with the topics in `broken`
answered by a real TopicMisconfigured, as a Kafka topic with too few partitions answers (that
case runs against a real Kafka-protocol broker in test_set_aside.py).
"""

from __future__ import annotations

import asyncio
import logging
import re
import uuid
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

import pytest
from sqlalchemy import Table, event, func, insert, select
from sqlalchemy.engine import Engine

from audit.records import ExchangeRecord, RecordKind
from gateway.db import make_engine, migrate
from messaging.broker import partition_for
from messaging.database_broker import DatabaseBroker
from messaging.errors import DatabaseUnavailable
from messaging.leases import Leases
from messaging.models import LogEntry, Message
from messaging.relay import LEASE, Relay
from messaging.set_aside import listing
from messaging.threads import Threads
from registry.types import utcnow
from tests.integration.messaging.refusing import Refusing
from tests.wait import wait_until_async

PARTITIONS = 3
KEYS = ["H12-0001", "H12-0002", "H12-0003", "H12-0004"]


@pytest.fixture(params=["sqlite", "postgresql"])
def engine(request: pytest.FixtureRequest, database_urls: Callable[[str], str]) -> Iterator[Engine]:
    made = make_engine(database_urls(request.param))
    migrate(made)
    yield made
    made.dispose()


def accept(engine: Engine, topic: str, count: int, start: int = 0) -> list[str]:
    """Messages accepted on `topic` (outbox rows, as a publish commits them), keys in turn."""
    rows: list[dict[str, Any]] = []
    for n in range(start, start + count):
        key = KEYS[n % len(KEYS)]
        rows.append(
            {
                "id": str(uuid.uuid4()),
                "topic": topic,
                "partition": partition_for(key, PARTITIONS),
                "key": key,
                "producer": "tester",
                "value": f'{{"n": {n}}}',
                "created_at": utcnow(),
            }
        )
    with engine.begin() as connection:
        connection.execute(insert(Message.__table__), rows)  # type: ignore[attr-defined]
    return [row["id"] for row in rows]


def outbox(engine: Engine, topic: str) -> int:
    table = Message.__table__  # type: ignore[attr-defined]
    with engine.connect() as connection:
        return int(
            connection.execute(
                select(func.count())
                .select_from(table)
                .where(table.c.topic == topic, table.c.relayed_at.is_(None))
            ).scalar_one()
        )


def in_log(engine: Engine, topic: str) -> dict[str, list[str]]:
    """Per key, the message ids the broker's log holds, in log order."""
    table: Table = LogEntry.__table__  # type: ignore[attr-defined]
    with engine.connect() as connection:
        rows = connection.execute(
            select(table.c.key, table.c.message_id)
            .where(table.c.topic == topic)
            .order_by(table.c.partition, table.c.offset)
        ).all()
    found: dict[str, list[str]] = {}
    for row in rows:
        found.setdefault(row.key, []).append(row.message_id)
    return found


def per_key(ids: list[str]) -> dict[str, list[str]]:
    """The accepted ids per key, in acceptance order (keys were given in turn)."""
    found: dict[str, list[str]] = {}
    for n, message_id in enumerate(ids):
        found.setdefault(KEYS[n % len(KEYS)], []).append(message_id)
    return found


def changes(engine: Engine, topic: str) -> list[tuple[str, dict[str, Any]]]:
    """The hub's registry-change records about the topic: (action, details), oldest first."""
    table: Table = ExchangeRecord.__table__  # type: ignore[attr-defined]
    with engine.connect() as connection:
        rows = connection.execute(
            select(table.c.action, table.c.details)
            .where(table.c.kind == RecordKind.REGISTRY_CHANGE.value, table.c.topic == topic)
            .order_by(table.c.seq)
        ).all()
    return [(row.action, row.details) for row in rows]


def until(probe: Callable[[], Any], what: str) -> Awaitable[Any]:
    async def probing() -> Any:
        return probe()

    return wait_until_async(probing, timeout=30, what=what)


@pytest.mark.parametrize(
    ("where", "fix"),
    [("ensure", "registry change"), ("produce", "periodic retry")],
    ids=["refused-at-ensure-fixed-by-registry-change", "refused-unnamed-retried-by-itself"],
)
def test_a_refused_topic_is_set_aside_while_the_other_topics_flow(
    engine: Engine, where: str, fix: str
) -> None:
    broker = Refusing(DatabaseBroker(engine), where)
    broker.broken = {"civil.birth"}
    revision = [1]
    # The refused topic's messages come first: before, every topic behind them waited.
    bad = accept(engine, "civil.birth", 12)
    good = accept(engine, "dossier.status", 10)

    async def scenario() -> None:
        relay = Relay(
            engine,
            broker,
            Leases(engine, holder="relay-test", seconds=10),
            lambda: {},
            revision=lambda: revision[0],
            threads=Threads(),
            batch=7,  # several batches, each with both topics' rows at first
            retry_seconds=(60.0, 60.0) if fix == "registry change" else (0.2, 0.4),
        )
        relay.start()
        try:
            await until(lambda: outbox(engine, "dossier.status") == 0, "the other topic relayed")
            assert in_log(engine, "dossier.status") == per_key(good)
            more = accept(engine, "dossier.status", 6, start=10)
            await until(lambda: outbox(engine, "dossier.status") == 0, "later messages relayed")
            assert in_log(engine, "dossier.status") == per_key(good + more)

            # The refused topic waits, whole, in the outbox; it is shown, and recorded once.
            assert outbox(engine, "civil.birth") == 12
            assert in_log(engine, "civil.birth") == {}
            [aside] = listing(engine)
            assert (aside["kind"], aside["name"]) == ("topic", "civil.birth")
            assert aside["error"] == "TopicMisconfigured" and aside["reason"]
            assert aside["waiting"] == 12 and aside["since"] is not None
            if fix == "periodic retry":  # tried again by itself, still refused: counted
                await until(lambda: listing(engine)[0]["attempts"] >= 3, "three more tries")
            assert [action for action, _ in changes(engine, "civil.birth")] == ["set-aside"]
            assert relay.failures == 0  # no transient failure: nothing to retry blindly

            broker.broken.clear()  # the operator fixes the topic on the broker
            if fix == "registry change":
                revision[0] += 1  # ... and the registry changes: tried at once
            await until(lambda: outbox(engine, "civil.birth") == 0, "the fixed topic relayed")
            assert in_log(engine, "civil.birth") == per_key(bad)  # every one, in order per key
            await until(lambda: listing(engine) == [], "the set-aside row gone")
            assert [action for action, _ in changes(engine, "civil.birth")] == [
                "set-aside",
                "resumed",
            ]
        finally:
            await relay.stop()

    asyncio.run(scenario())


def test_a_takeover_knows_what_was_set_aside_and_records_it_once(engine: Engine) -> None:
    """The relay's lease moves to another process: it reads the set-aside topics from the
    database, tries them at once, and records nothing new while they stay refused."""
    broker = Refusing(DatabaseBroker(engine), "ensure")
    broker.broken = {"civil.birth"}
    accept(engine, "civil.birth", 5)
    revision = [1]

    def relay(holder: str) -> Relay:
        return Relay(
            engine,
            broker,
            Leases(engine, holder=holder, seconds=10),
            lambda: {},
            revision=lambda: revision[0],
            threads=Threads(),
            retry_seconds=(60.0, 60.0),
        )

    async def scenario() -> None:
        first = relay("replica-1")
        first.start()
        await until(lambda: listing(engine), "the topic set aside")
        await first.stop()  # releases the lease
        second = relay("replica-2")
        second.start()
        try:
            await until(lambda: listing(engine)[0]["attempts"] == 2, "the second's own try")
            assert [action for action, _ in changes(engine, "civil.birth")] == ["set-aside"]
            broker.broken.clear()
            revision[0] += 1
            await until(lambda: outbox(engine, "civil.birth") == 0, "relayed once fixed")
            assert second.set_aside.held == {}
        finally:
            await second.stop()

    asyncio.run(scenario())


def test_a_resume_that_is_not_committed_is_tried_again(engine: Engine) -> None:
    """The topic is fixed, its messages relayed, but the database fails the commit that
    resumes it: the row is still there, so the relay must try again until it is gone."""
    broker = Refusing(DatabaseBroker(engine), "ensure")
    broker.broken = {"civil.birth"}
    accept(engine, "civil.birth", 5)
    revision = [1]
    armed = [False]

    def fail_the_resume(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        if armed[0] and statement.lstrip().upper().startswith("DELETE FROM MESSAGING_SET_ASIDE"):
            armed[0] = False
            raise engine.dialect.loaded_dbapi.OperationalError("the database went away")

    relay = Relay(
        engine,
        broker,
        Leases(engine, holder="relay-test", seconds=10),
        lambda: {},
        revision=lambda: revision[0],
        threads=Threads(),
        retry_seconds=(60.0, 60.0),
    )

    async def scenario() -> None:
        relay.start()
        try:
            await until(lambda: listing(engine), "the topic set aside")
            armed[0] = True
            broker.broken.clear()
            revision[0] += 1
            await until(lambda: outbox(engine, "civil.birth") == 0, "relayed once fixed")
            await until(lambda: not armed[0] and listing(engine) == [], "the set-aside row gone")
            assert [action for action, _ in changes(engine, "civil.birth")] == [
                "set-aside",
                "resumed",
            ]
        finally:
            await relay.stop()

    event.listen(engine, "before_cursor_execute", fail_the_resume)
    try:
        asyncio.run(scenario())
    finally:
        event.remove(engine, "before_cursor_execute", fail_the_resume)


def test_a_failing_query_of_the_relay_is_a_transient_database_failure(
    engine: Engine, caplog: pytest.LogCaptureFixture
) -> None:
    """The relay's own query fails (stamping a batch relayed): DatabaseUnavailable, logged as a
    warning without a traceback or the statement's parameters, and the batch is sent again."""
    ids = accept(engine, "civil.birth", 5)
    armed = [True]

    def fail_the_stamp(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        if armed[0] and statement.lstrip().upper().startswith("UPDATE MESSAGE "):
            armed[0] = False
            raise engine.dialect.loaded_dbapi.OperationalError("the database went away")

    relay = Relay(
        engine,
        DatabaseBroker(engine),
        Leases(engine, holder="relay-test", seconds=10),
        lambda: {},
        threads=Threads(),
    )

    async def scenario() -> None:
        relay.start()
        try:
            await until(lambda: outbox(engine, "civil.birth") == 0, "relayed after the failure")
        finally:
            await relay.stop()

    event.listen(engine, "before_cursor_execute", fail_the_stamp)
    try:
        with caplog.at_level(logging.WARNING, logger="messaging"):
            asyncio.run(scenario())
    finally:
        event.remove(engine, "before_cursor_execute", fail_the_stamp)
    assert not armed[0]
    assert in_log(engine, "civil.birth") == per_key(ids)  # sent twice, stored once
    assert relay.failures == 1 and relay.last_failure == "DatabaseUnavailable"
    said = [r for r in caplog.records if r.name == "messaging.relay"]
    assert [r.levelname for r in said] == ["WARNING"]
    assert "DatabaseUnavailable" in said[0].getMessage()
    assert "the database went away" in said[0].getMessage()
    assert "[SQL" not in said[0].getMessage() and said[0].exc_info is None


class FlakyLeases(Leases):
    """Leases whose first request fails, as when the database is away for a moment."""

    asked = 0

    def acquire(self, name: str) -> bool:
        self.asked += 1
        if self.asked == 1:
            raise DatabaseUnavailable("the lease could not be asked: the database is away")
        return super().acquire(name)


def test_a_replica_that_does_not_relay_does_not_report_a_past_failure(engine: Engine) -> None:
    """Another replica holds the relay's lease: a failure here before (the lease could not be
    asked) is not "failing now", and /readyz must not say degraded for it."""
    assert Leases(engine, holder="replica-1", seconds=60).acquire(LEASE)
    leases = FlakyLeases(engine, holder="replica-2", seconds=0.3)
    relay = Relay(engine, DatabaseBroker(engine), leases, lambda: {}, threads=Threads())

    async def scenario() -> None:
        relay.start()
        try:
            await until(lambda: leases.asked >= 3, "the lease asked for again, twice")
            assert relay.failures == 1 and relay.last_failure == "DatabaseUnavailable"
            assert not relay.leading
            assert relay.failing_since is None
        finally:
            await relay.stop()

    asyncio.run(scenario())


def test_while_a_topic_waits_the_relay_never_reads_through_its_rows(
    database_urls: Callable[[str], str],
) -> None:
    """The query plans (SQLite's are deterministic): while topics are set aside, the outbox
    is read per topic from the (topic, seq) index alone (no row is read to be left out), never
    scanned, whatever waits in it; then only the rows chosen are read, by their seq."""
    engine = make_engine(database_urls("sqlite"))
    migrate(engine)
    accept(engine, "civil.birth", 50)
    accept(engine, "dossier.status", 5)
    statements: list[tuple[str, Any]] = []

    def seen(_conn: Any, _cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
        if "message" in statement and statement.lstrip().upper().startswith(("SELECT", "WITH")):
            statements.append((statement, parameters))

    relay = Relay(
        engine,
        DatabaseBroker(engine),
        Leases(engine, holder="plan-test", seconds=10),
        lambda: {},
        threads=Threads(),
    )
    event.listen(engine, "before_cursor_execute", seen)
    try:
        rows = relay._pending({"civil.birth"})
    finally:
        event.remove(engine, "before_cursor_execute", seen)
    assert {row.topic for row in rows} == {"dossier.status"} and len(rows) == 5
    assert statements
    kinds = set()
    with engine.connect() as connection:
        for statement, parameters in statements:
            plan = [
                row[3]
                for row in connection.exec_driver_sql(f"EXPLAIN QUERY PLAN {statement}", parameters)
            ]
            reads = [step for step in plan if re.match(r"(SCAN|SEARCH) (message|m)\b", step)]
            assert reads and not any(step.startswith("SCAN") for step in reads), plan
            if "message.value" in statement:  # whole rows: only those chosen, by primary key
                kinds.add("rows")
                assert all("USING INTEGER PRIMARY KEY" in step for step in reads), plan
            elif statement.lstrip().startswith("WITH"):  # the topics with unrelayed rows
                kinds.add("topics")
                assert all("ix_message_outbox_topic" in step for step in reads), plan
            else:  # each topic's oldest seqs, from the index alone
                kinds.add("seqs")
                assert all("COVERING INDEX ix_message_outbox_topic" in step for step in reads), plan
    assert kinds == {"topics", "seqs", "rows"}
    engine.dispose()
