"""Searching the exchange records: filters, cursor pages, counts, and streamed exports.

Every question an auditor asks is an `ExchangeFilter`; the same filter drives the page of
`search`, the totals of `counts` and the rows of `stream`, so a count always agrees with the
rows listed under the same filter.

Which index serves which filter (migration 0001): subject, consumer and service each lead an
index with `time`; a time range alone uses `ix_exchange_record_time`; request id and message id
have their own. Purpose, status, agency, trace id, grant and actor narrow those further; on
their own they scan (see `INDEX_NOTES`).
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any, TypeVar, cast

from sqlalchemy import String, and_, case, func
from sqlalchemy import select as select_columns
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.elements import ColumnElement
from sqlalchemy.sql.functions import FunctionElement
from sqlmodel import Session, col, select
from sqlmodel.sql._expression_select_cls import SelectBase

from audit.errors import BadCursor
from audit.records import ExchangeRecord, RecordKind
from registry.types import as_utc

INDEX_NOTES = (
    "trace_id and grant_id have no index: a search by either alone scans the table "
    "(suggested: ix_exchange_trace_id (trace_id), ix_exchange_grant_time (grant_id, time))"
)

BIGINT_MAX = 2**63 - 1  # seq is BIGINT on PostgreSQL: a cursor beyond it would overflow
EXPORT_PAGE = 1000  # rows read per query while streaming an export

S = TypeVar("S", bound=SelectBase[*tuple[Any, ...]])


def encode_cursor(seq: int, prefix: str = "s") -> str:
    return base64.urlsafe_b64encode(f"{prefix}:{seq}".encode()).decode().rstrip("=")


def decode_cursor(cursor: str, prefix: str = "s") -> int:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        found, value = raw.split(":", 1)
        if found != prefix or not value.isascii() or not value.isdigit():
            raise ValueError
        seq = int(value)
        if seq > BIGINT_MAX:
            raise ValueError
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise BadCursor("the cursor is not one this API returned") from None
    return seq


@dataclass(frozen=True, slots=True)
class ExchangeFilter:
    kind: RecordKind | None = None
    consumer: str | None = None
    agency: str | None = None
    service: str | None = None
    version: str | None = None
    subject_hash: str | None = None
    purpose: str | None = None
    grant_id: int | None = None
    status: int | None = None
    status_class: int | None = None  # 2 for 2xx, 4 for 4xx...
    request_id: str | None = None
    trace_id: str | None = None
    topic: str | None = None
    subscription: str | None = None
    message_id: str | None = None
    actor: str | None = None
    since: datetime | None = None  # inclusive
    until: datetime | None = None  # exclusive


def narrow(query: S, where: ExchangeFilter) -> S:
    """`query` (over exchange_record) with every condition of the filter added."""
    for column, value in (
        (ExchangeRecord.kind, where.kind),
        (ExchangeRecord.consumer, where.consumer),
        (ExchangeRecord.agency, where.agency),
        (ExchangeRecord.service, where.service),
        (ExchangeRecord.version, where.version),
        (ExchangeRecord.subject_hash, where.subject_hash),
        (ExchangeRecord.purpose, where.purpose),
        (ExchangeRecord.grant_id, where.grant_id),
        (ExchangeRecord.hub_status, where.status),
        (ExchangeRecord.request_id, where.request_id),
        (ExchangeRecord.trace_id, where.trace_id),
        (ExchangeRecord.topic, where.topic),
        (ExchangeRecord.subscription, where.subscription),
        (ExchangeRecord.message_id, where.message_id),
        (ExchangeRecord.actor, where.actor),
    ):
        if value is not None:
            query = query.where(col(column) == value)
    if where.status_class is not None:
        low = where.status_class * 100
        query = query.where(col(ExchangeRecord.hub_status) >= low).where(
            col(ExchangeRecord.hub_status) < low + 100
        )
    if where.since is not None:
        query = query.where(col(ExchangeRecord.time) >= where.since)
    if where.until is not None:
        query = query.where(col(ExchangeRecord.time) < where.until)
    return query


def search(
    session: Session, *, where: ExchangeFilter, limit: int, cursor: str | None
) -> tuple[list[ExchangeRecord], str | None]:
    """A page of matching records, newest first, and the cursor of the next page (None at
    the end)."""
    query = narrow(select(ExchangeRecord), where)
    if cursor is not None:
        query = query.where(col(ExchangeRecord.seq) < decode_cursor(cursor))
    rows = list(session.exec(query.order_by(col(ExchangeRecord.seq).desc()).limit(limit + 1)))
    if len(rows) > limit:
        last = rows[limit - 1].seq
        assert last is not None
        return rows[:limit], encode_cursor(last)
    return rows, None


# ---------------------------------------------------------------- counts


class CountBy(StrEnum):
    DAY = "day"  # UTC calendar day, YYYY-MM-DD
    CONSUMER = "consumer"
    SERVICE = "service"
    AGENCY = "agency"
    STATUS = "status"  # hub_status


class utc_day(FunctionElement[str]):
    """The UTC calendar day of a timestamp column as text `YYYY-MM-DD`, computed by the
    database (SQLite stores UTC text; PostgreSQL a timestamptz, shifted to UTC first)."""

    type = String()
    name = "utc_day"
    inherit_cache = True


@compiles(utc_day, "sqlite")
def _utc_day_sqlite(element: utc_day, compiler: SQLCompiler, **kw: Any) -> str:
    return f"date({compiler.process(element.clauses, **kw)})"


@compiles(utc_day, "postgresql")
def _utc_day_postgresql(element: utc_day, compiler: SQLCompiler, **kw: Any) -> str:
    return f"to_char(({compiler.process(element.clauses, **kw)}) AT TIME ZONE 'UTC', 'YYYY-MM-DD')"


def _count_key(by: CountBy) -> ColumnElement[Any]:
    if by is CountBy.DAY:
        return utc_day(col(ExchangeRecord.time))
    columns = {
        CountBy.CONSUMER: ExchangeRecord.consumer,
        CountBy.SERVICE: ExchangeRecord.service,
        CountBy.AGENCY: ExchangeRecord.agency,
        CountBy.STATUS: ExchangeRecord.hub_status,
    }
    return cast(ColumnElement[Any], columns[by])


def counts(session: Session, *, where: ExchangeFilter, by: CountBy) -> list[tuple[Any, int]]:
    """How many records match, per key: days in calendar order, the other keys by count
    (largest first, then by key). Records without the key (a publish has no hub status) count
    under None."""
    key = _count_key(by).label("key")
    total = func.count().label("n")
    query = narrow(select(key, total), where).group_by(key)
    ordered = (key,) if by is CountBy.DAY else (total.desc(), key)
    query = query.order_by(*ordered)
    return [(k, int(n)) for k, n in session.exec(query)]


def total(session: Session, *, where: ExchangeFilter) -> int:
    """How many records match."""
    return int(session.exec(narrow(select(func.count()).select_from(ExchangeRecord), where)).one())


# ---------------------------------------------------------------- callers of a service


@dataclass(frozen=True, slots=True)
class Caller:
    """One consumer's calls to one service version over a window."""

    consumer: str
    version: str
    calls: int
    refusals: int  # answered 4xx by the hub itself, before any provider was asked
    first_call: datetime
    last_call: datetime


def _utc(value: datetime) -> datetime:
    found = as_utc(value)  # SQLite hands back naive UTC
    assert found is not None
    return found


def callers(
    session: Session, *, service: str, versions: Sequence[str], since: datetime
) -> list[Caller]:
    """Who called these versions of `service` since `since`, per consumer and version, the
    latest caller first. Served by ix_exchange_service_version_time (each version a range of
    it: the versions are named, never left open); calls nobody was authenticated for have no
    consumer and are not counted."""
    status = col(ExchangeRecord.hub_status)
    refused = and_(status >= 400, status < 500, col(ExchangeRecord.provider_status).is_(None))
    first = func.min(ExchangeRecord.time).label("first")
    last = func.max(ExchangeRecord.time).label("last")
    query = (
        select_columns(
            col(ExchangeRecord.consumer),
            col(ExchangeRecord.version),
            func.count().label("calls"),
            func.sum(case((refused, 1), else_=0)).label("refusals"),
            first,
            last,
        )
        .where(
            col(ExchangeRecord.service) == service,
            col(ExchangeRecord.version).in_(versions),
            col(ExchangeRecord.time) >= since,
            col(ExchangeRecord.kind) == RecordKind.EXCHANGE,
            col(ExchangeRecord.consumer).is_not(None),
        )
        .group_by(col(ExchangeRecord.consumer), col(ExchangeRecord.version))
        .order_by(last.desc(), col(ExchangeRecord.consumer), col(ExchangeRecord.version))
    )
    found = []
    for row in session.execute(query):
        consumer, ver, calls, refusals, first_call, last_call = cast(tuple[Any, ...], row)
        found.append(
            Caller(
                consumer=str(consumer),
                version=str(ver),
                calls=int(calls),
                refusals=int(refusals or 0),
                first_call=_utc(first_call),
                last_call=_utc(last_call),
            )
        )
    return found


# ---------------------------------------------------------------- streaming


def last_seq(session: Session) -> int:
    """The highest record seq right now (0 on an empty log)."""
    found = session.exec(select(func.max(ExchangeRecord.seq))).one()
    return int(found or 0)


def stream(
    sessions: Callable[[], Session],
    *,
    where: ExchangeFilter,
    after: int = 0,
    upto: int | None = None,
    page: int = EXPORT_PAGE,
) -> Iterator[ExchangeRecord]:
    """Every matching record with after < seq <= upto, in seq order, read a page at a time.

    Each page uses its own short session (a slow reader holds no transaction open), and
    paging is by seq, never by offset: a row is yielded exactly once. `upto` defaults to the
    last seq when the stream starts, so records written meanwhile do not extend an export.
    """
    if upto is None:
        with sessions() as session:
            upto = last_seq(session)
    while True:
        with sessions() as session:
            query = narrow(select(ExchangeRecord), where).where(
                col(ExchangeRecord.seq) > after, col(ExchangeRecord.seq) <= upto
            )
            rows = list(session.exec(query.order_by(col(ExchangeRecord.seq)).limit(page)))
            for row in rows:
                session.expunge(row)
        yield from rows
        if len(rows) < page:
            return
        last = rows[-1].seq
        assert last is not None
        after = last
