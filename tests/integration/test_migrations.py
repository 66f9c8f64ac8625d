"""The migrations build exactly the schema the models describe, on SQLite and PostgreSQL."""

from __future__ import annotations

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlmodel import SQLModel

from gateway.db import make_engine
from gateway.migrate import migrate
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
