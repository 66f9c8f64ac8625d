"""One call from an agency's application: its request id, its trace, and what it accumulates for
its exchange record (who, what, how it ended), recorded before the answer leaves."""

from __future__ import annotations

import hashlib
import random
import time
from typing import Any

from audit.errors import AuditUnavailable
from audit.records import Record, RecordKind, new_record_id
from audit.writer import AuditWriter
from gateway.problems import Problem

_HEX = frozenset("0123456789abcdef")


def valid_request_id(value: str) -> bool:
    """An X-Request-Id (or Idempotency-Key) the hub accepts: 1 to 128 printable ASCII."""
    return 0 < len(value) <= 128 and value.isascii() and value.isprintable()


def request_id(presented: str | None) -> str:
    """The caller's X-Request-Id when it is acceptable, else a new one."""
    return presented if presented and valid_request_id(presented) else new_record_id()


def trace_context(traceparent: str | None) -> tuple[str, str]:
    """(trace id, traceparent to send upstream): continue the caller's W3C trace or start one."""
    span = f"{random.getrandbits(64):016x}"
    if traceparent:
        parts = traceparent.strip().split("-")
        if (
            len(parts) == 4
            and len(parts[0]) == 2
            and len(parts[1]) == 32
            and len(parts[2]) == 16
            and len(parts[3]) == 2
            and set(parts[1]) <= _HEX
            and parts[0] != "ff"
            and parts[1] != "0" * 32
        ):
            return parts[1], f"00-{parts[1]}-{span}-{parts[3]}"
    trace_id = f"{random.getrandbits(128):032x}"
    return trace_id, f"00-{trace_id}-{span}-01"


class Call:
    """What one call accumulates for its exchange record, filled in step by step, so that a
    call refused at any step is recorded with everything known by then."""

    __slots__ = (
        "agency",
        "attempts",
        "consumer",
        "error",
        "grant_id",
        "kind",
        "message_id",
        "provider_status",
        "purpose",
        "request_body",
        "request_id",
        "route",
        "service",
        "started",
        "subject_hash",
        "subscription",
        "topic",
        "trace_id",
        "upstream_latency_us",
        "version",
    )

    def __init__(
        self,
        kind: RecordKind,
        request_id: str,
        *,
        trace_id: str | None = None,
        route: str | None = None,
    ) -> None:
        self.started = time.perf_counter_ns()
        self.kind = kind
        self.request_id = request_id
        self.trace_id = trace_id
        self.route = route
        self.consumer: str | None = None
        self.agency: str | None = None
        self.service: str | None = None
        self.version: str | None = None
        self.purpose: str | None = None
        self.grant_id: int | None = None
        self.subject_hash: str | None = None
        self.provider_status: int | None = None
        self.attempts: int | None = None
        self.upstream_latency_us: int | None = None
        self.topic: str | None = None
        self.subscription: str | None = None
        self.message_id: str | None = None
        self.error: str | None = None
        self.request_body: bytes | None = None

    def record(
        self,
        status: int,
        response: bytes | None = None,
        *,
        details: dict[str, Any] | None = None,
    ) -> Record:
        """The exchange record of the call as it ends with `status` (and `response`, whose
        size and SHA-256 are kept, never its content)."""
        request = self.request_body
        return Record(
            kind=self.kind,
            request_id=self.request_id,
            trace_id=self.trace_id,
            consumer=self.consumer,
            agency=self.agency,
            service=self.service,
            version=self.version,
            route=self.route,
            purpose=self.purpose,
            grant_id=self.grant_id,
            subject_hash=self.subject_hash,
            provider_status=self.provider_status,
            hub_status=status,
            latency_us=(time.perf_counter_ns() - self.started) // 1000,
            upstream_latency_us=self.upstream_latency_us,
            request_size=len(request) if request is not None else None,
            response_size=len(response) if response is not None else None,
            request_sha256=hashlib.sha256(request).hexdigest() if request is not None else None,
            response_sha256=hashlib.sha256(response).hexdigest() if response is not None else None,
            attempts=self.attempts,
            topic=self.topic,
            subscription=self.subscription,
            message_id=self.message_id,
            error=self.error[:1000] if self.error else None,
            details=details,
        )


AUDIT_UNAVAILABLE = Problem(
    503,
    "audit-unavailable",
    "The call could not be recorded",
    "the audit log could not commit this call's record, so its answer is withheld; retry later",
    headers={"retry-after": "1"},
)


async def recorded(writer: AuditWriter, record: Record) -> Problem | None:
    """Commit `record` before the answer leaves; the problem to answer instead when the audit
    log cannot take it (an answer never leaves unrecorded)."""
    try:
        await writer.write(record)
    except AuditUnavailable:
        return AUDIT_UNAVAILABLE
    return None
