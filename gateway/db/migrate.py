"""Bring the database schema up to date with Alembic (several replicas may start at once)."""

from __future__ import annotations

import contextlib
import fcntl
from collections.abc import Iterator
from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import text
from sqlalchemy.engine import Engine

MIGRATIONS = Path(__file__).with_name("migrations")
MIGRATION_LOCK = 0x4C475350  # "LGSP": one migrating replica at a time


def alembic_config() -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    return config


@contextlib.contextmanager
def _host_lock(engine: Engine) -> Iterator[None]:
    """For SQLite: worker processes starting together migrate one after the other."""
    database = engine.url.database
    if engine.dialect.name != "sqlite" or not database or database == ":memory:":
        yield
        return
    with open(f"{database}.migrate-lock", "a+b") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def migrate(engine: Engine, revision: str = "head") -> None:
    """Upgrade to the newest revision (or `revision`), one replica at a time (a lock on either
    backend), in one transaction: a process that dies half way leaves the database as it was."""
    config = alembic_config()
    with _host_lock(engine), engine.connect() as connection:
        sqlite = connection.dialect.name == "sqlite"
        if sqlite:
            # SQLite's own procedure for schema changes (sqlite.org/lang_altertable.html): foreign
            # keys off, or dropping a rebuilt table would delete or refuse its children's rows
            # (the pragma is ignored inside a transaction); then one explicit transaction, as
            # Python's sqlite3 would commit each DDL statement on its own.
            connection.exec_driver_sql("PRAGMA foreign_keys=OFF")
            connection.commit()
            connection.exec_driver_sql("BEGIN IMMEDIATE")
        try:
            if not sqlite:
                connection.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": MIGRATION_LOCK})
            config.attributes["connection"] = connection
            command.upgrade(config, revision)
            if sqlite:
                broken = connection.exec_driver_sql("PRAGMA foreign_key_check").all()
                if broken:
                    raise RuntimeError(f"the migration left rows without their parent: {broken}")
            connection.commit()
        finally:
            connection.rollback()  # nothing to undo once committed
            if sqlite:
                connection.exec_driver_sql("PRAGMA foreign_keys=ON")
                connection.commit()
