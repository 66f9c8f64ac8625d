"""Receiving the hub's pushes as a subscriber would: Standard Webhooks checks, then each once.

The hub signs every push (`webhook-id`, `webhook-timestamp`, `webhook-signature`); a receiver
verifies it with the reference library, as a real sector system would with any Standard Webhooks
library, refuses what fails (401: wrong or missing signature, timestamp outside five minutes)
and applies each `webhook-id` once: the hub may deliver a message again after a lost answer, and
the id stays the same across retries, so a repeat is answered 200 without applying it twice.
"""

from __future__ import annotations

import json
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from standardwebhooks.webhooks import Webhook, WebhookVerificationError
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from simulators.formats import format_timestamp, now_in_vietnam
from simulators.web import Problem

REMEMBERED_IDS = 10_000  # ids kept for de-duplication; the oldest are forgotten first


@dataclass(frozen=True, slots=True)
class Delivery:
    """One verified push: the message (`value`) and what the hub says about it."""

    webhook_id: str  # the hub's message id
    value: Any
    topic: str | None
    subscription: str | None
    attempt: int | None


Apply = Callable[[Delivery], Mapping[str, Any]]


class WebhookLog:
    """Every push that reached a simulator and what became of it (for the tour and tests)."""

    def __init__(self) -> None:
        self.entries: list[dict[str, Any]] = []

    def record(self, **fields: Any) -> None:
        self.entries.append({"at": format_timestamp(now_in_vietnam()), **fields})

    def routes(self, path: str = "/_sim/webhooks") -> list[Route]:
        async def read(request: Request) -> Response:
            """Pushes received: webhook id, topic, subscription, attempt, outcome."""
            return JSONResponse(self.entries)

        async def clear(request: Request) -> Response:
            self.entries.clear()
            return Response(status_code=204)

        return [Route(path, read, methods=["GET"]), Route(path, clear, methods=["DELETE"])]


def _attempt(value: str | None) -> int | None:
    return int(value) if value is not None and value.isdigit() else None


class WebhookReceiver:
    """One push endpoint: its signing secrets (several during a rotation) and the ids applied."""

    def __init__(self, secrets: Sequence[str], *, endpoint: str, log: WebhookLog) -> None:
        if not secrets:
            raise ValueError(f"{endpoint}: a push endpoint needs at least one signing secret")
        self.endpoint = endpoint
        self.log = log
        self._verifiers = [Webhook(secret) for secret in secrets]
        self._applied: OrderedDict[str, dict[str, Any]] = OrderedDict()

    def _verify(self, body: bytes, headers: dict[str, str]) -> None:
        reason = "no signing secret matched"
        for verifier in self._verifiers:
            try:
                verifier.verify(body, headers, json_parse=False)
            except WebhookVerificationError as exc:
                reason = str(exc)  # the library's own words: a timestamp too old, no match...
            except ValueError as exc:  # a malformed signature list, base64 or UTF-8
                reason = f"malformed webhook headers: {exc}"
            else:
                return
        raise Problem(
            401,
            "Invalid webhook",
            f"the push failed Standard Webhooks verification: {reason}",
            kind="invalid-webhook",
        )

    async def receive(self, request: Request, apply: Apply) -> Response:
        """Verify the push, then apply it unless its webhook-id was applied already."""
        body = await request.body()
        headers = dict(request.headers)
        webhook_id = headers.get("webhook-id", "")
        topic, subscription = headers.get("x-lgsp-topic"), headers.get("x-lgsp-subscription")
        attempt = _attempt(headers.get("x-lgsp-attempt"))
        seen = {
            "endpoint": self.endpoint,
            "webhook_id": webhook_id or None,
            "topic": topic,
            "subscription": subscription,
            "attempt": attempt,
        }
        try:
            self._verify(body, headers)
        except Problem as problem:
            self.log.record(**seen, outcome="refused", status=401, detail=problem.detail)
            raise
        if webhook_id in self._applied:
            self.log.record(**seen, outcome="duplicate", status=200)
            return JSONResponse(
                {"webhook_id": webhook_id, "duplicate": True, **self._applied[webhook_id]}
            )
        try:
            value = json.loads(body)
        except ValueError as exc:
            self.log.record(**seen, outcome="refused", status=400, detail="not JSON")
            raise Problem(400, "Malformed JSON", f"the body is not valid JSON: {exc}") from exc
        delivery = Delivery(
            webhook_id=webhook_id,
            value=value,
            topic=topic,
            subscription=subscription,
            attempt=attempt,
        )
        try:
            result = dict(apply(delivery))
        except Problem as problem:
            # Not remembered: a corrected redelivery of the same id may still be applied.
            self.log.record(**seen, outcome="refused", status=problem.status, detail=problem.detail)
            raise
        self._applied[webhook_id] = result
        if len(self._applied) > REMEMBERED_IDS:
            self._applied.popitem(last=False)
        self.log.record(**seen, outcome="applied", status=200, result=result)
        return JSONResponse({"webhook_id": webhook_id, "duplicate": False, **result})
