"""Group commit: concurrent records share commits, each write returns only once committed."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import text

from audit.records import new_record_id
from audit.writer import AuditUnavailable, AuditWriter
from gateway.db import make_engine
from gateway.migrate import migrate
from registry.types import utcnow


def _row(n: int) -> dict[str, object]:
    return {
        "id": new_record_id(),
        "kind": "exchange",
        "time": utcnow(),
        "request_id": f"r{n}",
        "hub_status": 200,
    }


@pytest.fixture
def engine(tmp_path):
    engine = make_engine(f"sqlite:///{tmp_path / 'audit.db'}")
    migrate(engine)
    yield engine
    engine.dispose()


def _count(engine) -> int:
    with engine.connect() as connection:
        return int(connection.execute(text("SELECT count(*) FROM exchange_record")).scalar_one())


def test_concurrent_writes_share_commits_and_are_durable_when_awaited(engine):
    writer = AuditWriter(engine, batch_max=64)
    writer.start()
    committed_when_returned: list[int] = []

    async def one(n: int) -> None:
        await writer.write(_row(n))
        # Our own record is visible to a fresh connection as soon as write() returns.
        with engine.connect() as connection:
            found = connection.execute(
                text("SELECT count(*) FROM exchange_record WHERE request_id = :r"), {"r": f"r{n}"}
            ).scalar_one()
        committed_when_returned.append(found)

    async def main() -> None:
        await asyncio.gather(*(one(n) for n in range(500)))

    asyncio.run(main())
    writer.stop()
    assert committed_when_returned == [1] * 500
    assert _count(engine) == 500 == writer.records
    assert writer.batches < 250  # shared commits, not one per record


def test_stop_commits_what_is_queued(engine):
    writer = AuditWriter(engine)
    writer.start()

    async def main() -> None:
        tasks = [asyncio.ensure_future(writer.write(_row(n))) for n in range(50)]
        await asyncio.sleep(0)
        await asyncio.to_thread(writer.stop)
        await asyncio.gather(*tasks)

    asyncio.run(main())
    assert _count(engine) == 50


def test_a_failed_commit_fails_every_waiting_write(engine):
    writer = AuditWriter(engine)
    writer.start()

    async def main() -> None:
        bad = {**_row(1), "kind": None, "id": None}  # NOT NULL columns: the insert fails
        with pytest.raises(AuditUnavailable):
            await writer.write(bad)
        await writer.write(_row(2))  # the writer keeps going after a failure

    asyncio.run(main())
    writer.stop()
    assert _count(engine) == 1
