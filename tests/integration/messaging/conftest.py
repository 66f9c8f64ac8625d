"""Hubs for the messaging tests: one per broker, the embedded log (SQLite, PostgreSQL) and Kafka."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from tests.conftest import RunningHub, start_hub
from tests.kafka import running_broker


@pytest.fixture(scope="module")
def kafka_bootstrap() -> Iterator[str]:
    """A real Kafka-protocol broker (tansu) for the module's tests."""
    with running_broker() as broker:
        yield broker.bootstrap


@pytest.fixture(scope="module", params=["sqlite", "postgresql", "kafka"])
def mhub(
    request: pytest.FixtureRequest, database_urls: Callable[[str], str]
) -> Iterator[RunningHub]:
    """A hub per broker: the embedded log on SQLite and on PostgreSQL, and Kafka (tansu)."""
    if request.param == "kafka":
        bootstrap = request.getfixturevalue("kafka_bootstrap")
        yield from start_hub(database_urls("sqlite"), broker="kafka", kafka_bootstrap=bootstrap)
    else:
        yield from start_hub(database_urls(request.param))
