"""One call from an agency's application: its request id, its trace, and what it accumulates for
its exchange record (who, what, how it ended), recorded before the answer leaves."""

from __future__ import annotations

import hashlib
import random
import time
from dataclasses import dataclass, field
from typing import Any

from audit.errors import AuditUnavailable
from audit.records import Record, new_record_id
from audit.writer import AuditWriter
from gateway.problems import Problem
from registry.types import utcnow

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


@dataclass(slots=True, kw_only=True)
class Call(Record):
    """One call, as it goes: its exchange record, filled in step by step (so that a call refused
    at any step is recorded with everything known by then), finished when the answer is known."""

    request_id: str  # always known: the caller's X-Request-Id or a new one
    started: int = field(default_factory=time.perf_counter_ns)
    request_body: bytes | None = None  # only its size and SHA-256 are recorded

    def finish(
        self,
        status: int,
        response: bytes | None = None,
        *,
        details: dict[str, Any] | None = None,
    ) -> Record:
        """The record of the call ending now with `status` (and `response`, whose size and
        SHA-256 are kept, never its content). The writer takes the call itself: it reads only
        the record's fields."""
        request = self.request_body
        self.time = utcnow()
        self.hub_status = status
        self.latency_us = (time.perf_counter_ns() - self.started) // 1000
        if request is not None:
            self.request_size = len(request)
            self.request_sha256 = hashlib.sha256(request).hexdigest()
        if response is not None:
            self.response_size = len(response)
            self.response_sha256 = hashlib.sha256(response).hexdigest()
        if self.error:
            self.error = self.error[:1000]
        self.details = details
        return self


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
