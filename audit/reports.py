"""Data-subject reports (báo cáo truy cập dữ liệu cá nhân): every access to one person's data,
each with its inclusion proof against a signed checkpoint.

The person is named by their identifier only long enough to hash it (the caller hashes it with
the hub's subject key); the report holds the keyed hash and a masked form, never the identifier.

Proofs are against one checkpoint for the whole report: the latest when the report starts. A
paged JSON report carries that checkpoint's size in its cursor, so every page proves against the
same root even if the hub signs newer checkpoints meanwhile. A record not yet covered by it
(written after, or not yet integrated) is listed with `proof: null, pending: true`: ask again
after the next checkpoint (a few seconds).

Formats: JSON pages (`accesses` oldest first, `next_cursor`), CSV (one row per access, the whole
history streamed a page at a time), PDF (printable, audit/pdf.py).
"""

from __future__ import annotations

import base64
import binascii
import csv
import io
import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from datetime import datetime
from pathlib import PurePath
from typing import Any

from sqlmodel import Session, col, select

from audit import proofs
from audit.canonical import COLUMNS, format_time, leaf_hash, record_document
from audit.errors import BadReportCursor, InvalidIdentifier
from audit.models import AuditArchive, AuditKey
from audit.proofs import StoredCheckpoint
from audit.queries import BIGINT_MAX, ExchangeFilter, narrow
from audit.records import ExchangeRecord
from registry.models import Agency, Consumer, Grant

REPORT_PAGE = 500  # accesses per JSON page by default, and rows read per query when streaming
_IDENTIFIER = re.compile(r"[0-9]{12}|[0-9]{9}")


def check_identifier(identifier: str) -> str:
    """The identifier, stripped, if it is a 12-digit personal identification number (số định
    danh cá nhân / CCCD) or a 9-digit old identity card number (CMND); else InvalidIdentifier.
    The message never repeats the identifier."""
    value = identifier.strip()
    if not _IDENTIFIER.fullmatch(value):
        raise InvalidIdentifier(
            "must be a 12-digit personal identification number or a 9-digit identity card number"
        )
    return value


def mask(identifier: str) -> str:
    """Enough of the identifier for a person to recognise it: 0012******45, 012****89."""
    head = 4 if len(identifier) >= 12 else 3
    return identifier[:head] + "*" * (len(identifier) - head - 2) + identifier[-2:]


def columns(row: ExchangeRecord) -> dict[str, Any]:
    """The record's columns as read (no serialiser in between: `kind` may come back as text)."""
    return {name: getattr(row, name) for name in COLUMNS}


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


# ---------------------------------------------------------------- checkpoint and proofs


def checkpoint_public(checkpoint: StoredCheckpoint) -> dict[str, Any]:
    """A checkpoint as GET /audit/checkpoints/latest shows it."""
    return {
        "size": checkpoint.size,
        "root": b64(checkpoint.root),
        "time": format_time(checkpoint.time),
        "key_id": checkpoint.key_id,
        "note": checkpoint.note,
    }


def latest_checkpoint(session: Session) -> StoredCheckpoint | None:
    return proofs.latest_checkpoint(session.connection())


def checkpoint_of_size(session: Session, size: int) -> StoredCheckpoint | None:
    return proofs.checkpoint_of_size(session.connection(), size)


def archives(session: Session) -> list[dict[str, Any]]:
    """The ranges of the log moved to archive files (retention): their records are no longer
    listed here, but their files hold them with proofs (each verifies as a bundle)."""
    rows = session.exec(select(AuditArchive).order_by(col(AuditArchive.first_leaf)))
    return [
        {
            "first_leaf": a.first_leaf,
            "end_leaf": a.end_leaf,
            "min_seq": a.min_seq,
            "max_seq": a.max_seq,
            "records": a.records,
            "file": PurePath(a.path).name,
            "sha256": a.sha256,
            "created_at": format_time(a.created_at),
        }
        for a in rows
    ]


def signing_keys(session: Session) -> list[dict[str, Any]]:
    """Every key that signed checkpoints, oldest first (as GET /audit/keys lists them)."""
    rows = session.exec(select(AuditKey).order_by(col(AuditKey.created_at)))
    return [
        {
            "key_id": k.key_id,
            "name": k.name,
            "vkey": k.vkey,
            "created_at": format_time(k.created_at),
            "retired_at": format_time(k.retired_at) if k.retired_at else None,
        }
        for k in rows
    ]


# ---------------------------------------------------------------- accesses


OUTCOMES = {2: "served", 3: "served", 4: "refused", 5: "failed"}


def outcome(hub_status: int | None) -> str:
    """served (2xx), refused (4xx: no grant, wrong purpose, invalid request), failed (5xx)."""
    return OUTCOMES.get((hub_status or 0) // 100, "recorded")


class Names:
    """Agency names, consumer titles and grants, looked up once each."""

    def __init__(self, session: Session) -> None:
        self._session = session
        self._agencies: dict[str, str | None] = {}
        self._consumers: dict[str, str | None] = {}
        self._grants: dict[int, str | None] = {}

    def grant(self, grant_id: int | None) -> str | None:
        """The agreement a grant id stands for: `consumer → service` (None once it is deleted;
        its id is never given to another grant)."""
        if grant_id is None:
            return None
        if grant_id not in self._grants:
            found = self._session.get(Grant, grant_id)
            self._grants[grant_id] = f"{found.consumer} → {found.service}" if found else None
        return self._grants[grant_id]

    def agency(self, code: str | None) -> str | None:
        if code is None:
            return None
        if code not in self._agencies:
            found = self._session.get(Agency, code)
            self._agencies[code] = found.name if found else None
        return self._agencies[code]

    def consumer(self, name: str | None) -> str | None:
        if name is None:
            return None
        if name not in self._consumers:
            found = self._session.exec(select(Consumer).where(Consumer.name == name)).first()
            self._consumers[name] = found.title if found else None
        return self._consumers[name]


def accesses(
    session: Session,
    rows: list[ExchangeRecord],
    *,
    checkpoint: StoredCheckpoint | None,
    names: Names,
) -> list[dict[str, Any]]:
    """The accesses as reported: who, what, why, the outcome, and the proof that each is in the
    log (None, pending, for a record the checkpoint does not cover yet)."""
    seqs = [int(r.seq or 0) for r in rows]
    found = (
        proofs.inclusions(session.connection(), seqs, checkpoint)
        if checkpoint is not None
        else [None] * len(rows)
    )
    return [
        access(row, proven, checkpoint=checkpoint, names=names)
        for row, proven in zip(rows, found, strict=True)
    ]


def access(
    row: ExchangeRecord,
    proven: tuple[int, bytes, list[bytes]] | None,
    *,
    checkpoint: StoredCheckpoint | None,
    names: Names,
) -> dict[str, Any]:
    # The leaf hash shown is the record's as it reads now: should the record have been altered
    # since it was logged, its proof fails, which is what a verifier is to find out.
    document = record_document(columns(row))
    return {
        "record_id": row.id,
        "seq": row.seq,
        "time": document["time"],
        "kind": document["kind"],
        "agency": row.agency,
        "agency_name": names.agency(row.agency),
        "consumer": row.consumer,
        "consumer_title": names.consumer(row.consumer),
        "service": row.service,
        "version": row.version,
        "route": row.route,
        "purpose": row.purpose,
        "grant_id": row.grant_id,
        "grant": names.grant(row.grant_id),
        "outcome": outcome(row.hub_status),
        "hub_status": row.hub_status,
        "provider_status": row.provider_status,
        "request_id": row.request_id,
        "trace_id": row.trace_id,
        "leaf_index": proven[0] if proven else None,
        "leaf_hash": b64(leaf_hash(document)),
        "tree_size": checkpoint.size if proven and checkpoint else None,
        "proof": [b64(h) for h in proven[2]] if proven else None,
        "pending": proven is None,
        "record": document,
    }


def subject_filter(
    subject_hash: str, *, since: datetime | None, until: datetime | None
) -> ExchangeFilter:
    return ExchangeFilter(subject_hash=subject_hash, since=since, until=until)


def page(
    session: Session, *, where: ExchangeFilter, after: int, limit: int
) -> tuple[list[ExchangeRecord], bool]:
    """Up to `limit` matching records with seq > after, oldest first; and whether more follow."""
    query = narrow(select(ExchangeRecord), where).where(col(ExchangeRecord.seq) > after)
    rows = list(session.exec(query.order_by(col(ExchangeRecord.seq)).limit(limit + 1)))
    return rows[:limit], len(rows) > limit


def encode_cursor(size: int, seq: int) -> str:
    return base64.urlsafe_b64encode(f"r:{size}:{seq}".encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[int, int]:
    """(checkpoint size, last seq) from a report cursor."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        prefix, size, seq = raw.split(":")
        if prefix != "r" or not all(v.isascii() and v.isdigit() for v in (size, seq)):
            raise ValueError
        found = int(size), int(seq)
        if max(found) > BIGINT_MAX:  # sizes and seqs are BIGINT on PostgreSQL
            raise ValueError
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise BadReportCursor("the cursor is not one this API returned") from None
    return found


def header(
    *,
    identifier: str,
    subject_hash: str,
    checkpoint: StoredCheckpoint | None,
    keys: list[dict[str, Any]],
    since: datetime | None,
    until: datetime | None,
    generated_at: datetime,
    archived: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """What a report says once, above its accesses."""
    return {
        "title": "Báo cáo truy cập dữ liệu cá nhân / Personal data access report",
        "subject": {"masked": mask(identifier), "subject_hash": subject_hash},
        "generated_at": format_time(generated_at),
        "since": format_time(since) if since else None,
        "until": format_time(until) if until else None,
        "checkpoint": checkpoint_public(checkpoint) if checkpoint else None,
        "keys": keys,
        # Records moved to archive files are not listed: a full answer also searches these.
        "archived": archived or [],
        "verify": VERIFY_TEXT,
    }


VERIFY_TEXT = (
    "Each access is a leaf of the hub's audit log (RFC 9162 Merkle tree). leaf_hash = "
    "SHA-256(0x00 || canonical JSON of record); the proof links it to the root of the signed "
    "checkpoint (C2SP signed note), whose signature checks against the keys listed. Check "
    "offline with `lgsp audit verify-bundle`, or with any RFC 9162 implementation."
)


# ---------------------------------------------------------------- CSV

CSV_COLUMNS = (
    "time",
    "record_id",
    "seq",
    "kind",
    "agency",
    "agency_name",
    "consumer",
    "consumer_title",
    "service",
    "version",
    "route",
    "purpose",
    "grant_id",
    "grant",
    "outcome",
    "hub_status",
    "provider_status",
    "request_id",
    "trace_id",
    "leaf_index",
    "leaf_hash",
    "tree_size",
    "pending",
    "proof",
)


# Columns the hub computes (hashes, proofs, ids), written exactly: a base64 hash may begin with
# "+", and evidence is not to be altered. Only text a caller chose is defused.
CSV_RAW = frozenset(
    {"leaf_hash", "proof", "record_id", "id", "subject_hash", "trace_id", "request_sha256",
     "response_sha256"}
)  # fmt: skip


def csv_cell(value: Any, *, raw: bool = False) -> str:
    """A CSV cell. Unless `raw`, text a spreadsheet would run as a formula (=, +, -, @ first)
    gets a leading apostrophe (OWASP): callers choose request ids and purposes."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return " ".join(str(v) for v in value)
    text = str(value)
    if not raw and not isinstance(value, int) and text[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + text
    return text


def csv_rows(
    items: Iterable[Mapping[str, Any]], columns: tuple[str, ...], *, raw: frozenset[str] = CSV_RAW
) -> Iterator[str]:
    """The header line, then one line per item (CRLF, as RFC 4180), each as soon as it is
    ready; the columns in `raw` are written as they are."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    exact = [c in raw for c in columns]

    def line(cells: Iterable[str]) -> str:
        buffer.seek(0)
        buffer.truncate()
        writer.writerow(list(cells))
        return buffer.getvalue()

    yield line(columns)
    for item in items:
        yield line(csv_cell(item.get(c), raw=r) for c, r in zip(columns, exact, strict=True))


# ---------------------------------------------------------------- the whole history


def all_accesses(
    sessions: Callable[[], Session],
    *,
    where: ExchangeFilter,
    checkpoint: StoredCheckpoint | None,
    chunk: int = REPORT_PAGE,
) -> Iterator[dict[str, Any]]:
    """Every access matching `where`, oldest first, read `chunk` at a time, each page in its
    own short session."""
    after = 0
    while True:
        with sessions() as session:
            rows, more = page(session, where=where, after=after, limit=chunk)
            items = accesses(session, rows, checkpoint=checkpoint, names=Names(session))
        yield from items
        if not more or not rows:
            return
        assert rows[-1].seq is not None
        after = rows[-1].seq
