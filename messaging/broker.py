"""The broker interface: two backends (`database`, `kafka`) behind one set of calls.

Calls block (kafka-python is a blocking client); the relay and delivery run them in threads.
Every call fails with an error of messaging/errors.py, whatever the backend's client raised.
A topic has numbered partitions; each partition is a log whose offsets start at 0. The hub
chooses the partition itself (Kafka's murmur2 of the key, see `partition_for`), so a message
lands in the same partition on either backend and external Kafka consumers see the usual layout.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

from kafka.partitioner.default import murmur2


@dataclass(frozen=True, slots=True)
class Outgoing:
    """A message handed to the broker by the relay."""

    topic: str
    partition: int
    key: str | None
    value: bytes  # the message's JSON document
    message_id: str
    timestamp_ms: int  # when the hub accepted it
    headers: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Received:
    """A message read back from a partition."""

    topic: str
    partition: int
    offset: int
    key: str | None
    value: bytes
    message_id: str
    timestamp_ms: int
    headers: dict[str, str] = field(default_factory=dict)


class Broker(Protocol):
    name: str  # "database" or "kafka"

    def ensure_topic(self, topic: str, partitions: int, retention_ms: int) -> None:
        """Create the topic if it is missing (an existing topic is left as it is)."""

    def produce(self, batch: Sequence[Outgoing]) -> None:
        """Store every message, acknowledged by all in-sync replicas, or raise an error of
        messaging/errors.py: Transient (try again later) or Terminal (naming the topic that
        cannot take its messages until someone changes it).

        Order within a partition is the order of `batch`. After a failure the relay sends the
        batch again: the database backend stores each message id once; on Kafka a message may
        then be stored twice, and delivery recognises it by its id.
        """

    def fetch(
        self, topic: str, partition: int, offset: int, *, max_records: int, wait_seconds: float
    ) -> list[Received]:
        """Messages from `offset` on, waiting up to `wait_seconds` when there are none yet."""

    def end_offset(self, topic: str, partition: int) -> int:
        """The offset the next message of the partition will get."""

    def offset_for_time(self, topic: str, partition: int, timestamp_ms: int) -> int:
        """The first offset whose message was accepted at or after the time (else the end)."""

    def close(self) -> None: ...


def kafka_name(prefix: str, topic: str) -> str:
    """The Kafka topic that carries a hub topic (`lgsp.dossier.status`)."""
    return f"{prefix}{topic}"


def partition_for(key: str | None, partitions: int) -> int:
    """Kafka's default partitioner: murmur2 of the key's bytes; keyless messages spread."""
    if key is None:
        return random.randrange(partitions)
    hashed: int = murmur2(key.encode())
    return (hashed & 0x7FFFFFFF) % partitions
