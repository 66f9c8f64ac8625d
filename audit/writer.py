"""Group commit: concurrent requests' records share one transaction and one flush.

A request hands its record to the writer and awaits the commit. The writer gathers every record
handed over in the same turn of the event loop (up to a batch limit), inserts them with one
multi-row INSERT (a COPY on PostgreSQL) through the raw database connection and commits once,
then wakes all their requests. Under load the flush is shared by the whole batch, and the
answer still leaves only after its record is durable.

Measured choices (bench/):
- the raw DBAPI cursor and one statement per batch (on PostgreSQL a COPY): the ORM's per-row
  parameter processing cost more CPU than the rest of the request;
- on SQLite the commit runs in the event loop itself: a batch takes well under a millisecond to
  insert and flush, whereas a writer thread stalled on every handoff of the interpreter lock
  with the busy loop (each up to a switch interval) and held every waiting request with it;
  on PostgreSQL the commit waits on the network, so it is awaited through psycopg's asyncio
  connection (a thread cost the same handoffs);
- several worker processes share one SQLite file: a kernel file lock makes them take turns at
  once, where SQLite's own busy handler would sleep-poll for milliseconds.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import logging
import sqlite3
from collections.abc import Iterator
from datetime import UTC, datetime
from operator import attrgetter
from typing import Any

import orjson
import psycopg
from sqlalchemy.engine import Engine

from audit.errors import AuditUnavailable
from audit.records import RECORD_FIELDS, Record

log = logging.getLogger(__name__)

# A value the database refuses (PEP 249 names); anything else is the connection's fault.
DATA_ERRORS = (sqlite3.DataError, sqlite3.IntegrityError, psycopg.DataError, psycopg.IntegrityError)

COLUMNS = RECORD_FIELDS
_VALUES = attrgetter(*COLUMNS)
_TIME = COLUMNS.index("time")
_DETAILS = COLUMNS.index("details")
_KIND = COLUMNS.index("kind")


def lock_path(engine: Engine) -> str | None:
    """The file whose lock SQLite writers of the audit tables take turns on (None elsewhere)."""
    database = engine.url.database
    if engine.dialect.name != "sqlite" or not database or database == ":memory:":
        return None
    return f"{database}.audit-lock"


@contextlib.contextmanager
def writers_turn(engine: Engine) -> Iterator[None]:
    """SQLite: exclusive use of the database file among this host's audit writers (the group
    commit, the integrator, the archiver), so they wait on a kernel lock, not in SQLite's
    sleeping busy handler. Elsewhere: nothing."""
    path = lock_path(engine)
    if path is None:
        yield
        return
    with open(path, "a+b") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


class AuditWriter:
    """One per process and event loop; `write` returns once the record is committed."""

    def __init__(self, engine: Engine, *, batch_max: int = 512) -> None:
        self._engine = engine
        self._batch_max = batch_max
        self._sqlite = engine.dialect.name == "sqlite"
        marker = "?" if engine.dialect.paramstyle == "qmark" else "%s"
        self._row_markers = f"({', '.join([marker] * len(COLUMNS))})"
        columns = ", ".join(COLUMNS)  # the table's own column names, not input
        self._insert_head = f"INSERT INTO exchange_record ({columns}) VALUES "  # noqa: S608
        self._statements: dict[int, str] = {}
        self._copy = f"COPY exchange_record ({columns}) FROM STDIN"  # the table's own columns
        self._lock_path = lock_path(engine)
        self._lock_file: Any = None
        self._connection: Any = None
        self._async_connection: Any = None  # PostgreSQL: psycopg's asyncio connection
        self._pending: list[tuple[Record, asyncio.Future[None]]] = []
        self._flusher: asyncio.Task[None] | None = None
        self._closed = False
        self.batches = 0  # observability: how many commits, how many records
        self.records = 0

    async def write(self, record: Record) -> None:
        """Return once `record` is committed; AuditUnavailable if it cannot be."""
        if self._closed:
            raise AuditUnavailable("the audit writer is stopped")
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._pending.append((record, future))
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.create_task(self._flush())
        await future

    async def aclose(self) -> None:
        """Commit what is pending, then refuse new records and release the connection."""
        self._closed = True
        if self._flusher is not None:
            await self._flusher
        await self._flush()
        if self._async_connection is not None:
            with contextlib.suppress(Exception):
                await self._async_connection.close()
            self._async_connection = None
        if self._connection is not None:
            with contextlib.suppress(Exception):
                self._connection.close()
            self._connection = None
        if self._lock_file is not None:
            self._lock_file.close()
            self._lock_file = None

    async def _flush(self) -> None:
        while self._pending:
            # Let every request that is ready in this turn of the loop join the batch.
            await asyncio.sleep(0)
            batch = self._pending[: self._batch_max]
            del self._pending[: self._batch_max]
            errors = await self._store([row for row, _ in batch])
            for (_, future), error in zip(batch, errors, strict=True):
                if future.done():
                    continue
                if error is None:
                    future.set_result(None)
                else:
                    future.set_exception(AuditUnavailable(str(error)))

    async def _store(self, rows: list[Record]) -> list[BaseException | None]:
        """Commit the batch; each row's error, if the database refused it."""
        error = await self._commit(rows)
        if error is None:
            return [None] * len(rows)
        if len(rows) == 1 or not isinstance(error, DATA_ERRORS):
            return [error] * len(rows)
        # The database refused a value, not the connection: one bad row must not fail the
        # records of other callers that happened to share its batch.
        return [await self._commit([row]) for row in rows]

    def _statement(self, rows: int) -> str:
        """INSERT … VALUES (…), (…): one statement, one step, for the whole batch."""
        statement = self._statements.get(rows)
        if statement is None:
            statement = self._insert_head + ", ".join([self._row_markers] * rows)
            self._statements[rows] = statement
        return statement

    def _values(self, record: Record) -> list[Any]:
        values: list[Any] = list(_VALUES(record))
        for index, value in enumerate(values):
            # Paths and headers are the caller's: PostgreSQL cannot store NUL in text.
            if isinstance(value, str) and "\x00" in value:
                values[index] = value.replace("\x00", "\ufffd")
        moment = values[_TIME]
        if self._sqlite and isinstance(moment, datetime):  # SQLAlchemy's format for SQLite, UTC
            values[_TIME] = moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")
        details = values[_DETAILS]
        if details is not None:
            values[_DETAILS] = orjson.dumps(details).decode()
        if values[_KIND] is not None:
            values[_KIND] = str(values[_KIND])  # a StrEnum's value
        return values

    @contextlib.contextmanager
    def _turn(self) -> Iterator[None]:
        """Exclusive use of the database file among this host's writers (SQLite only)."""
        if self._lock_path is None:
            yield
            return
        if self._lock_file is None:
            self._lock_file = open(self._lock_path, "a+b")  # noqa: SIM115 - kept open
        fcntl.flock(self._lock_file, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(self._lock_file, fcntl.LOCK_UN)

    async def _commit(self, rows: list[Record]) -> BaseException | None:
        """Insert and commit rows with one statement; the error, if the database refused it."""
        try:
            if self._sqlite:
                parameters: list[Any] = []
                for row in rows:
                    parameters += self._values(row)
                # A local file: inserting and flushing a batch takes well under a millisecond,
                # less than handing it to a thread and back would cost under load.
                self._execute_sqlite(self._statement(len(rows)), parameters)
            else:
                await self._execute_postgres([self._values(row) for row in rows])
            self.batches += 1
            self.records += len(rows)
            return None
        except Exception as exc:  # a database failure fails the requests of these rows
            log.error("audit commit of %d records failed: %s", len(rows), type(exc).__name__)
            await self._recover(keep=isinstance(exc, DATA_ERRORS))
            return exc

    def _execute_sqlite(self, statement: str, parameters: list[Any]) -> None:
        if self._connection is None:
            self._connection = self._engine.raw_connection()
        with self._turn():
            cursor = self._connection.cursor()
            try:
                cursor.execute(statement, parameters)
                self._connection.commit()
            finally:
                cursor.close()

    async def _execute_postgres(self, rows: list[list[Any]]) -> None:
        """COPY the batch, awaited on the event loop through psycopg's asyncio connection.

        COPY rather than a multi-row INSERT: psycopg does not cache the parsing of statements
        that large, and PostgreSQL parses and plans each; COPY costs about a quarter of the
        server's and a tenth of the client's CPU per record (bench/audit.py).
        """
        if self._async_connection is None:
            url = self._engine.url.set(drivername="postgresql")
            self._async_connection = await psycopg.AsyncConnection.connect(
                url.render_as_string(hide_password=False)
            )
        async with (
            self._async_connection.cursor() as cursor,
            cursor.copy(self._copy) as copy,
        ):
            for values in rows:
                await copy.write_row(values)
        await self._async_connection.commit()

    async def _recover(self, *, keep: bool) -> None:
        """Roll back; after anything but a refused value, start afresh on a new connection."""
        if self._connection is not None:
            with contextlib.suppress(Exception):
                self._connection.rollback()
            if not keep:
                with contextlib.suppress(Exception):
                    self._connection.close()
                self._connection = None
        if self._async_connection is not None:
            with contextlib.suppress(Exception):
                await self._async_connection.rollback()
            if not keep:
                with contextlib.suppress(Exception):
                    await self._async_connection.close()
                self._async_connection = None
