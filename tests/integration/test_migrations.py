"""The migrations build exactly the schema the models describe, on SQLite and PostgreSQL."""

from __future__ import annotations

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlmodel import SQLModel

from gateway.db import make_engine, migrate
from tests.conftest import BACKENDS


@pytest.mark.parametrize("backend", BACKENDS)
def test_migrations_match_the_models_and_can_run_twice(backend, database_urls):
    engine = make_engine(database_urls(backend))
    try:
        migrate(engine)
        migrate(engine)  # a second replica starting finds nothing to do
        with engine.connect() as connection:
            diff = compare_metadata(MigrationContext.configure(connection), SQLModel.metadata)
        assert diff == [], f"models and migrations differ: {diff}"
    finally:
        engine.dispose()


def test_workers_starting_together_migrate_one_after_the_other(tmp_path):
    """`lgsp serve --workers N` on a fresh SQLite file: every worker's migration succeeds."""
    import subprocess
    import sys

    url = f"sqlite:///{tmp_path / 'fresh.db'}"
    code = "import sys; from gateway.db import make_engine, migrate; " \
        "migrate(make_engine(sys.argv[1]))"  # fmt: skip
    processes = [
        subprocess.Popen([sys.executable, "-c", code, url], stderr=subprocess.PIPE, text=True)
        for _ in range(4)
    ]
    outcomes = [(p.communicate(timeout=60)[1], p.returncode) for p in processes]
    assert [err for err, status in outcomes if status != 0] == []


@pytest.mark.parametrize("backend", BACKENDS)
def test_decisions_taken_before_the_history_existed_start_it(backend, database_urls):
    from alembic import command
    from sqlalchemy import text

    from gateway.db.migrate import alembic_config

    engine = make_engine(database_urls(backend))
    try:
        config = alembic_config()
        with engine.begin() as connection:
            config.attributes["connection"] = connection
            command.upgrade(config, "0004")
            connection.execute(
                text(
                    "INSERT INTO agency (code, name, description) "
                    "VALUES ('000.00.12.H12', 'So', '')"
                )
            )
            for n, status in enumerate(["REFUSED", "APPROVED", "REQUESTED"], start=1):
                connection.execute(
                    text(
                        'INSERT INTO "grant" (consumer, service, versions, purposes, fields, '
                        "description, status, reason, legal_basis, decided_by, decided_at, "
                        "created_at) VALUES (:c, 's', '[\"*\"]', '[]', '[\"*\"]', '', :status, "
                        ":reason, :basis, 'admin', :at, :at)"
                    ),
                    {"c": f"app-{n}", "status": status, "at": "2026-11-01 00:00:00",
                     "reason": "r" if status == "REFUSED" else None,
                     "basis": "b" if status == "REFUSED" else None},
                )  # fmt: skip
        migrate(engine)
        with engine.connect() as connection:
            rows = connection.execute(
                text(
                    "SELECT g.consumer, d.status, d.reason, d.legal_basis, d.decided_by "
                    'FROM grant_decision d JOIN "grant" g ON g.id = d.grant_id ORDER BY d.id'
                )
            ).all()
        assert [tuple(r) for r in rows] == [
            ("app-1", "REFUSED", "r", "b", "admin"),
            ("app-2", "APPROVED", None, None, "admin"),
        ]
    finally:
        engine.dispose()
