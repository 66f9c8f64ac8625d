"""The asynchronous exchange for applications: publish to a topic, read a group subscription.

    POST /topics/{topic}/messages          publish one message or a batch (202 once durable)
    GET  /subscriptions/{name}/messages    read a group subscription from its positions
    POST /subscriptions/{name}/positions   commit what was read

Callers authenticate with their consumer API key, as on the data plane. Every call, refused or
not, leaves an exchange record: an accepted publish's record is committed in the transaction
that stores its messages; a refusal's goes through the audit writer before the answer leaves.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import time
from typing import Any

import orjson
from fastapi import APIRouter, Query, Request
from fastapi.responses import Response
from sqlalchemy.exc import SQLAlchemyError

from audit.errors import AuditUnavailable
from audit.records import RecordKind, new_record_id
from gateway.dataplane import authenticate, valid_request_id
from gateway.problems import PROBLEM_CONTENT_TYPE, Problem
from gateway.runtime import Runtime
from messaging import pull
from messaging.entries import SubscriptionEntry
from messaging.errors import MessagingError, Transient
from messaging.publish import check, store
from registry.types import Delivery, SubscriptionStatus, utcnow
from schemas.nesting import too_deep

log = logging.getLogger(__name__)

router = APIRouter(tags=["messaging"])

MAX_DEPTH = 64
MAX_PULL = 1000
PULL_POLL_SECONDS = 0.25  # a long poll looks again this often (or when this process relays)


class Caller:
    """Who called, filled in by authentication (for the record of refused calls too)."""

    __slots__ = ("agency", "consumer")

    def __init__(self) -> None:
        self.consumer: str | None = None
        self.agency: str | None = None


def _headers(request: Request) -> dict[str, str]:
    return {k.lower(): v for k, v in request.headers.items()}


def _request_id(request: Request) -> str:
    rid: str = request.scope.get("state", {}).get("request_id") or new_record_id()
    return rid


def _json(status: int, body: Any) -> Response:
    return Response(
        orjson.dumps(body),
        status_code=status,
        media_type="application/json",
    )  # the Hub adds X-Request-Id


def _problem(problem: Problem, request_id: str) -> Response:
    return Response(
        problem.body(request_id),
        status_code=problem.status,
        media_type=PROBLEM_CONTENT_TYPE,
        headers=problem.headers,
    )


async def _body(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length", "")
    too_big = Problem(
        413, "body-too-large", "Request body too large", f"the body may be at most {limit} bytes"
    )
    if declared.isdigit() and int(declared) > limit:
        raise too_big
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise too_big
        chunks.append(chunk)
    return b"".join(chunks)


def _parse(raw: bytes, content_type: str) -> Any:
    media = content_type.split(";")[0].strip().lower()
    if media != "application/json" and not (
        media.startswith("application/") and media.endswith("+json")
    ):
        raise Problem(
            415,
            "unsupported-media-type",
            "Unsupported media type",
            f"send the messages as application/json, not {media or 'untyped'}",
        )
    try:
        document = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise Problem(
            400, "malformed-json", "Malformed JSON", f"the body is not valid JSON: {exc}"
        ) from None
    # Checked on the parsed document, as the data plane does (scanning the raw bytes cost
    # 4 ms per 200-message batch); a document of n levels takes at least 2n bytes.
    if len(raw) > 2 * MAX_DEPTH and too_deep(document, MAX_DEPTH):
        raise Problem(
            400, "too-deep", "Document too deep", f"the body nests more than {MAX_DEPTH} levels"
        )
    return document


def _items(document: Any, max_batch: int) -> tuple[list[Any], bool]:
    """The messages of a body, and whether it was a single message."""
    if isinstance(document, dict) and "messages" in document:
        extra = sorted(set(document) - {"messages"})
        messages = document["messages"]
        if extra or not isinstance(messages, list) or not messages:
            where = f"/{extra[0]}" if extra else "/messages"
            raise Problem(
                400,
                "malformed-batch",
                "Malformed batch",
                'a batch is {"messages": [{"value": …}, …]} with at least one message',
                errors=[{"pointer": where, "message": "not a list of messages"}],
            )
        if len(messages) > max_batch:
            raise Problem(
                413,
                "batch-too-large",
                "Batch too large",
                f"a batch holds at most {max_batch} messages, not {len(messages)}",
                errors=[{"pointer": "/messages", "message": f"at most {max_batch} messages"}],
            )
        return messages, False
    if isinstance(document, dict) and "value" in document:
        return [document], True
    raise Problem(
        400,
        "malformed-batch",
        "Malformed message",
        'send {"value": …} for one message or {"messages": [{"value": …}, …]} for a batch',
        errors=[{"pointer": "", "message": "neither a message nor a batch"}],
    )


@router.post("/topics/{topic}/messages", status_code=202)
async def publish(
    topic: str,
    request: Request,
    partial: bool = Query(default=False, description="accept the valid messages of a batch"),
) -> Response:
    """Publish one message (`{"value": …}`) or a batch (`{"messages": [...]}`) to a topic.

    202 once the messages are durable, with their ids; each message is checked against the
    topic's schema. An idempotency key (per message, or the Idempotency-Key header) makes a
    retried publish answer the first one's ids without storing anything again.
    """
    runtime: Runtime = request.app.state.runtime
    rid = _request_id(request)
    caller = Caller()
    started = time.perf_counter_ns()
    raw = b""
    try:
        snapshot = runtime.snapshot
        key = authenticate(_headers(request), snapshot.keys, runtime.settings.key_pepper, caller)
        entry = snapshot.topics.get(topic)
        if entry is None:
            raise Problem(404, "unknown-topic", "Unknown topic", f"there is no topic {topic}")
        if key.consumer not in entry.publishers:
            raise Problem(
                403,
                "not-a-publisher",
                "Not allowed to publish",
                f"{key.consumer} may not publish to {topic}: its owner ({entry.agency_code}) "
                "lists the applications that may",
            )
        raw = await _body(request, runtime.settings.max_body_bytes)
        items, single = _items(
            _parse(raw, request.headers.get("content-type", "")),
            runtime.settings.max_publish_batch,
        )
        header_key = request.headers.get("idempotency-key")
        if header_key is not None and not valid_request_id(header_key):
            raise Problem(
                400,
                "bad-idempotency-key",
                "Bad Idempotency-Key",
                "the Idempotency-Key header must be 1 to 128 printable ASCII characters",
            )
        accepted, refused = check(entry, items, single=single, header_key=header_key)
        if refused and (not partial or not accepted):
            statuses = {r.status for r in refused}
            status = 400 if 400 in statuses else 413 if 413 in statuses else 422
            errors = [e for r in refused for e in r.errors][:100]
            count = len(refused)
            raise Problem(
                status,
                {400: "malformed-message", 413: "message-too-large", 422: "schema-violation"}[
                    status
                ],
                {400: "Malformed message", 413: "Message too large", 422: "Invalid message"}[
                    status
                ],
                f"{count} of {len(items)} message{'s' if len(items) > 1 else ''} refused "
                f"(topic {topic}, schema {entry.schema_label})"
                + (
                    ""
                    if single or partial
                    else "; nothing was accepted (send ?partial=true to accept the valid ones)"
                ),
                errors=errors,
            )
        record = _record(rid, caller, topic, 202, raw, started)
        record["message_id"] = accepted[0].id if single else None
        try:
            await asyncio.to_thread(
                store,
                runtime.engine,
                topic=topic,
                producer=key.consumer,
                request_id=rid,
                candidates=accepted,
                record=record,
            )
        except SQLAlchemyError as exc:
            log.error("publish to %s not stored: %s", topic, type(exc).__name__)
            raise Problem(
                503,
                "not-stored",
                "Messages not stored",
                "the hub could not store the messages; none was accepted, retry later",
                headers={"retry-after": "1"},
            ) from None
    except Problem as problem:
        row = _record(rid, caller, topic, problem.status, raw, started)
        row["error"] = problem.detail[:1000]
        try:
            await runtime.writer.write(row)
        except AuditUnavailable:
            problem = Problem(
                503,
                "audit-unavailable",
                "The call could not be recorded",
                "the audit log could not commit this call's record; retry later",
            )
        return _problem(problem, rid)
    runtime.relay.wake()
    body = {
        "topic": topic,
        "accepted": len(accepted),
        "messages": [
            {
                "index": c.index,
                "id": c.id,
                "partition": c.partition,
                "key": c.key,
                "duplicate": c.duplicate,
            }
            for c in accepted
        ],
        "rejected": [{"index": r.index, "status": r.status, "errors": r.errors} for r in refused],
    }
    return _json(202, body)


def _record(
    rid: str, caller: Caller, topic: str, status: int, raw: bytes, started: int
) -> dict[str, Any]:
    return {
        "id": new_record_id(),
        "kind": RecordKind.PUBLISH.value,
        "time": utcnow(),
        "request_id": rid,
        "consumer": caller.consumer,
        "agency": caller.agency,
        "topic": topic[:120],
        "route": "POST /topics/{topic}/messages",
        "hub_status": status,
        "latency_us": (time.perf_counter_ns() - started) // 1000,
        "request_size": len(raw),
        "request_sha256": hashlib.sha256(raw).hexdigest(),
    }


# ---------------------------------------------------------------- group subscriptions (pull)


def _broker_problem(exc: MessagingError, topic: str) -> Problem:
    """A broker failure under a group read or commit: 503. What failed goes to the log (and a
    topic set aside to /readyz), not to the consumer: it may name the broker's hosts."""
    log.warning("group subscription of %s: %r", topic, exc)
    if isinstance(exc, Transient):
        return Problem(
            503,
            "broker-unavailable",
            "Broker unavailable",
            "the message broker did not answer; nothing was read or committed, try again",
            headers={"Retry-After": "1"},
        )
    return Problem(
        503,
        "topic-unavailable",
        "Topic unavailable on the broker",
        f"topic {topic} cannot be read from the message broker until an operator fixes it",
    )


def _group(request: Request, name: str, caller: Caller) -> tuple[Runtime, SubscriptionEntry]:
    runtime: Runtime = request.app.state.runtime
    snapshot = runtime.snapshot
    key = authenticate(_headers(request), snapshot.keys, runtime.settings.key_pepper, caller)
    entry = snapshot.subscriptions.get(name)
    if entry is None or entry.consumer != key.consumer:
        # Another consumer's subscription is not revealed.
        raise Problem(
            404, "unknown-subscription", "Unknown subscription", f"{key.consumer} has no "
            f"subscription {name}",
        )  # fmt: skip
    if entry.delivery is not Delivery.GROUP:
        raise Problem(
            409,
            "push-subscription",
            "Messages are pushed",
            f"subscription {name} is delivered by push to its endpoint; it cannot be read",
        )
    if entry.status is not SubscriptionStatus.ACTIVE:
        raise Problem(
            409,
            "subscription-inactive",
            "Subscription not active",
            f"subscription {name} is {entry.status.value}; an operator resumes it",
        )
    return runtime, entry


async def _recorded(
    runtime: Runtime, rid: str, caller: Caller, name: str, status: int, details: dict[str, Any],
    error: str | None, started: int,
) -> None:  # fmt: skip
    entry = runtime.snapshot.subscriptions.get(name)
    await runtime.writer.write(
        {
            "id": new_record_id(),
            "kind": RecordKind.DELIVERY.value,
            "time": utcnow(),
            "request_id": rid,
            "consumer": caller.consumer,
            "agency": caller.agency,
            "topic": entry.topic if entry else None,
            "subscription": name[:63],
            "hub_status": status,
            "latency_us": (time.perf_counter_ns() - started) // 1000,
            "error": error,
            "details": details,
        }
    )


@router.get("/subscriptions/{name}/messages")
async def read_messages(
    name: str,
    request: Request,
    limit: int = Query(default=100, ge=1, le=MAX_PULL, alias="max"),
    wait: float = Query(default=0, ge=0, le=30),
) -> Response:
    """The next messages of a group subscription after its committed positions (at least once:
    they come back until `POST .../positions` commits the `next` positions)."""
    rid = _request_id(request)
    caller = Caller()
    started = time.perf_counter_ns()
    try:
        runtime, entry = _group(request, name, caller)
        deadline = time.monotonic() + wait
        while True:
            signal = runtime.delivery.signal()
            try:
                messages, following = await runtime.threads.run(
                    pull.read, runtime.engine, runtime.broker, entry, max_records=limit
                )
            except MessagingError as exc:
                raise _broker_problem(exc, entry.topic) from None
            remaining = deadline - time.monotonic()
            if messages or remaining <= 0:
                break
            # asyncio.timeout, not wait_for: on 3.11 wait_for can swallow a cancellation.
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(min(remaining, PULL_POLL_SECONDS)):
                    await signal.wait()
    except Problem as problem:
        runtime = request.app.state.runtime
        await _recorded(runtime, rid, caller, name, problem.status, {}, problem.detail, started)
        return _problem(problem, rid)
    ids = [m.message_id for m in messages]
    await _recorded(
        runtime,
        rid,
        caller,
        name,
        200,
        {"read": ids, "next": {str(p): o for p, o in following.items()}},
        None,
        started,
    )
    body = {
        "subscription": name,
        "topic": entry.topic,
        "messages": [
            {
                "id": m.message_id,
                "partition": m.partition,
                "offset": m.offset,
                "key": m.key,
                "timestamp": m.timestamp_ms,
                "value": orjson.Fragment(m.value),
            }
            for m in messages
        ],
        "next": {str(p): o for p, o in following.items()},
    }
    return _json(200, body)


@router.post("/subscriptions/{name}/positions")
async def commit_positions(name: str, request: Request) -> Response:
    """Commit a group subscription's positions: `{"positions": {"0": 12, "1": 7}}`."""
    rid = _request_id(request)
    caller = Caller()
    started = time.perf_counter_ns()
    try:
        runtime, entry = _group(request, name, caller)
        document = _parse(await _body(request, 65_536), request.headers.get("content-type", ""))
        wanted = document.get("positions") if isinstance(document, dict) else None
        if (
            not isinstance(wanted, dict)
            or not wanted
            or not all(
                isinstance(p, str) and p.isdigit() and type(o) is int for p, o in wanted.items()
            )
        ):
            raise Problem(
                400,
                "malformed-positions",
                "Malformed positions",
                'send {"positions": {"<partition>": <next offset>, …}}',
                errors=[{"pointer": "/positions", "message": "partition numbers to offsets"}],
            )
        new = {int(p): o for p, o in wanted.items()}
        try:
            wrong = await asyncio.to_thread(pull.commit, runtime.engine, runtime.broker, entry, new)
        except MessagingError as exc:
            raise _broker_problem(exc, entry.topic) from None
        if wrong is not None:
            where, _, message = wrong.partition(": ")
            raise Problem(
                422, "bad-position", "Bad position", message,
                errors=[{"pointer": where, "message": message}],
            )  # fmt: skip
    except Problem as problem:
        runtime = request.app.state.runtime
        await _recorded(runtime, rid, caller, name, problem.status, {}, problem.detail, started)
        return _problem(problem, rid)
    await _recorded(
        runtime,
        rid,
        caller,
        name,
        200,
        {"committed": {str(p): o for p, o in new.items()}},
        None,
        started,
    )
    return _json(200, {"subscription": name, "positions": {str(p): o for p, o in new.items()}})
