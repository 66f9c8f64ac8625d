"""Where each subscription stands in each partition: the next offset it delivers (or reads)."""

from __future__ import annotations

from sqlalchemy import insert, select, update
from sqlalchemy.engine import Engine

from messaging.broker import Broker
from messaging.entries import SubscriptionEntry
from messaging.models import Position
from registry.models import Subscription
from registry.types import utcnow

_TABLE = Position.__table__  # type: ignore[attr-defined]


def load(engine: Engine, subscription: str) -> dict[int, int]:
    with engine.connect() as connection:
        rows = connection.execute(
            select(_TABLE.c.partition, _TABLE.c.offset).where(_TABLE.c.subscription == subscription)
        )
        return {int(row[0]): int(row[1]) for row in rows}


def save(
    engine: Engine, subscription: str, positions: dict[int, int], *, generation: int | None = None
) -> bool:
    """Store the given partitions' positions (others are left as they are).

    With `generation`, only while the subscription still exists at that replay generation: a
    delivery that a replay (or a deletion) made stale must not overwrite what replaced it. The
    subscription's row is read with a share lock, which waits for a replay in progress.
    """
    now = utcnow()
    with engine.begin() as connection:
        if generation is not None:
            sub = Subscription.__table__  # type: ignore[attr-defined]
            current = connection.execute(
                select(sub.c.replay_generation)
                .where(sub.c.name == subscription)
                .with_for_update(read=True)
            ).scalar()
            if current != generation:
                return False
        for partition, offset in positions.items():
            moved = connection.execute(
                update(_TABLE)
                .where(_TABLE.c.subscription == subscription)
                .where(_TABLE.c.partition == partition)
                .values(offset=offset, updated_at=now)
            )
            if moved.rowcount == 0:
                connection.execute(
                    insert(_TABLE).values(
                        subscription=subscription,
                        partition=partition,
                        offset=offset,
                        updated_at=now,
                    )
                )
    return True


def starting(engine: Engine, broker: Broker, entry: SubscriptionEntry) -> dict[int, int]:
    """The stored positions; a partition without one starts at the subscription's creation
    (its first message accepted since), and that start is stored at once."""
    found = load(engine, entry.name)
    missing = {
        p: broker.offset_for_time(entry.topic, p, entry.created_ms)
        for p in range(entry.partitions)
        if p not in found
    }
    if missing:
        save(engine, entry.name, missing)
        found.update(missing)
    return found
