"""A webhook receiver on loopback for the delivery tests, and a channel made through the admin API.

The receiver verifies nothing itself: it keeps every request (headers, body, time), and answers
as its path says, so a test can verify signatures with the Standard Webhooks library and read
what arrived in which order.
"""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import Generator
from dataclasses import dataclass, field
from typing import Any

import httpx
import orjson
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from simulators.server import run_in_thread
from tests.conftest import RunningHub
from tests.integration.conftest import ok, random_agency

SCHEMA = {
    "type": "object",
    "required": ["id", "n"],
    "properties": {"id": {"type": "string", "minLength": 1}, "n": {"type": "integer"}},
}


@dataclass
class Arrival:
    path: str
    headers: dict[str, str]
    body: bytes
    at: float

    @property
    def value(self) -> Any:
        return orjson.loads(self.body)


@dataclass
class Inbox:
    """What one test's endpoint received, and how it answers."""

    arrivals: list[Arrival] = field(default_factory=list)
    status: int = 200  # answered to every message...
    failing: set[str] = field(default_factory=set)  # ...except these ids: 503
    delay: float = 0.0
    fail_first: int = 0  # per webhook-id: the first attempts answer 503
    attempts: dict[str, int] = field(default_factory=dict)

    def delivered(self) -> list[Arrival]:
        """Arrivals answered 2xx, first of each webhook-id."""
        seen: set[str] = set()
        out = []
        for a in self.arrivals:
            if a.headers.get("x-test-answered", "").startswith("2"):
                wid = a.headers["webhook-id"]
                if wid not in seen:
                    seen.add(wid)
                    out.append(a)
        return out


INBOXES: dict[str, Inbox] = {}


async def receive(request: Request) -> Response:
    tag = request.path_params["tag"]
    inbox = INBOXES.setdefault(tag, Inbox())
    body = await request.body()
    headers = dict(request.headers)
    wid = headers.get("webhook-id", "")
    inbox.attempts[wid] = inbox.attempts.get(wid, 0) + 1
    if inbox.delay:
        await asyncio.sleep(inbox.delay)
    status = inbox.status
    try:
        value_id = orjson.loads(body).get("id")
    except (orjson.JSONDecodeError, AttributeError):
        value_id = None
    if value_id in inbox.failing or inbox.attempts[wid] <= inbox.fail_first:
        status = 503
    headers["x-test-answered"] = str(status)
    inbox.arrivals.append(Arrival(request.url.path, headers, body, time.monotonic()))
    extra = {"Retry-After": "0"} if status in (429, 503) else {}
    return JSONResponse({"status": status}, status_code=status, headers=extra)


def receiver_app() -> Starlette:
    return Starlette(routes=[Route("/hooks/{tag}", receive, methods=["POST"])])


def running_receiver() -> Generator[str, None, None]:
    with run_in_thread(receiver_app()) as url:
        yield url


@dataclass
class Channel:
    """A topic with a producer, and one subscription of another application of the agency."""

    hub: RunningHub
    agency: str
    topic: str
    producer: str
    producer_key: str
    subscriber: str
    subscriber_key: str
    subscription: str
    secret: str | None
    inbox: Inbox
    connector: str | None

    def publish(self, *values: dict[str, Any], **kwargs: Any) -> httpx.Response:
        body: dict[str, Any] = (
            {"value": values[0]}
            if len(values) == 1
            else {"messages": [{"value": v} for v in values]}
        )
        with self.hub.client(self.producer_key) as client:
            return client.post(f"/topics/{self.topic}/messages", json=body, **kwargs)

    def admin(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        with self.hub.admin() as admin:
            return admin.request(
                method, f"/admin/subscriptions/{self.subscription}{path}", **kwargs
            )

    def in_log(self) -> int:
        """How many messages the topic's log holds (its partitions' end offsets)."""
        answer = self.admin("GET", "/positions")
        assert answer.status_code == 200, answer.text
        return sum(p["end_offset"] or 0 for p in answer.json()["partitions"])


def make_channel(
    hub: RunningHub,
    receiver_url: str,
    *,
    delivery: str = "push",
    retry: dict[str, Any] | None = None,
    partitions: int = 3,
    max_message_bytes: int = 262_144,
    filter: dict[str, Any] | None = None,
    path: str | None = None,
    tag: str | None = None,
) -> Channel:
    """A channel named after `tag` (topic `test.t<tag>`; random unless given)."""
    tag = tag or secrets.token_hex(4)
    agency = random_agency()
    topic = f"test.t{tag}"
    producer, subscriber = f"prod-{tag}", f"sub-{tag}"
    connector = f"hooks-{tag}"
    subscription = f"subn-{tag}"
    inbox = INBOXES.setdefault(tag, Inbox())
    with hub.admin() as admin:
        ok(admin.post("/admin/agencies", json={"code": agency, "name": "Sở thử nghiệm"}))
        subject = f"test.{tag}.event"
        version = ok(admin.post(f"/admin/schemas/{subject}/versions", json={"schema": SCHEMA}))
        keys = {}
        for name in (producer, subscriber):
            ok(
                admin.post(
                    "/admin/consumers",
                    json={"name": name, "agency_code": agency, "title": "Ứng dụng thử"},
                )
            )
            keys[name] = ok(admin.post(f"/admin/consumers/{name}/keys", json={}))["key"]
        ok(
            admin.post(
                "/admin/topics",
                json={
                    "name": topic,
                    "agency_code": agency,
                    "title": "Sự kiện thử",
                    "schema": {"subject": subject, "version": version["version"]},
                    "key_pointer": "/id",
                    "partitions": partitions,
                    "max_message_bytes": max_message_bytes,
                    "publishers": [producer],
                    "subscribers": [subscriber],
                },
            )
        )
        spec: dict[str, Any] = {
            "name": subscription,
            "topic": topic,
            "consumer": subscriber,
            "delivery": delivery,
            "retry": retry or {"delays": [0.05], "jitter": 0, "max_attempts": 5, "timeout": 2},
        }
        if filter is not None:
            spec["filter"] = filter
        if delivery == "push":
            ok(
                admin.post(
                    "/admin/connectors",
                    json={
                        "name": connector,
                        "agency_code": agency,
                        "kind": "rest",
                        "base_url": receiver_url,
                    },
                )
            )
            spec |= {"connector": connector, "path": path or f"/hooks/{tag}"}
        created = ok(admin.post("/admin/subscriptions", json=spec))
    secrets_given = created.get("secrets") or [None]
    return Channel(
        hub=hub,
        agency=agency,
        topic=topic,
        producer=producer,
        producer_key=keys[producer],
        subscriber=subscriber,
        subscriber_key=keys[subscriber],
        subscription=subscription,
        secret=secrets_given[0],
        inbox=inbox,
        connector=connector if delivery == "push" else None,
    )
