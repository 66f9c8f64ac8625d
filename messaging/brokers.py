"""The broker a hub process uses, by its settings (LGSP_BROKER, LGSP_KAFKA_BOOTSTRAP,
LGSP_KAFKA_TOPIC_PREFIX)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal

from sqlalchemy.engine import Engine

from messaging.broker import Broker


def create_broker(
    kind: Literal["database", "kafka"],
    *,
    engine: Engine,
    bootstrap: str | None,
    prefix: str,
    on_created: Callable[[str], None] | None = None,
) -> Broker:
    """`database`: the log in the hub's own database (`engine`); `kafka`: the cluster at
    `bootstrap`, its topics named `<prefix><topic>`."""
    if kind == "kafka":
        from messaging.kafka_broker import KafkaBroker  # kafka-python only when configured

        if not bootstrap:
            raise ValueError("the kafka broker needs a bootstrap address (host:port)")
        return KafkaBroker(bootstrap, prefix, on_created=on_created)
    if kind == "database":
        from messaging.database_broker import DatabaseBroker

        return DatabaseBroker(engine)
    raise ValueError(f"unknown broker {kind!r}: database or kafka")
