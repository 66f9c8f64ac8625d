"""The embedded broker: a durable log in the hub's own database (table `broker_log`).

One row per message, keyed by (topic, partition, offset) with offsets from 0 in each partition,
on SQLite (WAL, one file) or PostgreSQL. It needs no other service, so `lgsp demo` and a pilot
run on one process; several hub processes may share the log.

- Appending: one transaction per `produce` call. The next offset of a partition is its largest
  offset plus one, read from the primary key's index (a backward index probe, not a scan).
  Writers of a topic take turns: on PostgreSQL a transaction-level advisory lock per topic, on
  SQLite the database's single write lock taken up front (`BEGIN IMMEDIATE`), so two processes
  never read the same largest offset. The primary key would refuse a reused offset anyway; the
  lock makes that never happen instead of failing a batch.
- Exactly once for re-sends: a message id already in the topic's log is skipped (unique
  (topic, message_id)), so the relay may re-send a batch after a failure without duplicates.
- Bounded: a writer waits at most `timeout_seconds` for the lock (a process hung inside its
  transaction, a table lock), then the call raises DatabaseUnavailable like any database error.
- Errors: SQLAlchemy's are translated here, once (`translate`): a value the database refuses
  is MessageRejected (terminal), anything else DatabaseUnavailable (transient); the detail is
  the driver's first line, never the statement's parameters (they hold messages).
- Waiting readers: a `produce` in this process wakes them at once; writes by other processes
  are noticed by polling (every `poll_seconds`).
- Retention: `trim` deletes old entries but keeps the last of each partition, so the end offset
  (largest offset plus one) never moves backwards.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Connection, delete, func, insert, select, text
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DataError, SQLAlchemyError
from sqlmodel import col

from messaging.broker import Outgoing, Received
from messaging.errors import DatabaseUnavailable, MessageRejected, MessagingError
from messaging.models import LogEntry

_topic, _partition, _offset = col(LogEntry.topic), col(LogEntry.partition), col(LogEntry.offset)
_message_id, _timestamp = col(LogEntry.message_id), col(LogEntry.timestamp_ms)
_LOCK_SPACE = 0x4C4F47  # "LOG": the first key of the two-key advisory locks taken here
_CHUNK = 500  # message ids per IN (...) probe on SQLite, well under its parameter limit
_STORED_PG = text(
    "SELECT message_id FROM broker_log WHERE topic = :topic AND message_id = ANY(:ids)"
)


class _Appends:
    """Appends made in this process, for readers waiting on any broker object: they wake at
    once instead of at their next poll."""

    def __init__(self) -> None:
        self._condition = threading.Condition()
        self.count = 0

    def announce(self) -> None:
        with self._condition:
            self.count += 1
            self._condition.notify_all()

    def wait(self, seen: int, timeout: float) -> None:
        """Until an append after `seen` was counted, or the timeout."""
        with self._condition:
            if self.count == seen:
                self._condition.wait(timeout)


_appended = _Appends()


def _topic_lock_key(topic: str) -> int:
    """A stable 32-bit key for a topic (Python's `hash` differs between processes)."""
    digest = hashlib.blake2b(topic.encode(), digest_size=4).digest()
    return int.from_bytes(digest, "big", signed=True)


class DatabaseBroker:
    """The `database` backend of `Broker` (see the module docstring)."""

    name = "database"

    def __init__(
        self, engine: Engine, *, timeout_seconds: float = 10.0, poll_seconds: float = 0.05
    ) -> None:
        self._engine = engine
        self._lock_wait_ms = int(timeout_seconds * 1000)
        self._poll_seconds = poll_seconds
        self._sqlite = engine.dialect.name == "sqlite"
        self._partitions: dict[str, int] = {}
        # Threads of this process append one at a time on SQLite: they would only queue on the
        # database's write lock, whose busy handler sleeps in steps of milliseconds.
        self._write_lock = threading.Lock() if self._sqlite else None
        self._closed = False

    def ensure_topic(self, topic: str, partitions: int, retention_ms: int) -> None:
        """Nothing to create: a partition's log exists once it has an entry."""
        self._partitions[topic] = partitions

    def produce(self, batch: Sequence[Outgoing]) -> None:
        if not batch:
            return
        by_topic: dict[str, list[Outgoing]] = {}
        for message in batch:
            by_topic.setdefault(message.topic, []).append(message)
        topic = None
        try:
            with self._writing() as connection:
                for topic in sorted(by_topic):  # one lock order for every writer: no deadlock
                    self._append(connection, topic, by_topic[topic])
        except SQLAlchemyError as error:
            # The topic being written when it failed: a refused value is that topic's.
            raise translate(error, "the broker log could not be written", topic=topic) from error
        _appended.announce()

    def fetch(
        self, topic: str, partition: int, offset: int, *, max_records: int, wait_seconds: float
    ) -> list[Received]:
        deadline = time.monotonic() + wait_seconds
        query = (
            select(LogEntry)
            .where(_topic == topic, _partition == partition, _offset >= offset)
            .order_by(_offset)
            .limit(max_records)
        )
        while True:
            seen = _appended.count  # read before the query: an append after it ends the wait
            try:
                with self._engine.connect() as connection:
                    rows = connection.execute(query).all()
            except SQLAlchemyError as error:
                raise translate(error, "the broker log could not be read", topic=topic) from error
            remaining = deadline - time.monotonic()
            if rows or remaining <= 0 or self._closed:
                return [_received(row) for row in rows]
            _appended.wait(seen, min(remaining, self._poll_seconds))

    def end_offset(self, topic: str, partition: int) -> int:
        last = self._scalar(_last_offset(topic, partition))
        return 0 if last is None else int(last) + 1

    def offset_for_time(self, topic: str, partition: int, timestamp_ms: int) -> int:
        first = self._scalar(
            select(func.min(_offset)).where(
                _topic == topic, _partition == partition, _timestamp >= timestamp_ms
            )
        )
        return self.end_offset(topic, partition) if first is None else int(first)

    def trim(self, topic: str, before_ms: int) -> int:
        """Delete the topic's entries accepted before the time; the answer is how many.

        The last entry of each partition stays whatever its age: the next offset is derived
        from it. Appends only add larger offsets, so this needs no lock against producers.
        """
        try:
            with self._engine.begin() as connection:
                known = self._partitions.get(topic)
                partitions: Sequence[int] = (
                    range(known)
                    if known is not None
                    else connection.execute(select(_partition).where(_topic == topic).distinct())
                    .scalars()
                    .all()
                )
                deleted = 0
                for partition in partitions:  # per partition: index probes, not a scan
                    newest = connection.execute(_last_offset(topic, partition)).scalar()
                    if newest is None:
                        continue
                    result = connection.execute(
                        delete(LogEntry).where(
                            _topic == topic,
                            _partition == partition,
                            _offset < newest,
                            _timestamp < before_ms,
                        )
                    )
                    deleted += result.rowcount
                return deleted
        except SQLAlchemyError as error:
            raise translate(error, "the broker log could not be trimmed", topic=topic) from error

    def close(self) -> None:
        """Waiting readers return at once; the engine belongs to the caller."""
        self._closed = True
        _appended.announce()

    @contextmanager
    def _writing(self) -> Iterator[Connection]:
        """A write transaction that holds the database's write lock from its first statement."""
        if self._write_lock is None:
            with self._engine.begin() as connection:
                # A writer that hangs with the lock (or a table lock) fails this call, in time.
                connection.execute(
                    text("SELECT set_config('lock_timeout', :wait, true)"),
                    {"wait": f"{self._lock_wait_ms}ms"},
                )
                yield connection
            return
        with self._write_lock, self._engine.connect() as connection:
            usual = int(connection.exec_driver_sql("PRAGMA busy_timeout").scalar() or 0)
            connection.exec_driver_sql(f"PRAGMA busy_timeout = {self._lock_wait_ms}")
            try:
                # pysqlite begins lazily with a deferred BEGIN: the first read would then hold a
                # snapshot that another process's commit makes stale (SQLITE_BUSY on the write).
                connection.exec_driver_sql("BEGIN IMMEDIATE")
                try:
                    yield connection
                except BaseException:
                    connection.rollback()
                    raise
                connection.commit()
            finally:
                connection.exec_driver_sql(f"PRAGMA busy_timeout = {usual}")

    def _append(self, connection: Connection, topic: str, messages: list[Outgoing]) -> None:
        if not self._sqlite:
            connection.execute(
                text("SELECT pg_advisory_xact_lock(:space, :key)"),
                {"space": _LOCK_SPACE, "key": _topic_lock_key(topic)},
            )
        stored = self._stored_ids(connection, topic, [m.message_id for m in messages])
        next_offset: dict[int, int] = {}
        rows: list[dict[str, Any]] = []
        for message in messages:
            if message.message_id in stored:
                continue
            stored.add(message.message_id)  # the same id twice in one batch: stored once
            partition = message.partition
            if partition not in next_offset:
                last = connection.execute(_last_offset(topic, partition)).scalar()
                next_offset[partition] = 0 if last is None else int(last) + 1
            rows.append(
                {
                    "topic": topic,
                    "partition": partition,
                    "offset": next_offset[partition],
                    "message_id": message.message_id,
                    "key": message.key,
                    "value": message.value.decode(),
                    "headers": dict(message.headers),
                    "timestamp_ms": message.timestamp_ms,
                }
            )
            next_offset[partition] += 1
        if rows:
            connection.execute(insert(LogEntry), rows)

    def _stored_ids(self, connection: Connection, topic: str, ids: list[str]) -> set[str]:
        """Which of the ids the topic's log holds already (probes of the unique index)."""
        if not self._sqlite:
            # One array parameter: with IN (...) of many parameters PostgreSQL's generic plan
            # builds the array again for every row it filters.
            return set(connection.execute(_STORED_PG, {"topic": topic, "ids": ids}).scalars())
        stored: set[str] = set()
        for start in range(0, len(ids), _CHUNK):
            chunk = ids[start : start + _CHUNK]
            stored.update(
                connection.execute(
                    select(_message_id).where(_topic == topic, _message_id.in_(chunk))
                ).scalars()
            )
        return stored

    def _scalar(self, query: Any) -> Any:
        try:
            with self._engine.connect() as connection:
                return connection.execute(query).scalar()
        except SQLAlchemyError as error:
            raise translate(error, "the broker log could not be read") from error


def translate(error: SQLAlchemyError, doing: str, *, topic: str | None = None) -> MessagingError:
    """SQLAlchemy's error as messaging's (the one place where they are translated).

    A value the database refuses (DataError: too long, not encodable) will be refused again:
    terminal. Anything else (connection lost, lock timeout, SQLite busy, a conflicting writer)
    may pass. The detail is the driver's first line: SQLAlchemy's own text carries the
    statement's parameters, which hold messages.
    """
    cause = getattr(error, "orig", None) or error
    first = str(cause).strip().splitlines()[0] if str(cause).strip() else ""
    detail = f"{doing}: {type(cause).__name__}" + (f": {first}" if first else "")
    if isinstance(error, DataError):
        return MessageRejected(detail, topic=topic)
    return DatabaseUnavailable(detail, topic=topic)


def _last_offset(topic: str, partition: int) -> Any:
    """The partition's largest offset, read backwards on the primary key. (As `max(offset)`,
    PostgreSQL may choose the time index and read every entry of the partition.)"""
    return (
        select(_offset)
        .where(_topic == topic, _partition == partition)
        .order_by(_offset.desc())
        .limit(1)
    )


def _received(row: Any) -> Received:
    return Received(
        topic=row.topic,
        partition=row.partition,
        offset=row.offset,
        key=row.key,
        value=row.value.encode(),
        message_id=row.message_id,
        timestamp_ms=row.timestamp_ms,
        headers=dict(row.headers or {}),
    )
