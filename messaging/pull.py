"""Group subscriptions read through the hub (the pull API), on either backend.

A consumer group reads from its stored positions and commits new ones when it has processed
what it read (Kafka's consumer model, over HTTP): until it commits, the same messages come back.
"""

from __future__ import annotations

import orjson
from sqlalchemy.engine import Engine

from messaging import positions
from messaging.broker import Broker, Received
from messaging.entries import SubscriptionEntry


def read(
    engine: Engine, broker: Broker, entry: SubscriptionEntry, *, max_records: int
) -> tuple[list[Received], dict[int, int]]:
    """Up to `max_records` messages after the committed positions, and the positions to commit
    once they are processed. Does not wait: the caller waits between reads, in its event loop."""
    following = dict(positions.starting(engine, broker, entry))
    found: list[Received] = []
    for partition in range(entry.partitions):
        room = max_records - len(found)
        if room <= 0:
            break
        for message in broker.fetch(
            entry.topic, partition, following[partition], max_records=room, wait_seconds=0
        ):
            following[partition] = message.offset + 1
            if entry.filter is None or entry.accepts(orjson.loads(message.value)):
                found.append(message)
    return found, following


def commit(
    engine: Engine, broker: Broker, entry: SubscriptionEntry, new: dict[int, int]
) -> str | None:
    """Store committed positions; what is wrong with them, if anything (nothing is stored then)."""
    for partition, offset in new.items():
        if not 0 <= partition < entry.partitions:
            last = entry.partitions - 1
            return f"/positions/{partition}: topic {entry.topic} has partitions 0 to {last}"
        end = broker.end_offset(entry.topic, partition)
        if not 0 <= offset <= end:
            return f"/positions/{partition}: the offset must be between 0 and the end, {end}"
    positions.save(engine, entry.name, new)
    return None
