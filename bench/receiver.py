"""The receiving end of the messaging benchmark: a small, fast webhook endpoint in its own process.

Run as `python -m bench.receiver --port N`. It answers every `POST` with an empty 200 and keeps,
per request, the arrival time (`time.time_ns()`, the clock the publisher stamps `sent_ns` with),
the `webhook-id` header and the body; the body is parsed only when the samples are asked for, so
the hot path costs a parse of the request head and an append. A raw asyncio protocol on uvloop
with httptools (no framework): its ceiling must sit far above what the hub can push, and the
direct row of the benchmark shows where it is.

Control, on the same port:
- `GET /stats` -> {"arrivals": n, "distinct": n}
- `GET /samples` -> {"sent": [...], "arrived": [...], "arrivals": n, "distinct": n}: for the
  first arrival of each webhook-id, the body's `sent_ns` and the arrival time (nanoseconds)
- `POST /reset` forgets everything.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import time
from dataclasses import dataclass, field
from typing import Any

import httptools
import httpx
import orjson
import uvloop

OK = b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n"
NOT_FOUND = b"HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\n\r\n"


@dataclass
class Inbox:
    arrived: list[int] = field(default_factory=list)
    ids: list[bytes] = field(default_factory=list)
    bodies: list[bytes] = field(default_factory=list)
    distinct: set[bytes] = field(default_factory=set)

    def add(self, at: int, webhook_id: bytes, body: bytes) -> None:
        self.arrived.append(at)
        self.ids.append(webhook_id)
        self.bodies.append(body)
        self.distinct.add(webhook_id)

    def reset(self) -> None:
        self.arrived.clear()
        self.ids.clear()
        self.bodies.clear()
        self.distinct.clear()

    def stats(self) -> dict[str, int]:
        return {"arrivals": len(self.arrived), "distinct": len(self.distinct)}

    def samples(self) -> dict[str, Any]:
        seen: set[bytes] = set()
        sent, arrived = [], []
        for at, wid, body in zip(self.arrived, self.ids, self.bodies, strict=True):
            if wid in seen:
                continue
            seen.add(wid)
            sent.append(int(orjson.loads(body)["sent_ns"]))
            arrived.append(at)
        return {"sent": sent, "arrived": arrived, **self.stats()}


class Endpoint(asyncio.Protocol):
    """One connection: requests parsed by httptools, answered in order (keep-alive)."""

    def __init__(self, inbox: Inbox) -> None:
        self.inbox = inbox
        self.parser = httptools.HttpRequestParser(self)
        self.transport: asyncio.Transport | None = None
        self.url = b""
        self.webhook_id = b""
        self.body: list[bytes] = []

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]  # uvloop's is not a subclass

    def data_received(self, data: bytes) -> None:
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError:
            if self.transport is not None:
                self.transport.close()

    # httptools callbacks
    def on_message_begin(self) -> None:
        self.url, self.webhook_id, self.body = b"", b"", []

    def on_url(self, url: bytes) -> None:
        self.url += url

    def on_header(self, name: bytes, value: bytes) -> None:
        if name.lower() == b"webhook-id":
            self.webhook_id = value

    def on_body(self, body: bytes) -> None:
        self.body.append(body)

    def on_message_complete(self) -> None:
        arrived = time.time_ns()
        assert self.transport is not None
        method = self.parser.get_method()
        if method == b"POST" and self.url.startswith(b"/hook"):
            self.inbox.add(arrived, self.webhook_id, b"".join(self.body))
            self.transport.write(OK)
        elif self.url == b"/stats":
            self._json(self.inbox.stats())
        elif self.url == b"/samples":
            self._json(self.inbox.samples())
        elif method == b"POST" and self.url == b"/reset":
            self.inbox.reset()
            self.transport.write(OK)
        else:
            self.transport.write(NOT_FOUND)
        if not self.parser.should_keep_alive():
            self.transport.close()

    def _json(self, document: dict[str, Any]) -> None:
        assert self.transport is not None
        body = orjson.dumps(document)
        head = f"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {len(body)}"
        self.transport.write(head.encode() + b"\r\n\r\n" + body)


async def serve(port: int) -> None:
    inbox = Inbox()
    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: Endpoint(inbox), "127.0.0.1", port, backlog=1024)
    stop = asyncio.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    async with server:
        await stop.wait()


# ---------------------------------------------------------------- the benchmark's side


class Client:
    """The benchmark's view of a running receiver."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.hook_url = f"{url}/hook"

    def ready(self) -> bool:
        try:
            return httpx.get(f"{self.url}/stats", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    def reset(self) -> None:
        httpx.post(f"{self.url}/reset", timeout=10).raise_for_status()

    def stats(self) -> dict[str, int]:
        answer = httpx.get(f"{self.url}/stats", timeout=10)
        answer.raise_for_status()
        result: dict[str, int] = answer.json()
        return result

    def samples(self) -> dict[str, Any]:
        answer = httpx.get(f"{self.url}/samples", timeout=60)
        answer.raise_for_status()
        result: dict[str, Any] = orjson.loads(answer.content)
        return result

    def wait_for(self, count: int, *, timeout: float, quiet: float = 10.0) -> dict[str, int]:
        """Poll until `count` distinct messages arrived, the timeout passed, or nothing new
        arrived for `quiet` seconds (a stalled pipeline); the last stats."""
        deadline = time.monotonic() + timeout
        last, since = -1, time.monotonic()
        while True:
            stats = self.stats()
            if stats["distinct"] >= count or time.monotonic() > deadline:
                return stats
            if stats["distinct"] != last:
                last, since = stats["distinct"], time.monotonic()
            elif time.monotonic() - since > quiet:
                return stats
            time.sleep(0.02)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    uvloop.run(serve(args.port))


if __name__ == "__main__":
    main()
