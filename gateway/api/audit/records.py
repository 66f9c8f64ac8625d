"""The auditors' API (read-only, auditors only): search, counts and exports of the exchange
records, and data-subject reports with their inclusion proofs."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.responses import Response, StreamingResponse
from pydantic import BaseModel, ConfigDict, Field
from sqlmodel import Session, select

from audit import queries, reports
from audit.canonical import format_time
from audit.errors import BadCursor, BadReportCursor, InvalidIdentifier
from audit.queries import CountBy, ExchangeFilter
from audit.records import ExchangeRecord, ExchangeRecordPublic, RecordKind
from gateway.api.deps import AuditorDep, RuntimeDep, SessionDep
from gateway.problems import Problem
from gateway.runtime import Runtime
from registry.types import as_utc, utcnow

router = APIRouter(prefix="/audit", tags=["audit"])
log = logging.getLogger(__name__)

NDJSON = "application/x-ndjson"
CSV = "text/csv; charset=utf-8; header=present"
PDF = "application/pdf"
PDF_MAX_ACCESSES = 10_000  # a longer history is asked for by period, or as CSV
INTEGER_MAX = 2**31 - 1  # grant_id is INTEGER on PostgreSQL: a larger one overflows


def _invalid(pointer: str, message: str, status: int = 422) -> Problem:
    return Problem(
        status,
        "validation-error" if status == 422 else "bad-request",
        "Invalid input",
        message if pointer == "" else f"{pointer.rsplit('/', 1)[-1]}: {message}",
        errors=[{"pointer": pointer, "message": message}],
    )


def _utc(value: datetime | None, pointer: str) -> datetime | None:
    try:
        return as_utc(value)
    except OverflowError:  # e.g. 0001-01-01T00:00+05:00 is before year 1 in UTC
        raise _invalid(pointer, "out of range once in UTC") from None


def _no_nul(value: str | None, pointer: str) -> None:
    """PostgreSQL refuses NUL in text (and nothing stored holds one): a 422, not a 500."""
    if value is not None and "\x00" in value:
        raise _invalid(pointer, "must not contain NUL characters")


def _period(
    since: datetime | None, until: datetime | None, base: str = "/query"
) -> tuple[datetime | None, datetime | None]:
    since, until = _utc(since, f"{base}/since"), _utc(until, f"{base}/until")
    if since and until and until <= since:
        raise _invalid(f"{base}/until", "must be after since")
    return since, until


def exchange_filter(
    runtime: RuntimeDep,
    kind: RecordKind | None = None,
    consumer: str | None = None,
    agency: str | None = None,
    service: str | None = None,
    version: str | None = None,
    subject: Annotated[
        str | None, Query(description="The data subject's identifier; hashed before the lookup")
    ] = None,
    purpose: Annotated[str | None, Query(description="The purpose of use (X-Purpose)")] = None,
    grant_id: Annotated[
        int | None, Query(ge=1, le=INTEGER_MAX, description="The grant that allowed it")
    ] = None,
    status: Annotated[int | None, Query(ge=100, le=599, description="The hub's status")] = None,
    status_class: Annotated[
        int | None, Query(ge=1, le=5, description="2 for 2xx, 4 for 4xx")
    ] = None,
    request_id: str | None = None,
    trace_id: Annotated[
        str | None, Query(description="W3C trace id (32 hex digits) of the call")
    ] = None,
    topic: str | None = None,
    subscription: str | None = None,
    message_id: str | None = None,
    actor: Annotated[str | None, Query(description="Who made a registry change")] = None,
    since: Annotated[datetime | None, Query(description="ISO 8601, inclusive")] = None,
    until: Annotated[datetime | None, Query(description="ISO 8601, exclusive")] = None,
) -> ExchangeFilter:
    for name, value in (
        ("consumer", consumer),
        ("agency", agency),
        ("service", service),
        ("version", version),
        ("subject", subject),
        ("purpose", purpose),
        ("request_id", request_id),
        ("trace_id", trace_id),
        ("topic", topic),
        ("subscription", subscription),
        ("message_id", message_id),
        ("actor", actor),
    ):
        _no_nul(value, f"/query/{name}")
    since, until = _period(since, until)
    return ExchangeFilter(
        kind=kind,
        consumer=consumer,
        agency=agency,
        service=service,
        version=version,
        subject_hash=runtime.subject_hash(subject) if subject else None,
        purpose=purpose,
        grant_id=grant_id,
        status=status,
        status_class=status_class,
        request_id=request_id,
        trace_id=trace_id.lower() if trace_id else None,
        topic=topic,
        subscription=subscription,
        message_id=message_id,
        actor=actor,
        since=since,
        until=until,
    )


FilterDep = Annotated[ExchangeFilter, Depends(exchange_filter)]


def _bad_cursor(exc: ValueError, base: str = "/query") -> Problem:
    return Problem(
        400,
        "bad-cursor",
        "Bad cursor",
        str(exc),
        errors=[{"pointer": f"{base}/cursor", "message": str(exc)}],
    )


class ExchangePage(BaseModel):
    items: list[ExchangeRecordPublic]
    next_cursor: str | None


@router.get("/exchanges", response_model=ExchangePage)
def list_exchanges(
    _: AuditorDep,
    session: SessionDep,
    where: FilterDep,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    cursor: str | None = None,
) -> ExchangePage:
    """Exchange records matching every given filter, newest first, a page at a time."""
    try:
        rows, next_cursor = queries.search(session, where=where, limit=limit, cursor=cursor)
    except BadCursor as exc:
        raise _bad_cursor(exc) from None
    return ExchangePage(
        items=[ExchangeRecordPublic.model_validate(r, from_attributes=True) for r in rows],
        next_cursor=next_cursor,
    )


class Count(BaseModel):
    key: str | int | None
    count: int


class Counts(BaseModel):
    by: CountBy
    counts: list[Count]
    total: int


@router.get("/exchanges/counts", response_model=Counts)
def count_exchanges(
    _: AuditorDep,
    session: SessionDep,
    where: FilterDep,
    by: Annotated[CountBy, Query(description="day (UTC), consumer, service, agency or status")],
) -> Counts:
    """How many records match the filters, per day, consumer, service, agency or status."""
    found = queries.counts(session, where=where, by=by)
    return Counts(
        by=by,
        counts=[Count(key=k, count=n) for k, n in found],
        total=sum(n for _, n in found),
    )


class ExportFormat(StrEnum):
    NDJSON = "ndjson"
    CSV = "csv"


# The CSV export's columns, in this order for good; a column added to the records later is
# appended after them.
EXPORT_COLUMNS = (
    "seq", "id", "kind", "time", "request_id", "trace_id", "consumer", "agency", "service",
    "version", "route", "purpose", "grant_id", "subject_hash", "provider_status", "hub_status",
    "latency_us", "upstream_latency_us", "request_size", "response_size", "request_sha256",
    "response_sha256", "attempts", "topic", "subscription", "message_id", "error", "actor",
    "action", "object_type", "object_key", "details",
)  # fmt: skip
CSV_COLUMNS = EXPORT_COLUMNS + tuple(
    sorted(set(ExchangeRecordPublic.model_fields) - set(EXPORT_COLUMNS))
)


def _export_lines(rows: Iterator[ExchangeRecord], format: ExportFormat) -> Iterator[bytes | str]:
    if format is ExportFormat.NDJSON:
        for row in rows:
            public = ExchangeRecordPublic.model_validate(row, from_attributes=True)
            yield public.model_dump_json().encode() + b"\n"
        return

    def cells(row: ExchangeRecord) -> dict[str, Any]:
        data = reports.columns(row)
        data["time"] = format_time(row.time)
        if row.details is not None:
            data["details"] = orjson.dumps(row.details, option=orjson.OPT_SORT_KEYS).decode()
        return data

    yield from reports.csv_rows((cells(r) for r in rows), CSV_COLUMNS)


def _attachment(name: str) -> dict[str, str]:
    return {"Content-Disposition": f'attachment; filename="{name}"'}


@router.get("/exchanges/export")
def export_exchanges(
    _: AuditorDep,
    runtime: RuntimeDep,
    where: FilterDep,
    format: Annotated[ExportFormat, Query(description="ndjson (default) or csv")] = (
        ExportFormat.NDJSON
    ),
) -> StreamingResponse:
    """Every matching record, oldest first, streamed (NDJSON or CSV): records written after the
    export starts are not included."""
    engine = runtime.engine
    with Session(engine) as session:
        upto = queries.last_seq(session)
    rows = queries.stream(lambda: Session(engine), where=where, upto=upto)
    stamp = utcnow().strftime("%Y%m%dT%H%M%SZ")
    media = NDJSON if format is ExportFormat.NDJSON else CSV
    return StreamingResponse(
        _export_lines(rows, format),
        media_type=media,
        headers={
            **_attachment(f"exchanges-{stamp}.{format.value}"),
            "X-Last-Seq": str(upto),
        },
    )


@router.get("/exchanges/{record_id}", response_model=ExchangeRecordPublic)
def get_exchange(record_id: str, _: AuditorDep, session: SessionDep) -> ExchangeRecordPublic:
    """One exchange record by its id."""
    _no_nul(record_id, "/path/record_id")
    row = session.exec(select(ExchangeRecord).where(ExchangeRecord.id == record_id)).first()
    if row is None:
        raise Problem(404, "not-found", "Not found", f"no exchange record {record_id}")
    return ExchangeRecordPublic.model_validate(row, from_attributes=True)


# ---------------------------------------------------------------- data-subject reports


class ReportFormat(StrEnum):
    JSON = "json"
    CSV = "csv"
    PDF = "pdf"


def _negotiate(request: Request, format: ReportFormat | None) -> ReportFormat:
    if format is not None:
        return format
    accept = request.headers.get("accept", "")
    for media, chosen in (("text/csv", ReportFormat.CSV), ("application/pdf", ReportFormat.PDF)):
        if media in accept and "application/json" not in accept:
            return chosen
    return ReportFormat.JSON


@router.get("/subjects/{identifier}", response_model=None)
def subject_report(
    request: Request,
    _: AuditorDep,
    runtime: RuntimeDep,
    identifier: Annotated[
        str,
        Path(
            description="12-digit personal identification number (CCCD) or 9-digit identity "
            "card number; hashed with the hub's subject key, never stored"
        ),
    ],
    format: Annotated[
        ReportFormat | None, Query(description="json (default), csv or pdf; or by Accept")
    ] = None,
    since: Annotated[datetime | None, Query(description="ISO 8601, inclusive")] = None,
    until: Annotated[datetime | None, Query(description="ISO 8601, exclusive")] = None,
    limit: Annotated[int, Query(ge=1, le=5000, description="accesses per JSON page")] = (
        reports.REPORT_PAGE
    ),
    cursor: Annotated[str | None, Query(description="next_cursor of the previous page")] = None,
) -> Any:
    """Every access to one person's data, oldest first, each with its inclusion proof against
    the latest signed checkpoint: JSON pages, CSV (streamed) or a printable PDF."""
    return _answer(
        runtime,
        identifier,
        "/path/identifier",
        format=_negotiate(request, format),
        since=since,
        until=until,
        limit=limit,
        cursor=cursor,
    )


class SubjectQuery(BaseModel):
    """A data-subject report asked with the identifier in the body, where no proxy logs it."""

    model_config = ConfigDict(extra="forbid")
    identifier: str = Field(description="12-digit personal ID (CCCD) or 9-digit ID card")
    format: ReportFormat | None = None
    since: datetime | None = None
    until: datetime | None = None
    limit: int = Field(default=reports.REPORT_PAGE, ge=1, le=5000)
    cursor: str | None = None


@router.post("/subjects", response_model=None)
def subject_report_by_body(
    request: Request, _: AuditorDep, runtime: RuntimeDep, query: SubjectQuery
) -> Any:
    """The data-subject report of GET /audit/subjects/{identifier}, the identifier in the body
    (so that it stays out of URLs, which proxies log)."""
    return _answer(
        runtime,
        query.identifier,
        "/identifier",  # a body's pointers are into the body, as everywhere in the hub
        format=_negotiate(request, query.format),
        since=query.since,
        until=query.until,
        limit=query.limit,
        cursor=query.cursor,
        pointer_base="",
    )


def _answer(
    runtime: Runtime,
    identifier: str,
    pointer: str,
    *,
    format: ReportFormat,
    since: datetime | None,
    until: datetime | None,
    limit: int,
    cursor: str | None,
    pointer_base: str = "/query",
) -> Response:
    _no_nul(cursor, f"{pointer_base}/cursor")
    try:
        identifier = reports.check_identifier(identifier)
    except InvalidIdentifier as exc:
        raise _invalid(pointer, str(exc)) from None
    since, until = _period(since, until, pointer_base)
    try:
        return _report(
            runtime,
            identifier=identifier,
            chosen=format,
            since=since,
            until=until,
            limit=limit,
            cursor=cursor,
            pointer_base=pointer_base,
        )
    except Problem:
        raise
    except Exception:
        # Not the app's catch-all: it would log the path, and the path holds the identifier.
        log.exception("a data-subject report failed")
        raise Problem(
            500,
            "internal-error",
            "Internal error",
            "the hub failed to make this report; its request id is in the logs",
        ) from None


def _report(
    runtime: Runtime,
    *,
    identifier: str,
    chosen: ReportFormat,
    since: datetime | None,
    until: datetime | None,
    limit: int,
    cursor: str | None,
    pointer_base: str,
) -> Response:
    subject_hash = runtime.subject_hash(identifier)
    where = reports.subject_filter(subject_hash, since=since, until=until)
    engine = runtime.engine
    generated_at = utcnow()
    with Session(engine) as session:
        if cursor is not None and chosen is ReportFormat.JSON:
            try:
                size, after = reports.decode_cursor(cursor)
            except BadReportCursor as exc:
                raise _bad_cursor(exc, pointer_base) from None
            checkpoint = reports.checkpoint_of_size(session, size) if size else None
            if size and checkpoint is None:
                raise _bad_cursor(
                    ValueError("the cursor names no checkpoint of this hub"), pointer_base
                )
        else:
            after, checkpoint = 0, reports.latest_checkpoint(session)
        head = reports.header(
            identifier=identifier,
            subject_hash=subject_hash,
            checkpoint=checkpoint,
            keys=reports.signing_keys(session),
            archived=reports.archives(session),
            since=since,
            until=until,
            generated_at=generated_at,
        )
        if chosen is ReportFormat.JSON:
            rows, more = reports.page(session, where=where, after=after, limit=limit)
            items = reports.accesses(
                session, rows, checkpoint=checkpoint, names=reports.Names(session)
            )
            last = rows[-1].seq if rows and more else None
            body = {
                **head,
                "accesses": items,
                "count": len(items),
                "pending": sum(1 for i in items if i["pending"]),
                "next_cursor": (
                    reports.encode_cursor(checkpoint.size if checkpoint else 0, last)
                    if last is not None
                    else None
                ),
            }
            return Response(orjson.dumps(body), media_type="application/json")
        if chosen is ReportFormat.PDF and queries.total(session, where=where) > PDF_MAX_ACCESSES:
            raise Problem(
                422,
                "report-too-long",
                "Report too long for a PDF",
                f"more than {PDF_MAX_ACCESSES} accesses: narrow the period with since and "
                "until, or ask for CSV",
                errors=[{"pointer": f"{pointer_base}/format", "message": "too many accesses"}],
            )
    name = f"subject-{subject_hash[:12]}-{generated_at.strftime('%Y%m%dT%H%M%SZ')}"
    accesses = reports.all_accesses(lambda: Session(engine), where=where, checkpoint=checkpoint)
    if chosen is ReportFormat.CSV:
        return StreamingResponse(
            reports.csv_rows(accesses, reports.CSV_COLUMNS),
            media_type=CSV,
            headers=_attachment(f"{name}.csv"),
        )
    from audit import pdf

    listed = list(accesses)  # at most PDF_MAX_ACCESSES
    document = pdf.render(head, listed, generated_at=generated_at)
    headers = {**_attachment(f"{name}.pdf"), "x-lgsp-accesses": str(len(listed))}
    return Response(document, media_type=PDF, headers=headers)
