"""The load of the messaging benchmark, from the benchmark's own process (aiohttp, as the hub).

Two shapes, each against a `Sender` that turns "send these messages" into HTTP requests:
- `flood`: N messages in requests of `batch`, from `connections` concurrent connections, as fast
  as they are answered;
- `paced`: `batch` messages every `batch / rate` seconds for a while, whatever the answers.

Each message's `sent_ns` is stamped when its request is built, right before it is sent.
"""

from __future__ import annotations

import asyncio
import itertools
import time
import uuid
from dataclasses import dataclass, field
from typing import Protocol

import aiohttp
import orjson

from bench import events


@dataclass
class Sent:
    """What the load saw: messages accepted, requests refused, and when."""

    messages: int = 0
    requests: int = 0
    errors: list[str] = field(default_factory=list)
    started_ns: int = 0
    finished_ns: int = 0  # the last answer

    @property
    def seconds(self) -> float:
        return max(self.finished_ns - self.started_ns, 1) / 1e9

    @property
    def rate(self) -> float:
        return self.messages / self.seconds


class Sender(Protocol):
    connections: int

    async def send(self, session: aiohttp.ClientSession, first: int, count: int) -> int:
        """Send messages first..first+count-1; how many were accepted (raise on refusal)."""


class Refused(Exception):
    pass


class HubPublisher:
    """Batches published to the hub: `POST /topics/{topic}/messages`, 202 expected."""

    def __init__(self, url: str, headers: dict[str, str], *, connections: int) -> None:
        self.url = url
        self.headers = headers
        self.connections = connections

    async def send(self, session: aiohttp.ClientSession, first: int, count: int) -> int:
        body = events.batch_body(first, count, time.time_ns())
        async with session.post(self.url, data=body, headers=self.headers) as answer:
            content = await answer.read()
            if answer.status != 202:
                raise Refused(f"{answer.status}: {content[:300]!r}")
        accepted: int = orjson.loads(content)["accepted"]
        return accepted


class DirectPoster:
    """The hub's pushes imitated: each message its own POST to the receiver, with headers of
    the same shape (a fresh webhook-id, a timestamp, a signature-sized value)."""

    def __init__(self, url: str, *, connections: int) -> None:
        self.url = url
        self.connections = connections

    async def _one(self, session: aiohttp.ClientSession, n: int) -> None:
        body = events.encode(n, time.time_ns())
        headers = {
            "content-type": "application/json",
            "webhook-id": uuid.uuid4().hex,
            "webhook-timestamp": str(int(time.time())),
            "webhook-signature": "v1," + "A" * 44,
            "x-lgsp-topic": "bench.dossier-status",
            "x-lgsp-subscription": "bench-portal-push",
            "x-lgsp-attempt": "1",
        }
        async with session.post(self.url, data=body, headers=headers) as answer:
            await answer.read()
            if answer.status != 200:
                raise Refused(f"{answer.status}")

    async def send(self, session: aiohttp.ClientSession, first: int, count: int) -> int:
        await asyncio.gather(*(self._one(session, first + i) for i in range(count)))
        return count


def _session(connections: int) -> aiohttp.ClientSession:
    connector = aiohttp.TCPConnector(limit=connections, limit_per_host=0, keepalive_timeout=30)
    timeout = aiohttp.ClientTimeout(total=120)
    return aiohttp.ClientSession(connector=connector, timeout=timeout)


async def _attempt(sender: Sender, session: aiohttp.ClientSession, sent: Sent, first: int,
                   count: int) -> None:  # fmt: skip
    try:
        accepted = await sender.send(session, first, count)
        sent.messages += accepted  # after the await: no other task's update is lost
    except (Refused, aiohttp.ClientError, TimeoutError) as exc:
        sent.errors.append(f"{type(exc).__name__}: {exc}")
    sent.requests += 1
    sent.finished_ns = time.time_ns()


async def flood(sender: Sender, *, messages: int, batch: int, start: int = 0) -> Sent:
    """`messages` messages in requests of `batch`, `sender.connections` requests at a time."""
    firsts = iter(range(start, start + messages, batch))
    sent = Sent()

    async def connection(session: aiohttp.ClientSession) -> None:
        for first in firsts:  # shared: each connection takes the next batch
            await _attempt(sender, session, sent, first, min(batch, start + messages - first))

    async with _session(sender.connections) as session:
        sent.started_ns = time.time_ns()
        await asyncio.gather(*(connection(session) for _ in range(sender.connections)))
    return sent


async def paced(sender: Sender, *, rate: float, batch: int, seconds: float, start: int = 0) -> Sent:
    """`batch` messages every `batch / rate` seconds for `seconds`, each request on its own
    task (a slow answer does not delay the next request)."""
    interval = batch / rate
    ticks = max(1, round(seconds / interval))
    sent = Sent()
    loop = asyncio.get_running_loop()
    async with _session(sender.connections) as session:
        tasks: list[asyncio.Task[None]] = []
        begin = loop.time()
        sent.started_ns = time.time_ns()
        for tick, first in zip(range(ticks), itertools.count(start, batch), strict=False):
            delay = begin + tick * interval - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(_attempt(sender, session, sent, first, batch)))
        await asyncio.gather(*tasks)
    return sent
