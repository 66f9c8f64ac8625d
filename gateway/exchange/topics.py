"""The asynchronous exchange for applications: publish to a topic, read a group subscription.

    POST /topics/{topic}/messages          publish one message or a batch (202 once durable)
    GET  /subscriptions/{name}/messages    read a group subscription from its positions
    POST /subscriptions/{name}/positions   commit what was read

Callers authenticate with their consumer API key or access token, as on the data plane. Every
call, refused or not, leaves an exchange record: an accepted publish's record is committed in
the transaction that stores its messages; any other's goes through the audit writer before the
answer leaves.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from typing import Any

import orjson
from fastapi import APIRouter, Query, Request, Security
from fastapi.responses import Response
from sqlalchemy.exc import SQLAlchemyError

from audit.records import RecordKind
from gateway.api.deps import CONSUMER_KEY, CONSUMER_TOKEN
from gateway.exchange import bodies, calls, consumers, tokens
from gateway.exchange.calls import Call
from gateway.problems import Problem
from gateway.runtime import Runtime
from messaging import pull
from messaging.entries import SubscriptionEntry
from messaging.errors import MessagingError, Transient
from messaging.publish import check, store
from registry.types import Delivery, SubscriptionStatus

log = logging.getLogger(__name__)

# Consumers' calls: the key is checked by `consumers.authenticate`; declared for /docs.
router = APIRouter(
    tags=["messaging"], dependencies=[Security(CONSUMER_KEY), Security(CONSUMER_TOKEN)]
)

MAX_PULL = 1000
MAX_POSITIONS_BYTES = 65_536
PULL_POLL_SECONDS = 0.25  # a long poll looks again this often (or when this process relays)
PUBLISH_ROUTE = "POST /topics/{topic}/messages"
READ_ROUTE = "GET /subscriptions/{name}/messages"
COMMIT_ROUTE = "POST /subscriptions/{name}/positions"


def _verifier(runtime: Runtime) -> tokens.Verifier:
    return tokens.Verifier.from_settings(runtime.settings)


def _headers(request: Request) -> dict[str, str]:
    return {k.lower(): v for k, v in request.headers.items()}


def _call(request: Request, kind: RecordKind, route: str) -> Call:
    """The call of this request, under the request id the Hub gave it."""
    state = request.scope.get("state", {})
    trace_id, _ = calls.trace_context(request.headers.get("traceparent"))
    request_id = calls.request_id(state.get("request_id"))
    return Call(kind=kind, request_id=request_id, trace_id=trace_id, route=route)


def _json(status: int, body: Any) -> Response:
    # The Hub adds X-Request-Id.
    return Response(orjson.dumps(body), status_code=status, media_type="application/json")


async def _refused(runtime: Runtime, call: Call, problem: Problem) -> Response:
    """Record a refused call, then answer its problem (or 503 if it cannot be recorded)."""
    call.error = call.error or problem.detail
    withheld = await calls.recorded(runtime.writer, call.finish(problem.status))
    return (withheld or problem).response(call.request_id)


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
    call = _call(request, RecordKind.PUBLISH, PUBLISH_ROUTE)
    call.topic = topic[:120]
    call.request_body = b""
    try:
        snapshot = runtime.snapshot
        headers = _headers(request)
        key = consumers.authenticate(
            headers, snapshot, runtime.settings.key_pepper, call, verifier=_verifier(runtime)
        )
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
        raw = await bodies.read_body(request.receive, headers, runtime.settings.max_body_bytes)
        call.request_body = raw
        items, single = _items(
            bodies.parse_json(raw, headers.get("content-type", "")),
            runtime.settings.max_publish_batch,
        )
        header_key = headers.get("idempotency-key")
        if header_key is not None and not calls.valid_request_id(header_key):
            raise Problem(
                400,
                "bad-idempotency-key",
                "Bad Idempotency-Key",
                "the Idempotency-Key header must be 1 to 128 printable ASCII characters",
            )
        accepted, refused = check(entry, items, single=single, header_key=header_key)
        if refused and (not partial or not accepted):
            raise _refusal(topic, entry.schema_label, refused, len(items), single, partial)
        call.message_id = accepted[0].id if single else None
        try:
            await asyncio.to_thread(
                store,
                runtime.engine,
                topic=topic,
                producer=key.consumer,
                request_id=call.request_id,
                candidates=accepted,
                record=call.finish(202),
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
        return await _refused(runtime, call, problem)
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


def _refusal(
    topic: str, schema: str, refused: list[Any], total: int, single: bool, partial: bool
) -> Problem:
    """Why a publish is refused: the worst status among its messages, every error listed."""
    statuses = {r.status for r in refused}
    status = 400 if 400 in statuses else 413 if 413 in statuses else 422
    kinds = {400: "malformed-message", 413: "message-too-large", 422: "schema-violation"}
    titles = {400: "Malformed message", 413: "Message too large", 422: "Invalid message"}
    detail = (
        f"{len(refused)} of {total} message{'s' if total > 1 else ''} refused "
        f"(topic {topic}, schema {schema})"
    )
    if not (single or partial):
        detail += "; nothing was accepted (send ?partial=true to accept the valid ones)"
    errors = [e for r in refused for e in r.errors][:100]
    return Problem(status, kinds[status], titles[status], detail, errors=errors)


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


def _group(request: Request, name: str, call: Call) -> tuple[Runtime, SubscriptionEntry]:
    runtime: Runtime = request.app.state.runtime
    snapshot = runtime.snapshot
    key = consumers.authenticate(
        _headers(request), snapshot, runtime.settings.key_pepper, call, verifier=_verifier(runtime)
    )
    entry = snapshot.subscriptions.get(name)
    if entry is None or entry.consumer != key.consumer:
        # Another consumer's subscription is not revealed.
        raise Problem(
            404,
            "unknown-subscription",
            "Unknown subscription",
            f"{key.consumer} has no subscription {name}",
        )
    call.topic = entry.topic
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


@router.get("/subscriptions/{name}/messages")
async def read_messages(
    name: str,
    request: Request,
    limit: int = Query(default=100, ge=1, le=MAX_PULL, alias="max"),
    wait: float = Query(default=0, ge=0, le=30),
) -> Response:
    """The next messages of a group subscription after its committed positions (at least once:
    they come back until `POST .../positions` commits the `next` positions)."""
    call = _call(request, RecordKind.DELIVERY, READ_ROUTE)
    call.subscription = name[:63]
    try:
        runtime, entry = _group(request, name, call)
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
        return await _refused(request.app.state.runtime, call, problem)
    following_json = {str(p): o for p, o in following.items()}
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
        "next": following_json,
    }
    if messages:
        # A read that hands messages over is a delivery, recorded before they leave; one that
        # finds nothing new leaves no record (see README, "Auditors").
        details = {"read": [m.message_id for m in messages], "next": following_json}
        withheld = await calls.recorded(runtime.writer, call.finish(200, details=details))
        if withheld is not None:
            return withheld.response(call.request_id)
    return _json(200, body)


@router.post("/subscriptions/{name}/positions")
async def commit_positions(name: str, request: Request) -> Response:
    """Commit a group subscription's positions: `{"positions": {"0": 12, "1": 7}}`."""
    call = _call(request, RecordKind.DELIVERY, COMMIT_ROUTE)
    call.subscription = name[:63]
    try:
        runtime, entry = _group(request, name, call)
        raw = await bodies.read_body(request.receive, _headers(request), MAX_POSITIONS_BYTES)
        document = bodies.parse_json(raw, request.headers.get("content-type", ""))
        wanted = document.get("positions") if isinstance(document, dict) else None
        if (
            not isinstance(wanted, dict)
            or not wanted
            or not all(
                isinstance(p, str) and p.isascii() and p.isdigit() and type(o) is int
                for p, o in wanted.items()
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
                422,
                "bad-position",
                "Bad position",
                message,
                errors=[{"pointer": where, "message": message}],
            )
    except Problem as problem:
        return await _refused(request.app.state.runtime, call, problem)
    committed = {str(p): o for p, o in new.items()}
    withheld = await calls.recorded(
        runtime.writer, call.finish(200, details={"committed": committed})
    )
    if withheld is not None:
        return withheld.response(call.request_id)
    return _json(200, {"subscription": name, "positions": committed})
