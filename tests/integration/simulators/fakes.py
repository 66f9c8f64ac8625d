"""A stand-in hub for the simulators' messaging, and Standard Webhooks signing as the hub does it.

The fake hub is a real HTTP server: it takes publications (`POST /topics/{topic}/messages`,
keyed by Idempotency-Key as the real hub is), can fail the first calls with a chosen status,
and serves group subscriptions (`GET /subscriptions/{name}/messages`, `POST .../positions`)
from lists the test fills.
"""

from __future__ import annotations

import json
import threading
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import cache
from pathlib import Path
from typing import Any

import httpx
from standardwebhooks.webhooks import Webhook
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from schemas.validation import compile_validator

CONTRACTS = Path(__file__).parents[3] / "gateway" / "demo" / "schemas"


@cache
def _validator(subject: str) -> Any:
    return compile_validator(json.loads((CONTRACTS / f"{subject}.json").read_text("utf-8")))


def contract_errors(subject: str, document: Any) -> list[str]:
    """What the hub's validator finds wrong with `document` under a bundled contract."""
    return [e.message for e in _validator(subject).iter_errors(document)]


def signed_headers(
    secret: str | list[str],
    body: str,
    *,
    msg_id: str | None = None,
    at: datetime | None = None,
    topic: str = "test.topic",
    subscription: str = "test-sub",
    attempt: int = 1,
) -> dict[str, str]:
    """The headers the hub sends with a push: one v1 signature per secret."""
    secrets = [secret] if isinstance(secret, str) else secret
    msg_id = msg_id or str(uuid.uuid4())
    at = at or datetime.now(UTC)
    signatures = " ".join(Webhook(s).sign(msg_id, at, body) for s in secrets)
    return {
        "content-type": "application/json",
        "webhook-id": msg_id,
        "webhook-timestamp": str(int(at.timestamp())),
        "webhook-signature": signatures,
        "x-lgsp-topic": topic,
        "x-lgsp-subscription": subscription,
        "x-lgsp-attempt": str(attempt),
    }


def push(
    client: httpx.Client,
    path: str,
    value: Any,
    secret: str | list[str],
    **options: Any,
) -> httpx.Response:
    """POST `value` to `path` signed like the hub (options: msg_id, at, topic, ...)."""
    body = json.dumps(value, ensure_ascii=False)
    return client.post(path, content=body.encode(), headers=signed_headers(secret, body, **options))


def stale() -> datetime:
    return datetime.now(UTC) - timedelta(minutes=10)


@dataclass
class Published:
    topic: str
    value: Any
    idempotency_key: str | None
    api_key: str | None
    message_id: str
    duplicate: bool


@dataclass
class FakeHub:
    """Records what simulators publish and serves group subscriptions."""

    api_keys: set[str] = field(default_factory=set)  # empty: any key
    calls: list[dict[str, Any]] = field(default_factory=list)  # every publish call
    published: list[Published] = field(default_factory=list)  # stored once per key
    fail_next: list[tuple[int, dict[str, str]]] = field(default_factory=list)  # (status, headers)
    refuse: dict[str, tuple[int, dict[str, Any]]] = field(default_factory=dict)  # topic ->
    logs: dict[str, list[dict[str, Any]]] = field(default_factory=dict)  # subscription -> msgs
    positions: dict[str, int] = field(default_factory=dict)  # subscription -> next offset
    commits: list[tuple[str, dict[str, int]]] = field(default_factory=list)
    polls: list[str] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def values(self, topic: str) -> list[Any]:
        return [p.value for p in self.published if p.topic == topic]

    def add_message(self, subscription: str, value: Any) -> str:
        """Append a message to the subscription's (single-partition) log; its id."""
        log = self.logs.setdefault(subscription, [])
        message_id = str(uuid.uuid4())
        log.append(
            {
                "id": message_id,
                "partition": 0,
                "offset": len(log),
                "key": None,
                "value": value,
                "timestamp": datetime.now(UTC).isoformat(),
            }
        )
        return message_id

    def _authorised(self, request: Request) -> bool:
        return not self.api_keys or request.headers.get("x-api-key") in self.api_keys

    def app(self) -> Starlette:
        async def publish(request: Request) -> Response:
            topic = request.path_params["topic"]
            body = await request.json()
            key = request.headers.get("idempotency-key")
            api_key = request.headers.get("x-api-key")
            with self._lock:
                self.calls.append({"topic": topic, "key": key, "api_key": api_key, "body": body})
                if self.fail_next:
                    status, headers = self.fail_next.pop(0)
                    return JSONResponse({"status": status}, status_code=status, headers=headers)
            if not self._authorised(request):
                return JSONResponse({"status": 401, "title": "Unauthorized"}, status_code=401)
            if topic in self.refuse:
                status, problem = self.refuse[topic]
                return JSONResponse(
                    problem, status_code=status, media_type="application/problem+json"
                )
            with self._lock:
                earlier = next(
                    (p for p in self.published if key is not None and p.idempotency_key == key),
                    None,
                )
                if earlier is None:
                    earlier = Published(
                        topic, body["value"], key, api_key, str(uuid.uuid4()), duplicate=False
                    )
                    self.published.append(earlier)
                    duplicate = False
                else:
                    duplicate = True
            return JSONResponse(
                {
                    "topic": topic,
                    "accepted": 1,
                    "messages": [
                        {
                            "index": 0,
                            "id": earlier.message_id,
                            "partition": 0,
                            "key": None,
                            "duplicate": duplicate,
                        }
                    ],
                    "rejected": [],
                },
                status_code=202,
            )

        async def messages(request: Request) -> Response:
            name = request.path_params["name"]
            self.polls.append(name)
            if not self._authorised(request):
                return JSONResponse({"status": 401}, status_code=401)
            if name not in self.logs:
                return JSONResponse({"status": 404, "title": "Not found"}, status_code=404)
            start = self.positions.get(name, 0)
            batch = self.logs[name][start : start + int(request.query_params.get("max", "100"))]
            return JSONResponse({"messages": batch, "next": {"0": start + len(batch)}})

        async def commit(request: Request) -> Response:
            name = request.path_params["name"]
            body = await request.json()
            positions = {str(k): int(v) for k, v in body["positions"].items()}
            self.commits.append((name, positions))
            self.positions[name] = positions["0"]
            return JSONResponse({"positions": positions})

        async def verify(request: Request) -> Response:
            """The dossier system's citizen verification: always a match here."""
            return JSONResponse({"ket_qua": True})

        return Starlette(
            routes=[
                Route("/api/dan-cu/v1/cong-dan/xac-thuc", verify, methods=["POST"]),
                Route("/topics/{topic}/messages", publish, methods=["POST"]),
                Route("/subscriptions/{name}/messages", messages, methods=["GET"]),
                Route("/subscriptions/{name}/positions", commit, methods=["POST"]),
            ]
        )
