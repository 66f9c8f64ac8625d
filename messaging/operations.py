"""What an operator does to a running subscription: read and move its positions (replay), and
look at and redeliver its dead letters; and what the hub does by itself, as an operator would
(`replay_lost_topic`, `disable_gone`).

Like registry operations, an operator's actions add and flush; the caller records the action and
commits, so an action and its audit record are one transaction. The hub's own actions commit
theirs with their record, by "hub". Broker and database calls block: call them from a thread.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from sqlalchemy import CursorResult, Executable, delete, update
from sqlalchemy.engine import Engine
from sqlalchemy.sql.dml import Update
from sqlmodel import Session, col, select

from audit.changes import record_change
from messaging.broker import Broker
from messaging.models import DeadLetter, DeadLetterState, Position
from registry import revision
from registry.crud.errors import NotFound
from registry.models import Subscription
from registry.types import SubscriptionStatus, utcnow


@dataclass(frozen=True, slots=True)
class PartitionPosition:
    """Where a subscription stands in one partition; end offset and lag need the broker."""

    partition: int
    position: int | None  # the next offset to deliver; None before delivery first stored one
    end_offset: int | None  # the offset the partition's next message will get
    lag: int | None  # messages not yet delivered

    def to_json(self) -> dict[str, int | None]:
        return {
            "partition": self.partition,
            "position": self.position,
            "end_offset": self.end_offset,
            "lag": self.lag,
        }


def stored_positions(*, session: Session, subscription: str) -> dict[int, int]:
    rows = session.exec(select(Position).where(Position.subscription == subscription))
    return {row.partition: row.offset for row in rows}


def positions(
    *,
    session: Session,
    subscription: Subscription,
    partitions: int,
    broker: Broker | None = None,
) -> list[PartitionPosition]:
    """Per partition: the stored position and, with a broker, the end offset and the lag."""
    stored = stored_positions(session=session, subscription=subscription.name)
    out = []
    for partition in range(partitions):
        position = stored.get(partition)
        end = None if broker is None else broker.end_offset(subscription.topic, partition)
        lag = None if end is None or position is None else max(end - position, 0)
        out.append(PartitionPosition(partition, position, end, lag))
    return out


def offsets_at(*, broker: Broker, topic: str, partitions: int, when: datetime) -> dict[int, int]:
    """Per partition, the first offset accepted at or after `when` (the end if none was)."""
    timestamp_ms = int(when.timestamp() * 1000)
    return {p: broker.offset_for_time(topic, p, timestamp_ms) for p in range(partitions)}


def set_positions(
    *, session: Session, subscription: Subscription, offsets: Mapping[int, int]
) -> int:
    """Store where delivery resumes in each given partition, and bump the subscription's
    replay generation so every replica's delivery restarts from them; the new generation.

    Partitions not given keep their position.
    """
    now = utcnow()
    for partition, offset in sorted(offsets.items()):
        row = session.get(Position, (subscription.name, partition))
        if row is None:
            row = Position(subscription=subscription.name, partition=partition, offset=offset)
        row.offset = offset
        row.updated_at = now
        session.add(row)
    # In SQL, so two replays at once both count (the generation only ever grows).
    session.execute(
        update(Subscription)
        .where(col(Subscription.id) == subscription.id)
        .values(replay_generation=col(Subscription.replay_generation) + 1)
    )
    session.flush()
    session.refresh(subscription)
    return subscription.replay_generation


def list_dead_letters(
    *,
    session: Session,
    subscription: str,
    state: DeadLetterState | None = DeadLetterState.DEAD,
    limit: int = 100,
    after_id: int | None = None,
) -> list[DeadLetter]:
    """Oldest first, a page at a time: the next page starts after the last id seen."""
    query = select(DeadLetter).where(DeadLetter.subscription == subscription)
    if state is not None:
        query = query.where(DeadLetter.state == state)
    if after_id is not None:
        query = query.where(col(DeadLetter.id) > after_id)
    return list(session.exec(query.order_by(col(DeadLetter.id)).limit(limit)))


def get_dead_letter(*, session: Session, subscription: str, dead_letter_id: int) -> DeadLetter:
    row = session.get(DeadLetter, dead_letter_id)
    if row is None or row.subscription != subscription:
        raise NotFound(f"subscription {subscription} has no dead letter {dead_letter_id}")
    return row


def _requeue_statement(subscription: str) -> Update:
    return (
        update(DeadLetter)
        .where(
            col(DeadLetter.subscription) == subscription,
            col(DeadLetter.state) == DeadLetterState.DEAD,
        )
        .values(state=DeadLetterState.REQUEUED, redeliveries=col(DeadLetter.redeliveries) + 1)
    )


def requeue(*, session: Session, subscription: str, dead_letter_id: int) -> tuple[DeadLetter, bool]:
    """Hand one dead letter back to delivery (dead -> requeued); whether it changed.

    A requeued or redelivered one is left alone, so asking twice redelivers once. The state is
    changed by one conditional UPDATE: two operators at once cannot both requeue it.
    """
    row = get_dead_letter(session=session, subscription=subscription, dead_letter_id=dead_letter_id)
    changed = _count(
        session, _requeue_statement(subscription).where(col(DeadLetter.id) == dead_letter_id)
    )
    session.refresh(row)
    return row, changed > 0


def requeue_all(*, session: Session, subscription: str) -> int:
    """Hand every dead letter of the subscription back to delivery; how many."""
    return _count(session, _requeue_statement(subscription))


def counts(*, session: Session, subscription: str) -> dict[str, int]:
    """Dead letters per state."""
    found = {state.value: 0 for state in DeadLetterState}
    for state in session.exec(
        select(DeadLetter.state).where(DeadLetter.subscription == subscription)
    ):
        found[DeadLetterState(state).value] += 1
    return found


def forget(*, session: Session, subscription: str) -> dict[str, int]:
    """Drop a deleted subscription's positions and dead letters (a new subscription of the same
    name starts afresh); how many of each."""
    return {
        "positions": _count(
            session, delete(Position).where(col(Position.subscription) == subscription)
        ),
        "dead_letters": _count(
            session, delete(DeadLetter).where(col(DeadLetter.subscription) == subscription)
        ),
    }


def _count(session: Session, statement: Executable) -> int:
    """Run an UPDATE or DELETE; the rows it touched."""
    result = cast("CursorResult[Any]", session.execute(statement))
    session.flush()
    return int(result.rowcount)


# ---------------------------------------------------------------- the hub's own actions


def replay_lost_topic(engine: Engine, topic: str) -> bool:
    """The broker created `topic` again: if it existed before, its log was lost (a broker
    replaced, a topic deleted) and starts again at offset 0, so positions stored against the old
    log would skip the new log's first messages. Every subscription of the topic that had moved
    resumes at 0, like an operator's replay, recorded by "hub". True when any did."""
    changed = False
    with Session(engine) as session:
        subs = session.exec(select(Subscription).where(Subscription.topic == topic)).all()
        for sub in subs:
            stored = stored_positions(session=session, subscription=sub.name)
            if not any(stored.values()):
                continue
            old = sub.replay_generation
            new = set_positions(session=session, subscription=sub, offsets=dict.fromkeys(stored, 0))
            details: dict[str, Any] = {f"positions.{p}": [o, 0] for p, o in sorted(stored.items())}
            details["replay_generation"] = [old, new]
            details["reason"] = [None, f"the broker had lost topic {topic}"]
            record_change(
                session,
                actor="hub",
                action="replay",
                object_type="subscription",
                object_key=sub.name,
                details=details,
            )
            changed = True
        if changed:
            revision.bump(session)
            session.commit()
    return changed


def disable_gone(engine: Engine, name: str, reason: str) -> None:
    """A receiver answered 410 Gone: its subscription is disabled (recorded by "hub") until an
    operator resumes it; the message it refused waits, nothing is skipped."""
    with Session(engine) as session:
        sub = session.exec(select(Subscription).where(Subscription.name == name)).first()
        if sub is None or sub.status is SubscriptionStatus.DISABLED:
            return
        sub.status = SubscriptionStatus.DISABLED
        sub.status_reason = reason[:1000]
        sub.status_changed_at = utcnow()
        session.add(sub)
        revision.bump(session)
        record_change(
            session,
            actor="hub",
            action="disable",
            object_type="subscription",
            object_key=name,
            details={"status": ["active", "disabled"], "reason": reason},
        )
        session.commit()
