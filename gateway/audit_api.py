"""The auditors' API: search the exchange records (read-only, auditors only)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Query
from pydantic import BaseModel
from sqlmodel import select

from audit.queries import BadCursor, ExchangeFilter, search
from audit.records import ExchangeRecord, ExchangeRecordPublic, RecordKind
from gateway.deps import AuditorDep, RuntimeDep, SessionDep
from gateway.problems import Problem
from registry.types import as_utc

router = APIRouter(prefix="/audit", tags=["audit"])


class ExchangePage(BaseModel):
    items: list[ExchangeRecordPublic]
    next_cursor: str | None


@router.get("/exchanges", response_model=ExchangePage)
def list_exchanges(
    _: AuditorDep,
    session: SessionDep,
    runtime: RuntimeDep,
    kind: RecordKind | None = None,
    consumer: str | None = None,
    agency: str | None = None,
    service: str | None = None,
    version: str | None = None,
    subject: Annotated[
        str | None, Query(description="The data subject's identifier; hashed before the lookup")
    ] = None,
    status: Annotated[int | None, Query(ge=100, le=599)] = None,
    status_class: Annotated[
        int | None, Query(ge=1, le=5, description="2 for 2xx, 4 for 4xx")
    ] = None,
    request_id: str | None = None,
    topic: str | None = None,
    subscription: str | None = None,
    message_id: str | None = None,
    since: Annotated[datetime | None, Query(description="ISO 8601, inclusive")] = None,
    until: Annotated[datetime | None, Query(description="ISO 8601, exclusive")] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    cursor: str | None = None,
) -> ExchangePage:
    """Exchange records matching every given filter, newest first, a page at a time."""
    since, until = as_utc(since), as_utc(until)
    if since and until and until <= since:
        raise Problem(
            422,
            "validation-error",
            "Invalid input",
            "until must be after since",
            errors=[{"pointer": "/query/until", "message": "must be after since"}],
        )
    where = ExchangeFilter(
        kind=kind,
        consumer=consumer,
        agency=agency,
        service=service,
        version=version,
        subject_hash=runtime.subject_hash(subject) if subject else None,
        status=status,
        status_class=status_class,
        request_id=request_id,
        topic=topic,
        subscription=subscription,
        message_id=message_id,
        since=since,
        until=until,
    )
    try:
        rows, next_cursor = search(session, where=where, limit=limit, cursor=cursor)
    except BadCursor as exc:
        raise Problem(
            400,
            "bad-cursor",
            "Bad cursor",
            str(exc),
            errors=[{"pointer": "/query/cursor", "message": str(exc)}],
        ) from None
    return ExchangePage(
        items=[ExchangeRecordPublic.model_validate(r, from_attributes=True) for r in rows],
        next_cursor=next_cursor,
    )


@router.get("/exchanges/{record_id}", response_model=ExchangeRecordPublic)
def get_exchange(record_id: str, _: AuditorDep, session: SessionDep) -> ExchangeRecordPublic:
    """One exchange record by its id."""
    row = session.exec(select(ExchangeRecord).where(ExchangeRecord.id == record_id)).first()
    if row is None:
        raise Problem(404, "not-found", "Not found", f"no exchange record {record_id}")
    return ExchangeRecordPublic.model_validate(row, from_attributes=True)
