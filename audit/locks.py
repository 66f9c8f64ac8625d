"""One process at a time: a lock file beside the database on SQLite, an advisory lock on PostgreSQL.

Used by the integrator (audit/log.py) and the archiver (audit/retention.py).
"""

from __future__ import annotations

import contextlib
import fcntl
from collections.abc import Iterator

from sqlalchemy import text
from sqlalchemy.engine import Engine


@contextlib.contextmanager
def exclusive(engine: Engine, name: str, key: int, *, wait: bool) -> Iterator[bool]:
    """Whether this process holds the lock `name` (SQLite: the file `<database>.<name>-lock`) or
    `key` (PostgreSQL: a session advisory lock on a connection of its own). With `wait` it waits
    for the lock; without, it yields False at once when another process holds it. An in-memory
    SQLite database or another dialect: always True."""
    database = engine.url.database
    if engine.dialect.name == "sqlite":
        if not database or database == ":memory:":
            yield True
            return
        with open(f"{database}.{name}-lock", "a+b") as lock:
            try:
                fcntl.flock(lock, fcntl.LOCK_EX if wait else fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                yield False
                return
            try:
                yield True
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)
        return
    if engine.dialect.name != "postgresql":
        yield True
        return
    with engine.connect() as connection:
        take = "pg_advisory_lock" if wait else "pg_try_advisory_lock"
        got = connection.execute(text(f"SELECT {take}(:k)"), {"k": key}).scalar()
        connection.commit()
        if got is False:
            yield False
            return
        try:
            yield True
        finally:
            try:
                connection.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": key})
                connection.commit()
            except Exception:  # a broken connection: dropping it releases the lock
                connection.invalidate()
