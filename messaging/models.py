"""Messaging's tables: accepted messages (the outbox), the embedded broker's log, subscription
positions, dead letters and leases.

- `message`: every message a producer got a 202 for, committed with its exchange record. Rows
  with `relayed_at` NULL are the outbox; the relay hands them to the broker in `seq` order and
  stamps them. The unique (topic, producer, idempotency_key) makes a retried publish a no-op.
- `broker_log`: the `database` backend's log, per topic and partition, offsets from 0.
- `subscription_position`: per subscription and partition, the offset delivery resumes from.
- `dead_letter`: what a subscription gave up on, with the context to redeliver it.
- `lease`: which process runs the relay, or a subscription's delivery, right now.
- `messaging_set_aside`: topics the relay set aside, and subscriptions delivery set aside,
  after a terminal error (messaging/set_aside.py): kept in the database so that every
  replica's /readyz shows them, and a replica taking the relay over knows them.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Column,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlmodel import Field, SQLModel

from registry.types import NEVER_REUSED, utcnow

# BIGINT on PostgreSQL; INTEGER on SQLite, where only that is the rowid alias.
_BIG_KEY = BigInteger().with_variant(Integer, "sqlite")
MAX_KEY = 500  # characters in a message's key (the key columns' size)


class Message(SQLModel, table=True):
    __tablename__ = "message"
    __table_args__ = (
        UniqueConstraint("topic", "producer", "idempotency_key"),
        # The outbox: only unrelayed rows are indexed, so the relay's scan stays small.
        Index(
            "ix_message_outbox",
            "seq",
            sqlite_where=text("relayed_at IS NULL"),
            postgresql_where=text("relayed_at IS NULL"),
        ),
        # The outbox per topic: while topics are set aside the relay reads each other topic's
        # oldest seqs from here, never stepping over the rows that wait (and counts those).
        # `relayed_at`, NULL in every entry, lets SQLite answer from the index alone: its
        # planner reads the rows to check the index's own condition unless the column is in it.
        Index(
            "ix_message_outbox_topic",
            "topic",
            "seq",
            "relayed_at",
            sqlite_where=text("relayed_at IS NULL"),
            postgresql_where=text("relayed_at IS NULL"),
        ),
        Index("ix_message_created", "created_at"),
        NEVER_REUSED,
    )
    seq: int | None = Field(
        default=None, sa_column=Column(_BIG_KEY, primary_key=True, autoincrement=True)
    )
    id: str = Field(max_length=36, unique=True)  # UUIDv7: the webhook-id of every delivery
    topic: str = Field(max_length=120)
    partition: int
    key: str | None = Field(default=None, max_length=MAX_KEY)
    producer: str = Field(max_length=63)  # consumer name
    idempotency_key: str | None = Field(default=None, max_length=200)
    request_id: str | None = Field(default=None, max_length=128)
    value: str = Field(sa_column=Column(Text, nullable=False))  # the JSON document, as sent
    created_at: datetime = Field(default_factory=utcnow)
    relayed_at: datetime | None = None


class LogEntry(SQLModel, table=True):
    """The embedded broker's log: append-only per (topic, partition)."""

    __tablename__ = "broker_log"
    __table_args__ = (
        UniqueConstraint("topic", "message_id"),  # a re-sent message is stored once
        Index("ix_broker_log_time", "topic", "partition", "timestamp_ms"),
    )
    topic: str = Field(primary_key=True, max_length=120)
    partition: int = Field(primary_key=True)
    offset: int = Field(sa_column=Column(BigInteger, primary_key=True, autoincrement=False))
    message_id: str = Field(max_length=36)
    key: str | None = Field(default=None, max_length=MAX_KEY)
    value: str = Field(sa_column=Column(Text, nullable=False))
    headers: dict[str, str] = Field(default_factory=dict, sa_column=Column(JSON))
    timestamp_ms: int = Field(sa_column=Column(BigInteger, nullable=False))


class Position(SQLModel, table=True):
    """Where a subscription's delivery resumes in one partition (the next offset to deliver)."""

    __tablename__ = "subscription_position"
    subscription: str = Field(primary_key=True, max_length=63)
    partition: int = Field(primary_key=True)
    offset: int = Field(sa_column=Column(BigInteger, nullable=False))
    updated_at: datetime = Field(default_factory=utcnow)


class DeadLetterState(StrEnum):
    DEAD = "dead"  # given up on; waits for an operator
    REQUEUED = "requeued"  # an operator asked for redelivery; delivery picks it up
    REDELIVERING = "redelivering"  # delivery is pushing it again (requeued again on a restart)
    REDELIVERED = "redelivered"  # the receiver accepted it on redelivery


class DeadLetter(SQLModel, table=True):
    __tablename__ = "dead_letter"
    __table_args__ = (
        UniqueConstraint("subscription", "message_id"),
        Index("ix_dead_letter_state", "subscription", "state"),
        NEVER_REUSED,  # operators redeliver by id, and records name it
    )
    id: int | None = Field(default=None, primary_key=True)
    subscription: str = Field(max_length=63)
    message_id: str = Field(max_length=36)
    topic: str = Field(max_length=120)
    partition: int
    offset: int = Field(sa_column=Column(BigInteger, nullable=False))
    key: str | None = Field(default=None, max_length=MAX_KEY)
    value: str = Field(sa_column=Column(Text, nullable=False))
    headers: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON))
    reason: str = Field(max_length=1000)  # why it was given up on
    attempts: int
    first_error: str | None = Field(default=None, max_length=1000)
    last_error: str | None = Field(default=None, max_length=1000)
    first_attempt_at: datetime
    last_attempt_at: datetime
    created_at: datetime = Field(default_factory=utcnow)
    state: DeadLetterState = Field(default=DeadLetterState.DEAD, sa_type=String(16))
    redeliveries: int = 0
    redelivered_at: datetime | None = None


class Lease(SQLModel, table=True):
    """One holder at a time for a named job (the relay; each subscription's delivery)."""

    name: str = Field(primary_key=True, max_length=120)
    holder: str = Field(max_length=120)
    expires_at: float  # epoch seconds


class SetAsideKind(StrEnum):
    TOPIC = "topic"  # the relay hands none of its messages to the broker; they wait in the outbox
    SUBSCRIPTION = "subscription"  # its delivery waits


class SetAside(SQLModel, table=True):
    """A topic or subscription set aside after a terminal error, until a retry succeeds."""

    __tablename__ = "messaging_set_aside"
    kind: SetAsideKind = Field(primary_key=True, sa_type=String(16))
    name: str = Field(primary_key=True, max_length=120)
    error: str = Field(max_length=60)  # the error's class: TopicMisconfigured, ...
    reason: str = Field(max_length=1000)  # the latest failure's sentence
    since: datetime = Field(default_factory=utcnow)  # first failure
    last_attempt_at: datetime = Field(default_factory=utcnow)
    attempts: int = 1  # failed tries, the first included
    waiting: int | None = None  # a topic's messages in the outbox, at the last attempt
