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
