"""Searching the exchange records: filters and cursor pagination (newest first)."""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from datetime import datetime

from sqlmodel import Session, col, select

from audit.records import ExchangeRecord, RecordKind


class BadCursor(ValueError):
    pass


def encode_cursor(seq: int) -> str:
    return base64.urlsafe_b64encode(f"s:{seq}".encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> int:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        prefix, value = raw.split(":", 1)
        if prefix != "s":
            raise ValueError
        return int(value)
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise BadCursor("the cursor is not one this API returned") from None


@dataclass(frozen=True, slots=True)
class ExchangeFilter:
    kind: RecordKind | None = None
    consumer: str | None = None
    agency: str | None = None
    service: str | None = None
    version: str | None = None
    subject_hash: str | None = None
    status: int | None = None
    status_class: int | None = None  # 2 for 2xx, 4 for 4xx...
    request_id: str | None = None
    topic: str | None = None
    subscription: str | None = None
    message_id: str | None = None
    since: datetime | None = None
    until: datetime | None = None


def search(
    session: Session, *, where: ExchangeFilter, limit: int, cursor: str | None
) -> tuple[list[ExchangeRecord], str | None]:
    """A page of matching records, and the cursor of the next page (None at the end)."""
    query = select(ExchangeRecord)
    for column, value in (
        (ExchangeRecord.kind, where.kind),
        (ExchangeRecord.consumer, where.consumer),
        (ExchangeRecord.agency, where.agency),
        (ExchangeRecord.service, where.service),
        (ExchangeRecord.version, where.version),
        (ExchangeRecord.subject_hash, where.subject_hash),
        (ExchangeRecord.hub_status, where.status),
        (ExchangeRecord.request_id, where.request_id),
        (ExchangeRecord.topic, where.topic),
        (ExchangeRecord.subscription, where.subscription),
        (ExchangeRecord.message_id, where.message_id),
    ):
        if value is not None:
            query = query.where(column == value)
    if where.status_class is not None:
        low = where.status_class * 100
        query = query.where(col(ExchangeRecord.hub_status) >= low).where(
            col(ExchangeRecord.hub_status) < low + 100
        )
    if where.since is not None:
        query = query.where(col(ExchangeRecord.time) >= where.since)
    if where.until is not None:
        query = query.where(col(ExchangeRecord.time) < where.until)
    if cursor is not None:
        query = query.where(col(ExchangeRecord.seq) < decode_cursor(cursor))
    rows = list(session.exec(query.order_by(col(ExchangeRecord.seq).desc()).limit(limit + 1)))
    if len(rows) > limit:
        last = rows[limit - 1].seq
        assert last is not None
        return rows[:limit], encode_cursor(last)
    return rows, None
