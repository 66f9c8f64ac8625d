"""Group commit: concurrent records share commits; each write returns only once committed."""

from __future__ import annotations

import asyncio
from dataclasses import replace

import pytest
from sqlalchemy import Engine, text

from audit.errors import AuditUnavailable
from audit.records import Record, RecordKind
from audit.writer import AuditWriter
from gateway.db import make_engine, migrate
from tests.conftest import BACKENDS


def _row(n: int) -> Record:
    return Record(kind=RecordKind.EXCHANGE, request_id=f"r{n}", hub_status=200, details={"n": n})


@pytest.fixture(params=BACKENDS)
def engine(request, database_urls):
    engine = make_engine(database_urls(request.param))
    migrate(engine)
    yield engine
    engine.dispose()


def _count(engine: Engine) -> int:
    with engine.connect() as connection:
        return int(connection.execute(text("SELECT count(*) FROM exchange_record")).scalar_one())


def test_concurrent_writes_share_commits_and_are_durable_when_awaited(engine):
    writer = AuditWriter(engine, batch_max=64)
    committed_when_returned: list[int] = []

    async def one(n: int) -> None:
        await writer.write(_row(n))
        # Our own record is visible to another connection as soon as write() returns.
        with engine.connect() as connection:
            found = connection.execute(
                text("SELECT count(*) FROM exchange_record WHERE request_id = :r"), {"r": f"r{n}"}
            ).scalar_one()
        committed_when_returned.append(found)

    async def main() -> None:
        await asyncio.gather(*(one(n) for n in range(300)))
        await writer.aclose()

    asyncio.run(main())
    assert committed_when_returned == [1] * 300
    assert _count(engine) == 300 == writer.records
    assert writer.batches < 150  # shared commits, not one per record


def test_records_read_back_as_the_orm_wrote_them(engine):
    """The raw insert stores values exactly as the ORM would (times, kinds, JSON details)."""
    from sqlmodel import Session, select

    from audit.records import ExchangeRecord

    writer = AuditWriter(engine)
    row = _row(7)

    async def main() -> None:
        await writer.write(row)
        await writer.aclose()

    asyncio.run(main())
    with Session(engine) as session:
        stored = session.exec(select(ExchangeRecord).where(ExchangeRecord.id == row.id)).one()
        assert stored.kind == RecordKind.EXCHANGE
        assert stored.time == row.time
        assert stored.details == {"n": 7}
        later = session.exec(select(ExchangeRecord).where(ExchangeRecord.time >= row.time)).all()
        assert [r.id for r in later] == [row.id]


def test_close_commits_what_is_pending_and_refuses_more(engine):
    writer = AuditWriter(engine)

    async def main() -> None:
        tasks = [asyncio.ensure_future(writer.write(_row(n))) for n in range(50)]
        await asyncio.sleep(0)
        await writer.aclose()
        await asyncio.gather(*tasks)
        with pytest.raises(AuditUnavailable):
            await writer.write(_row(51))

    asyncio.run(main())
    assert _count(engine) == 50


def test_a_refused_row_fails_alone_and_the_writer_keeps_going(engine):
    """One row the database refuses does not fail the other callers sharing its batch."""
    writer = AuditWriter(engine)

    async def main() -> None:
        # A row the type forbids, on purpose: NOT NULL, the database refuses it.
        bad = replace(_row(1), id=None)  # type: ignore[arg-type]
        results = await asyncio.gather(
            writer.write(_row(2)), writer.write(bad), writer.write(_row(3)), return_exceptions=True
        )
        assert results[0] is None and results[2] is None
        assert isinstance(results[1], AuditUnavailable)
        await writer.write(_row(4))  # and the writer goes on
        await writer.aclose()

    asyncio.run(main())
    assert _count(engine) == 3


def test_nul_characters_from_callers_are_stored_not_refused(engine):
    """A path or header with NUL (which PostgreSQL's text refuses) still gets its record."""
    writer = AuditWriter(engine)
    row = replace(_row(5), service="svc\x00x", error="no service svc\x00x")

    async def main() -> None:
        await writer.write(row)
        await writer.aclose()

    asyncio.run(main())
    with engine.connect() as connection:
        stored = connection.execute(
            text("SELECT service FROM exchange_record WHERE id = :i"), {"i": row.id}
        ).scalar_one()
    assert stored == "svc\ufffdx"
