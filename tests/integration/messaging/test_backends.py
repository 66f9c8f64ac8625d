"""One conformance suite for the `Broker` backends: the embedded log on SQLite and on
PostgreSQL, and Kafka (a real tansu broker). Each test body runs on all three; a few at the end
cover what only one kind has (a replaced Kafka broker, several processes on one log, trim)."""

from __future__ import annotations

import contextlib
import logging
import multiprocessing
import sqlite3
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from kafka import KafkaAdminClient
from kafka.admin import ConfigResource, ConfigResourceType, NewTopic
from kafka.errors import TopicAlreadyExistsError
from sqlalchemy import create_engine, text
from sqlalchemy.engine import Engine

from gateway.db import make_engine, migrate
from messaging.broker import Broker, Outgoing, Received, kafka_name, partition_for
from messaging.brokers import create_broker
from messaging.database_broker import DatabaseBroker
from messaging.errors import MessageTooLarge, TopicMisconfigured, Transient
from messaging.kafka_broker import MAX_RECORD_BYTES, KafkaBroker
from messaging.models import MAX_KEY
from registry.models import MAX_MESSAGE_BYTES
from tests.kafka import Broker as TansuServer
from tests.kafka import running_broker
from tests.wait import wait_until

DAY_MS = 86_400_000


@dataclass
class Backend:
    kind: str  # "sqlite", "postgresql" or "kafka"
    make: Callable[..., Broker]  # keyword arguments: timeout_seconds
    engine: Engine | None = None
    url: str | None = None
    server: TansuServer | None = None


@pytest.fixture(scope="module", params=["sqlite", "postgresql", "kafka"])
def backend(
    request: pytest.FixtureRequest, database_urls: Callable[[str], str]
) -> Iterator[Backend]:
    if request.param == "kafka":
        with running_broker() as server:
            yield Backend(
                "kafka",
                lambda **kw: KafkaBroker(server.bootstrap, "test.", **kw),
                server=server,
            )
        return
    url = database_urls(request.param)
    engine = make_engine(url)
    migrate(engine)
    yield Backend(request.param, lambda **kw: DatabaseBroker(engine, **kw), engine, url)
    engine.dispose()


@pytest.fixture
def broker(backend: Backend) -> Iterator[Broker]:
    made = backend.make()
    yield made
    made.close()


@pytest.fixture
def topic(unique: Callable[[str], str]) -> str:
    return unique("conformance")


def message(
    topic: str,
    partition: int,
    n: int,
    *,
    key: str | None = None,
    at: int | None = None,
    headers: dict[str, str] | None = None,
) -> Outgoing:
    return Outgoing(
        topic=topic,
        partition=partition,
        key=key,
        value=b'{"n": %d, "TrangThaiHoSo": 2}' % n,
        message_id=str(uuid.uuid4()),
        timestamp_ms=int(time.time() * 1000) if at is None else at,
        headers=headers or {},
    )


def read(
    broker: Broker, topic: str, partition: int, count: int, *, step: int = 100
) -> list[Received]:
    """`count` messages of the partition from offset 0, in as many fetches as it takes."""
    found: list[Received] = []
    while len(found) < count:
        got = broker.fetch(topic, partition, len(found), max_records=step, wait_seconds=2)
        assert got, f"partition {partition} ended at {len(found)} of {count}"
        assert len(got) <= step
        found.extend(got)
    return found


def values(received: list[Received]) -> list[bytes]:
    return [r.value for r in received]


def kafka_config(server: TansuServer, topic: str) -> dict[str, str]:
    """The Kafka topic's own settings, as the broker describes them."""
    admin = KafkaAdminClient(bootstrap_servers=server.bootstrap)
    try:
        [described] = admin.describe_configs(
            [ConfigResource(ConfigResourceType.TOPIC, kafka_name("test.", topic))]
        )
    finally:
        admin.close()
    [(_, _, _, _, entries)] = described.resources
    return {entry[0]: entry[1] for entry in entries}


# ------------------------------------------------------------------------- every backend


def test_a_round_trip_keeps_keys_values_ids_times_and_headers(broker: Broker, topic: str) -> None:
    broker.ensure_topic(topic, 3, DAY_MS)
    keys = [f"H12.99-261124-{n:04d}" for n in range(6)]
    sent = [
        message(topic, partition_for(k, 3), n, key=k, headers={"lgsp-producer": f"p{n}"})
        for n, k in enumerate(keys)
    ]
    sent.append(message(topic, 1, 99))  # keyless, no headers
    broker.produce(sent)

    got: dict[str, Received] = {}
    for partition in range(3):
        expected = sum(1 for m in sent if m.partition == partition)
        received = read(broker, topic, partition, expected)
        assert [r.offset for r in received] == list(range(expected))
        assert broker.end_offset(topic, partition) == expected
        got.update({r.message_id: r for r in received})
    assert set(got) == {m.message_id for m in sent}
    for m in sent:
        r = got[m.message_id]
        assert (r.topic, r.partition, r.key, r.value, r.timestamp_ms, r.headers) == (
            m.topic,
            m.partition,
            m.key,
            m.value,
            m.timestamp_ms,
            m.headers,
        )


def test_a_message_of_the_largest_size_a_topic_allows_is_stored_and_read_back(
    backend: Backend, broker: Broker, topic: str, caplog: pytest.LogCaptureFixture
) -> None:
    """A value of MAX_MESSAGE_BYTES with the longest key (4 bytes a character in UTF-8) and the
    longest producer name: the hub accepts it (202), so the broker must take it with all that
    Kafka counts besides the value, and a reader must get it back whole, at its first fetch
    (no failed one, logged as an error, before it)."""
    caplog.set_level(logging.WARNING)
    broker.ensure_topic(topic, 1, DAY_MS)
    filler = b"x" * (MAX_MESSAGE_BYTES - len(b'{"x": ""}'))
    large = Outgoing(
        topic=topic,
        partition=0,
        key="\N{MATHEMATICAL DOUBLE-STRUCK CAPITAL A}" * MAX_KEY,
        value=b'{"x": "%s"}' % filler,
        message_id=str(uuid.uuid4()),
        timestamp_ms=int(time.time() * 1000),
        headers={"lgsp-producer": "p" * 63},
    )
    assert len(large.value) == MAX_MESSAGE_BYTES
    after = message(topic, 0, 1)
    broker.produce([large, after])
    [got, next_one] = read(broker, topic, 0, 2)
    assert (got.message_id, got.key, got.value, got.headers) == (
        large.message_id,
        large.key,
        large.value,
        large.headers,
    )
    assert next_one.message_id == after.message_id
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR] == []
    if backend.server is not None:  # as an operator sees the topic on Kafka
        assert kafka_config(backend.server, topic)["max.message.bytes"] == str(MAX_RECORD_BYTES)


def test_a_partition_keeps_the_order_of_many_batches(broker: Broker, topic: str) -> None:
    broker.ensure_topic(topic, 2, DAY_MS)
    sent: list[Outgoing] = []
    for batch in range(20):
        chunk = [message(topic, n % 2, batch * 50 + n, key=f"k{n % 2}") for n in range(50)]
        broker.produce(chunk)
        sent.extend(chunk)
    for partition in range(2):
        mine = [m for m in sent if m.partition == partition]
        received = read(broker, topic, partition, len(mine), step=37)
        assert [r.offset for r in received] == list(range(len(mine)))
        assert [r.message_id for r in received] == [m.message_id for m in mine]
        assert broker.end_offset(topic, partition) == len(mine)
        more = broker.fetch(topic, partition, len(mine), max_records=10, wait_seconds=0)
        assert more == []


def test_end_offset_and_offset_for_time(broker: Broker, topic: str) -> None:
    broker.ensure_topic(topic, 2, DAY_MS)
    assert broker.end_offset(topic, 0) == 0
    assert broker.offset_for_time(topic, 0, 0) == 0
    base = int(time.time() * 1000) - 3_600_000
    # Times 0, 10, 20, 20, 20, 30, ... 120 s: batches of several sizes, one time thrice.
    times = [0, 10, 20, 20, 20, *range(30, 130, 10)]
    sizes = [1, 3, 5, 2, 4]
    n = 0
    for size in sizes:
        broker.produce(
            [message(topic, 0, i, at=base + times[i] * 1000) for i in range(n, n + size)]
        )
        n += size
    assert n == len(times) == broker.end_offset(topic, 0)
    assert broker.end_offset(topic, 1) == 0

    def first_at_or_after(seconds: float) -> int:
        return next((i for i, t in enumerate(times) if t >= seconds), len(times))

    for seconds in [-5, 0, 5, 10, 15, 20, 21, 55, 60, 115, 120, 121, 500]:
        expected = first_at_or_after(seconds)
        assert broker.offset_for_time(topic, 0, base + int(seconds * 1000)) == expected, seconds


def test_a_waiting_fetch_returns_as_soon_as_a_message_arrives(broker: Broker, topic: str) -> None:
    broker.ensure_topic(topic, 1, DAY_MS)
    late = message(topic, 0, 1)
    timer = threading.Timer(0.4, broker.produce, args=([late],))
    started = time.monotonic()
    timer.start()
    try:
        got = broker.fetch(topic, 0, 0, max_records=10, wait_seconds=30)
    finally:
        timer.join()
    elapsed = time.monotonic() - started
    assert [r.message_id for r in got] == [late.message_id]
    # It waited for the message, and came back with it long before its 30 s were up (bounds
    # loose enough for a loaded CI machine: this is behaviour, not speed).
    assert 0.35 < elapsed < 15


def test_waiting_fetches_of_several_threads_do_not_hold_each_other_up(
    broker: Broker, topic: str
) -> None:
    """Delivery reads every partition in its own thread: a reader waiting on a quiet partition
    must not delay one whose message has arrived."""
    broker.ensure_topic(topic, 3, DAY_MS)
    results: dict[int, tuple[list[Received], float]] = {}

    def wait_on(partition: int) -> None:
        started = time.monotonic()
        got = broker.fetch(topic, partition, 0, max_records=10, wait_seconds=8)
        results[partition] = (got, time.monotonic() - started)

    readers = [threading.Thread(target=wait_on, args=(p,)) for p in range(3)]
    for reader in readers:
        reader.start()
        time.sleep(0.1)  # the quiet partitions' readers are first in line
    time.sleep(0.3)
    late = message(topic, 2, 1)
    broker.produce([late])
    for reader in readers:
        reader.join()
    got, elapsed = results[2]
    assert [r.message_id for r in got] == [late.message_id]
    assert elapsed < 5  # not held until the quiet readers' 8 s are up
    assert results[0][0] == results[1][0] == []


def test_a_fetch_with_nothing_to_read_waits_then_answers_empty(broker: Broker, topic: str) -> None:
    broker.ensure_topic(topic, 1, DAY_MS)
    started = time.monotonic()
    assert broker.fetch(topic, 0, 0, max_records=10, wait_seconds=0.6) == []
    assert time.monotonic() - started >= 0.6  # it waited, then answered

    broker.produce([message(topic, 0, 0)])
    started = time.monotonic()
    assert broker.fetch(topic, 0, 1, max_records=10, wait_seconds=0) == []  # at the end
    assert broker.fetch(topic, 0, 7, max_records=10, wait_seconds=0) == []  # past the end


def test_a_fetch_without_waiting_returns_what_is_there(broker: Broker, topic: str) -> None:
    broker.ensure_topic(topic, 1, DAY_MS)
    sent = [message(topic, 0, n) for n in range(10)]
    broker.produce(sent)
    got = broker.fetch(topic, 0, 3, max_records=4, wait_seconds=0)
    assert [r.offset for r in got] == [3, 4, 5, 6]
    assert [r.message_id for r in got] == [m.message_id for m in sent[3:7]]
    got = broker.fetch(topic, 0, 8, max_records=100, wait_seconds=0)
    assert [r.message_id for r in got] == [m.message_id for m in sent[8:]]


def test_concurrent_producers_keep_their_order_and_never_share_an_offset(
    broker: Broker, topic: str
) -> None:
    broker.ensure_topic(topic, 2, DAY_MS)
    threads, batches, size = 4, 10, 20
    sent: dict[int, list[Outgoing]] = {t: [] for t in range(threads)}
    errors: list[BaseException] = []

    def produce(t: int) -> None:
        try:
            for b in range(batches):
                chunk = [
                    message(topic, n % 2, n, key=f"t{t}") for n in range(b * size, (b + 1) * size)
                ]
                broker.produce(chunk)
                sent[t].extend(chunk)
        except BaseException as error:
            errors.append(error)

    workers = [threading.Thread(target=produce, args=(t,)) for t in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    assert errors == []

    for partition in range(2):
        expected = threads * batches * size // 2
        received = read(broker, topic, partition, expected)
        assert [r.offset for r in received] == list(range(expected))
        assert broker.end_offset(topic, partition) == expected
        ids = [r.message_id for r in received]
        assert len(set(ids)) == expected
        for t in range(threads):
            mine = [m.message_id for m in sent[t] if m.partition == partition]
            assert [i for i in ids if i in set(mine)] == mine


def test_a_resent_batch(backend: Backend, broker: Broker, topic: str) -> None:
    """The relay sends a batch again after a failure: the embedded log stores it once; Kafka
    stores it twice, and the copies carry the same message ids (delivery skips them)."""
    broker.ensure_topic(topic, 1, DAY_MS)
    batch = [message(topic, 0, n) for n in range(5)]
    broker.produce(batch)
    broker.produce(batch)
    broker.produce([batch[2], batch[2]])  # twice within one batch, too
    ids = [m.message_id for m in batch]
    if backend.kind == "kafka":
        assert [r.message_id for r in read(broker, topic, 0, 12)] == [*ids, *ids, ids[2], ids[2]]
        assert broker.end_offset(topic, 0) == 12
    else:
        assert [r.message_id for r in read(broker, topic, 0, 5)] == ids
        assert broker.end_offset(topic, 0) == 5
        assert broker.fetch(topic, 0, 5, max_records=10, wait_seconds=0) == []


@contextlib.contextmanager
def outage(backend: Backend) -> Iterator[None]:
    """The broker is there but does not answer: tansu stopped (SIGSTOP); the database held by
    another writer (SQLite's write lock; an exclusive table lock on PostgreSQL)."""
    if backend.server is not None:
        backend.server.pause()
        try:
            yield
        finally:
            backend.server.resume()
        return
    assert backend.engine is not None and backend.url is not None
    if backend.kind == "sqlite":
        writer = sqlite3.connect(backend.url.removeprefix("sqlite:///"), isolation_level=None)
        writer.execute("BEGIN IMMEDIATE")
        try:
            yield
        finally:
            writer.execute("ROLLBACK")
            writer.close()
        return
    with backend.engine.connect() as holder:
        holder.execute(text("LOCK TABLE broker_log IN ACCESS EXCLUSIVE MODE"))
        try:
            yield
        finally:
            holder.rollback()


def test_produce_fails_in_bounded_time_while_the_broker_is_away_then_recovers(
    backend: Backend, topic: str
) -> None:
    broker = backend.make(timeout_seconds=3)
    try:
        broker.ensure_topic(topic, 1, DAY_MS)
        broker.produce([message(topic, 0, 0)])
        lost = message(topic, 0, 1)
        with outage(backend):
            started = time.monotonic()
            with pytest.raises(Transient):
                broker.produce([lost])
            failed_after = time.monotonic() - started
        assert 1 <= failed_after < 15  # bounded by its 3 s timeout, not hanging
        after = message(topic, 0, 2)
        broker.produce([after])
        end = broker.end_offset(topic, 0)
        ids = [r.message_id for r in read(broker, topic, 0, end)]
        # The stopped broker may still have taken the unacknowledged one (a duplicate on
        # Kafka when the relay sends it again); the acknowledged ones are all there.
        assert ids[-1] == after.message_id and set(ids[1:-1]) <= {lost.message_id}
    finally:
        broker.close()


# ------------------------------------------------------------------------- one backend


def produce_eventually(broker: Broker, batch: list[Outgoing], seconds: float = 20) -> None:
    """Produce, retrying on a transient error as the relay does, for at most `seconds`."""
    failures: list[Transient] = []

    def produced() -> bool:
        try:
            broker.produce(batch)
        except Transient as exc:
            failures[:] = [exc]
            return False
        return True

    try:
        wait_until(produced, timeout=seconds, interval=0.2, what="the broker to take the batch")
    except AssertionError as timed_out:  # with the broker's last error as its cause
        raise timed_out from (failures[0] if failures else None)


def test_a_replaced_kafka_broker_gets_its_topics_again() -> None:
    """A new, empty broker on the same address: produce recreates the topics it had ensured,
    whether or not a produce failed while the broker was gone, and reading starts over."""
    with running_broker() as first:
        port = first.port
        broker = KafkaBroker(first.bootstrap, "test.", timeout_seconds=3)
        broker.ensure_topic("dossier.status", 2, DAY_MS)
        broker.produce([message("dossier.status", 1, 0)])
        assert broker.end_offset("dossier.status", 1) == 1
    try:
        with running_broker(port=port):
            again = message("dossier.status", 1, 1)
            produce_eventually(broker, [again])  # as the relay does: retry until acknowledged
            got = broker.fetch("dossier.status", 1, 0, max_records=10, wait_seconds=3)
            assert [r.message_id for r in got] == [again.message_id]

        with pytest.raises(Transient):
            broker.produce([message("dossier.status", 0, 2)])

        with running_broker(port=port):
            last = message("dossier.status", 0, 3)
            produce_eventually(broker, [last])
            got = broker.fetch("dossier.status", 0, 0, max_records=10, wait_seconds=3)
            assert got[-1].message_id == last.message_id and got[-1].offset == len(got) - 1
    finally:
        broker.close()


@pytest.mark.parametrize("backend", ["kafka"], indirect=True)
def test_a_kafka_topic_with_fewer_partitions_is_misconfigured_until_made_again(
    backend: Backend, topic: str
) -> None:
    """Made on the broker beforehand with 1 partition, the hub's having 3: a terminal error
    naming the hub topic. Made again with 3 by the operator: accepted, although the producer
    had learnt the old layout (it is asked to fetch it again)."""
    assert backend.server is not None
    name = f"test.{topic}"
    admin = KafkaAdminClient(bootstrap_servers=backend.server.bootstrap)
    broker = backend.make(timeout_seconds=3)
    try:
        admin.create_topics([NewTopic(name, num_partitions=1, replication_factor=1)])
        with pytest.raises(TopicMisconfigured) as refused:
            broker.ensure_topic(topic, 3, DAY_MS)
        assert refused.value.topic == topic
        admin.delete_topics([name])

        def made_again() -> bool:
            with contextlib.suppress(TopicAlreadyExistsError):  # not deleted yet
                admin.create_topics([NewTopic(name, num_partitions=3, replication_factor=1)])
                return True
            return False

        wait_until(made_again, what=f"{name} made again with 3 partitions")
        broker.ensure_topic(topic, 3, DAY_MS)
        last = message(topic, 2, 0)
        broker.produce([last])
        got = broker.fetch(topic, 2, 0, max_records=10, wait_seconds=3)
        assert [r.message_id for r in got] == [last.message_id]
    finally:
        broker.close()
        admin.close()


@pytest.mark.parametrize("backend", ["kafka"], indirect=True)
def test_a_message_too_large_for_kafka_stops_its_batch_there(broker: Broker, topic: str) -> None:
    """Refused for good, naming its topic, and nothing behind it is sent: the messages after
    it stay after it. The hub never relays a message this large: a topic allows at most
    MAX_MESSAGE_BYTES, which the producer and the topics the hub creates take with the key and
    headers (the test of the largest message above). It stands for a message larger than a
    Kafka topic made elsewhere takes (its max.message.bytes smaller): the hub topic is set
    aside until an operator raises that limit on Kafka, and resumes at its next try."""
    broker.ensure_topic(topic, 1, DAY_MS)
    first, after = message(topic, 0, 0), message(topic, 0, 2)
    large = Outgoing(topic, 0, None, b'{"x": "%s"}' % (b"x" * 2_000_000), "large-1", 0)
    assert len(large.value) > MAX_RECORD_BYTES
    with pytest.raises(MessageTooLarge) as refused:
        broker.produce([first, large, after])
    assert refused.value.topic == topic
    got = broker.fetch(topic, 0, 0, max_records=10, wait_seconds=1)
    assert [r.message_id for r in got] == [first.message_id]


def _write_from_another_process(url: str, topic: str, name: str, go: Any) -> None:
    broker = DatabaseBroker(make_engine(url))
    go.wait()
    for b in range(40):
        broker.produce(
            [Outgoing(topic, n % 2, name, b"{}", f"{name}-{b}-{n}", 0) for n in range(10)]
        )


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"], indirect=True)
def test_processes_sharing_the_embedded_log_never_reuse_an_offset(
    backend: Backend, topic: str
) -> None:
    assert backend.url is not None
    context = multiprocessing.get_context("fork")  # no second interpreter to start
    go = context.Event()
    writers = [
        context.Process(target=_write_from_another_process, args=(backend.url, topic, name, go))
        for name in ("w1", "w2")
    ]
    for writer in writers:
        writer.start()
    go.set()
    for writer in writers:
        writer.join(timeout=60)
    assert [w.exitcode for w in writers] == [0, 0]
    broker = backend.make()
    try:
        for partition in range(2):
            received = read(broker, topic, partition, 400)
            assert [r.offset for r in received] == list(range(400))
            for name in ("w1", "w2"):
                mine = [r.message_id for r in received if r.key == name]
                expected = [f"{name}-{b}-{n}" for b in range(40) for n in range(partition, 10, 2)]
                assert mine == expected
            assert broker.fetch(topic, partition, 400, max_records=1, wait_seconds=0) == []
    finally:
        broker.close()


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"], indirect=True)
def test_trim_drops_old_entries_but_keeps_the_end(backend: Backend, topic: str) -> None:
    """Kafka applies the topic's retention.ms itself; the embedded log is trimmed by the hub."""
    assert backend.engine is not None
    broker = DatabaseBroker(backend.engine)
    broker.ensure_topic(topic, 2, DAY_MS)
    broker.produce([message(topic, 0, n, at=1_000 + n) for n in range(5)])
    broker.produce([message(topic, 1, n, at=1_000 + n) for n in range(3)])
    broker.produce([message(topic, 1, 9, at=9_000)])
    assert broker.trim(topic, before_ms=5_000) == 4 + 3
    assert [r.offset for r in broker.fetch(topic, 0, 0, max_records=9, wait_seconds=0)] == [4]
    assert [r.offset for r in broker.fetch(topic, 1, 0, max_records=9, wait_seconds=0)] == [3]
    assert broker.end_offset(topic, 0) == 5 and broker.end_offset(topic, 1) == 4
    broker.produce([message(topic, 0, 5)])
    assert broker.end_offset(topic, 0) == 6


def test_the_settings_choose_the_backend(backend: Backend) -> None:
    if backend.server is not None:
        bootstrap = backend.server.bootstrap
        unused = create_engine("sqlite://")  # the hub's engine, which a Kafka broker ignores
        made = create_broker("kafka", engine=unused, bootstrap=bootstrap, prefix="x.")
        assert isinstance(made, KafkaBroker) and made.prefix == "x."
    else:
        assert backend.engine is not None
        made = create_broker("database", engine=backend.engine, bootstrap=None, prefix="x.")
        assert isinstance(made, DatabaseBroker)
    assert made.name == ("kafka" if backend.kind == "kafka" else "database")
    made.close()
