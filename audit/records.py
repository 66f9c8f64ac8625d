"""The exchange record: one per data-plane call, publish, delivery attempt or registry change.

Records are append-only: no interface updates or deletes them, and the database refuses it too
(triggers installed by the migrations).
"""

from __future__ import annotations

import hashlib
import hmac
import random
import time
from dataclasses import dataclass, field, fields
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, BigInteger, Column, Index, Integer, String, text
from sqlmodel import Field, SQLModel

from registry.types import NEVER_REUSED, utcnow


class RecordKind(StrEnum):
    EXCHANGE = "exchange"  # a synchronous data-plane call
    REGISTRY_CHANGE = "registry_change"  # who changed what in the registry
    PUBLISH = "publish"  # a producer's POST /topics/{topic}/messages
    DELIVERY = "delivery"  # one attempt to hand a message to a subscription (push or pull)
    AUDIT = "audit"  # the log's own events: started, stopped, reconfigured, keys, archives


def subject_hash(key: str | bytes, identifier: str) -> str:
    """The keyed hash under which a data subject appears in the log: HMAC-SHA256 (hex) of the
    trimmed identifier under the hub's subject key (LGSP_SUBJECT_HMAC_KEY)."""
    secret = key.encode() if isinstance(key, str) else key
    return hmac.new(secret, identifier.strip().encode(), hashlib.sha256).hexdigest()


def new_record_id() -> str:
    """A UUIDv7 (RFC 9562): time-ordered, so ids sort the way records were made."""
    ms = time.time_ns() // 1_000_000
    # Ids must be unique, not secret: the PRNG (seeded per process from the OS) spares a system
    # call per record.
    rand = random.getrandbits(80)
    value = (ms & ((1 << 48) - 1)) << 80
    value |= 0x7 << 76
    value |= ((rand >> 62) & 0xFFF) << 64
    value |= 0b10 << 62
    value |= rand & ((1 << 62) - 1)
    h = f"{value:032x}"
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


class ExchangeRecordBase(SQLModel):
    id: str = Field(default_factory=new_record_id, max_length=36, unique=True)
    # Stored as its value ('exchange'), a plain string: new kinds need no schema change.
    kind: RecordKind = Field(default=RecordKind.EXCHANGE, sa_type=String(32))
    time: datetime = Field(default_factory=utcnow, index=True)
    request_id: str | None = Field(default=None, max_length=128, index=True)
    trace_id: str | None = Field(default=None, max_length=32)
    consumer: str | None = Field(default=None, max_length=63)
    agency: str | None = Field(default=None, max_length=20)
    service: str | None = Field(default=None, max_length=63)
    version: str | None = Field(default=None, max_length=8)
    route: str | None = Field(default=None, max_length=320)  # "POST /cong-dan/xac-thuc"
    purpose: str | None = Field(default=None, max_length=63)
    grant_id: int | None = None
    subject_hash: str | None = Field(default=None, max_length=64)  # HMAC-SHA256, hex
    provider_status: int | None = None
    hub_status: int | None = None
    latency_us: int | None = None  # integers only: records are hashed canonically later
    upstream_latency_us: int | None = None
    request_size: int | None = None
    response_size: int | None = None
    request_sha256: str | None = Field(default=None, max_length=64)
    response_sha256: str | None = Field(default=None, max_length=64)
    attempts: int | None = None
    # messaging: the topic, the subscription, the message (delivery attempts: one message)
    topic: str | None = Field(default=None, max_length=120)
    subscription: str | None = Field(default=None, max_length=63)
    message_id: str | None = Field(default=None, max_length=36, index=True)
    error: str | None = Field(default=None, max_length=1000)
    # registry changes
    actor: str | None = Field(default=None, max_length=63)
    action: str | None = Field(default=None, max_length=32)
    object_type: str | None = Field(default=None, max_length=32)
    object_key: str | None = Field(default=None, max_length=200)
    details: dict[str, Any] | None = Field(default=None, sa_column=Column(JSON))


class ExchangeRecordPublic(ExchangeRecordBase):
    seq: int


class ExchangeRecord(ExchangeRecordBase, table=True):
    __tablename__ = "exchange_record"
    __table_args__ = (
        # Pages, reports and exports run in seq order: a filter's index ends in seq, so a page
        # reads its rows in order instead of sorting every match (a frequent subject has
        # thousands).
        Index("ix_exchange_subject_seq", "subject_hash", "seq"),
        Index("ix_exchange_consumer_seq", "consumer", "seq"),
        Index("ix_exchange_service_seq", "service", "seq"),
        Index("ix_exchange_trace", "trace_id"),
        # Who calls a service version over a window (the callers view, the retirement check).
        Index("ix_exchange_service_version_time", "service", "version", "time"),
        # The log's own events (start, key-added, archive...), found without scanning the log;
        # partial, so the records of every call do not pay for it.
        Index(
            "ix_exchange_audit_events",
            "action",
            "seq",
            postgresql_where=text("kind = 'audit'"),
            sqlite_where=text("kind = 'audit'"),
        ),
        # A seq is never handed out twice, also once archiving emptied the table: the tree
        # and its proofs find a record by its seq (SQLite: AUTOINCREMENT).
        NEVER_REUSED,
    )
    seq: int | None = Field(
        default=None,
        # BIGINT on PostgreSQL; INTEGER on SQLite, where only that is the rowid alias.
        sa_column=Column(
            BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
        ),
    )


@dataclass(slots=True, kw_only=True)
class Record:
    """One exchange record as it is built and handed to the writer (or inserted in a change's own
    transaction): the typed form of a row of `exchange_record`, `seq` aside (the database gives
    it). Every field is a column; a test keeps the two in step."""

    kind: RecordKind
    id: str = field(default_factory=new_record_id)
    time: datetime = field(default_factory=utcnow)
    request_id: str | None = None
    trace_id: str | None = None
    consumer: str | None = None
    agency: str | None = None
    service: str | None = None
    version: str | None = None
    route: str | None = None
    purpose: str | None = None
    grant_id: int | None = None
    subject_hash: str | None = None
    provider_status: int | None = None
    hub_status: int | None = None
    latency_us: int | None = None
    upstream_latency_us: int | None = None
    request_size: int | None = None
    response_size: int | None = None
    request_sha256: str | None = None
    response_sha256: str | None = None
    attempts: int | None = None
    topic: str | None = None
    subscription: str | None = None
    message_id: str | None = None
    error: str | None = None
    actor: str | None = None
    action: str | None = None
    object_type: str | None = None
    object_key: str | None = None
    details: dict[str, Any] | None = None

    def row(self) -> dict[str, Any]:
        """The record as column values, for an INSERT."""
        return {name: getattr(self, name) for name in RECORD_FIELDS}


RECORD_FIELDS: tuple[str, ...] = tuple(f.name for f in fields(Record))
