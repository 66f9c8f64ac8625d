"""Fixtures of the audit tests: real logs (logs.py) copied per test, and migrated databases."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from sqlalchemy.engine import Engine

from gateway.db import make_engine, migrate
from tests.conftest import BACKENDS
from tests.integration.audit.logs import Log, clone, new_log, populate, template


@pytest.fixture(params=BACKENDS)
def fresh_log(request: pytest.FixtureRequest, database_urls: Callable[[str], str]) -> Iterator[Log]:
    """A log with nothing but its start and stop records."""
    log = new_log(request.param, database_urls(request.param))
    yield log
    log.engine.dispose()


@pytest.fixture(scope="module", params=BACKENDS)
def original(request: pytest.FixtureRequest, database_urls: Callable[[str], str]) -> Log:
    """A populated log, built once per backend and module; each test gets a copy (`log`)."""
    return template(populate(new_log(request.param, database_urls(request.param))))


@pytest.fixture
def log(original: Log, request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Log]:
    made = clone(original, request, tmp_path)
    yield made
    made.engine.dispose()


@pytest.fixture(params=BACKENDS)
def url(request: pytest.FixtureRequest, database_urls: Callable[[str], str]) -> str:
    """A fresh database's URL, per backend."""
    return database_urls(request.param)


@pytest.fixture
def engine(url: str) -> Iterator[Engine]:
    """`url`'s database, migrated."""
    engine = make_engine(url)
    migrate(engine)
    yield engine
    engine.dispose()
