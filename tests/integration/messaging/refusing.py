"""A broker that refuses some topics for good, as a misconfigured broker does, for the tests of
what the hub does then (the embedded broker has no misconfiguration of its own)."""

from __future__ import annotations

from collections.abc import Sequence

from messaging.broker import Outgoing, Received
from messaging.database_broker import DatabaseBroker
from messaging.errors import TopicMisconfigured


class Refusing:
    """The database broker, refusing the topics in `broken` for good. `where`: at
    `ensure_topic` (as Kafka refuses a topic with too few partitions), or at `produce` with
    an error that names no topic (the relay must find whose it is)."""

    def __init__(self, inner: DatabaseBroker, where: str) -> None:
        self.inner = inner
        self.where = where
        self.name = inner.name
        self.broken: set[str] = set()

    def _refuse(self, topics: set[str]) -> None:
        refused = sorted(topics & self.broken)
        if refused:
            named = refused[0] if self.where == "ensure" else None
            raise TopicMisconfigured(f"the broker's {refused} have 1 partition", topic=named)

    def ensure_topic(self, topic: str, partitions: int, retention_ms: int) -> None:
        if self.where == "ensure":
            self._refuse({topic})
        self.inner.ensure_topic(topic, partitions, retention_ms)

    def produce(self, batch: Sequence[Outgoing]) -> None:
        self._refuse({m.topic for m in batch})
        self.inner.produce(batch)

    def fetch(
        self, topic: str, partition: int, offset: int, *, max_records: int, wait_seconds: float
    ) -> list[Received]:
        return self.inner.fetch(
            topic, partition, offset, max_records=max_records, wait_seconds=wait_seconds
        )

    def end_offset(self, topic: str, partition: int) -> int:
        return self.inner.end_offset(topic, partition)

    def offset_for_time(self, topic: str, partition: int, timestamp_ms: int) -> int:
        return self.inner.offset_for_time(topic, partition, timestamp_ms)

    def close(self) -> None:
        self.inner.close()
