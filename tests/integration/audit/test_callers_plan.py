"""The callers view reads one service version's records through its index on both databases,
never by scanning the exchange log."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import event
from sqlmodel import Session

from audit import queries
from gateway.db import make_engine, migrate
from registry.types import utcnow
from tests.conftest import BACKENDS

INDEX = "ix_exchange_service_version_time"


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("versions", [["v1"], ["v1", "v2", "v3"]])
def test_the_callers_query_uses_its_index(
    backend: str, versions: list[str], database_urls: Callable[[str], str]
) -> None:
    engine = make_engine(database_urls(backend))
    migrate(engine)
    statements: list[tuple[str, Any]] = []

    def seen(_conn: Any, _cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
        if "exchange_record" in statement:
            statements.append((statement, parameters))

    event.listen(engine, "before_cursor_execute", seen)
    try:
        with Session(engine) as session:
            found = queries.callers(
                session, service="dan-cu", versions=versions, since=utcnow() - timedelta(days=30)
            )
    finally:
        event.remove(engine, "before_cursor_execute", seen)
    assert found == []
    ((statement, parameters),) = statements
    with engine.connect() as connection:
        if backend == "sqlite":
            plan = [
                row[3]
                for row in connection.exec_driver_sql(f"EXPLAIN QUERY PLAN {statement}", parameters)
            ]
        else:
            # An empty table is cheapest to scan: forbid that, and the index must serve.
            connection.exec_driver_sql("SET enable_seqscan = off")
            plan = [
                row[0] for row in connection.exec_driver_sql(f"EXPLAIN {statement}", parameters)
            ]
    text = "\n".join(plan)
    assert INDEX in text, text
    assert "SCAN exchange_record\n" not in text + "\n" and "Seq Scan" not in text, text
    engine.dispose()
