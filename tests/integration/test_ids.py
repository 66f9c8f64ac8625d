"""An id, once given, is never given again: in every table whose ids the database hands out, the
id of a row deleted stays behind it, also when it was the highest (SQLite's AUTOINCREMENT,
PostgreSQL's sequences), so what named the old row never names a new one."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from sqlalchemy import delete
from sqlalchemy.engine import Engine

from gateway.db import make_engine, migrate
from tests.conftest import BACKENDS
from tests.integration.rows import (
    Rows,
    disable_append_only,
    generated_key,
    tables_with_generated_keys,
)


@pytest.fixture(scope="module", params=BACKENDS)
def migrated(
    request: pytest.FixtureRequest, database_urls: Callable[[str], str]
) -> Iterator[Engine]:
    engine = make_engine(database_urls(request.param))
    migrate(engine)
    yield engine
    engine.dispose()


def test_every_table_with_generated_ids_is_checked() -> None:
    """A new table with generated ids joins the test below by itself; this pins today's list."""
    assert tables_with_generated_keys() == sorted(
        [
            "connector", "service", "consumer", "apikey", "grant", "principal", "topic",
            "subscription", "schema_document", "schema_version", "message", "dead_letter",
            "exchange_record", "audit_checkpoint", "audit_archive", "grant_decision",
            "oauth_client", "token_signing_key",
        ]
    )  # fmt: skip


@pytest.mark.parametrize("table", tables_with_generated_keys())
def test_the_id_of_a_deleted_row_is_not_given_again(migrated: Engine, table: str) -> None:
    with migrated.connect() as connection:
        transaction = connection.begin()
        try:
            rows = Rows(connection)
            first = rows.insert(table)  # the table's highest id: nothing else is in it
            disable_append_only(connection)
            key = generated_key(rows.table(table))
            assert key is not None
            connection.execute(delete(rows.table(table)).where(key == first))
            second = rows.insert(table)
            assert second > first, f"{table}: id {first} deleted, then given again as {second}"
        finally:
            transaction.rollback()
