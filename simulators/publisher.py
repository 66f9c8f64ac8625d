"""Publishing to the hub from a simulated system: an outbox drained in order, retried until taken.

A system that announces events (a dossier's status, a birth registration, an edXML packet)
must not lose one because the hub is briefly down, nor send one twice because an answer was
lost. So `publish()` only queues the message and answers at once; a worker posts the queue to
`POST /topics/{topic}/messages` in order, retrying connection errors, timeouts, 429 and 5xx
with backoff (Retry-After when the hub gives one) and the same `Idempotency-Key` every time, so
the hub stores a retried message once. A refusal (4xx: unknown topic, no publish right, a
schema violation) will not change by retrying: it is recorded and the queue moves on. The
outbox lives in memory: it survives the hub's outages, not the simulator's own restart.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import uuid
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import asdict, dataclass, field
from typing import Any
from urllib.parse import quote

import httpx
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from simulators.formats import format_timestamp, now_in_vietnam

logger = logging.getLogger(__name__)

QUEUED, ACCEPTED, REFUSED = "queued", "accepted", "refused"


@dataclass
class Publication:
    """One message handed to the outbox, and what the hub made of it."""

    topic: str
    value: dict[str, Any]
    idempotency_key: str = field(default_factory=lambda: str(uuid.uuid4()))
    queued_at: str = field(default_factory=lambda: format_timestamp(now_in_vietnam()))
    state: str = QUEUED
    attempts: int = 0
    message_id: str | None = None  # the hub's id: the webhook-id of every push of it
    partition: int | None = None
    duplicate: bool | None = None  # the hub had it already (a retry after a lost answer)
    last_error: str | None = None
    problem: Any = None  # the hub's problem document, when it refused


class _Transient(Exception):
    """Retrying may help: the hub was unreachable, slow, overloaded or failing."""

    def __init__(self, reason: str, retry_after: float | None = None) -> None:
        super().__init__(reason)
        self.retry_after = retry_after


class _Refused(Exception):
    """The hub said no for a reason that retrying will not change."""

    def __init__(self, reason: str, problem: Any) -> None:
        super().__init__(reason)
        self.problem = problem


def _retry_after(answer: httpx.Response) -> float | None:
    value = answer.headers.get("retry-after", "")
    try:
        return max(0.0, float(value))
    except ValueError:
        return None  # an HTTP date, or nothing: our own backoff then


def _body(answer: httpx.Response) -> Any:
    try:
        return answer.json()
    except ValueError:
        return answer.text[:500]


class Publisher:
    """The outbox of one producing application (one consumer API key of the hub)."""

    def __init__(
        self,
        *,
        hub_url: str,
        api_key: str | None,
        retry_initial: float = 0.2,
        retry_max: float = 5.0,
        timeout: float = 10.0,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.hub_url = hub_url.rstrip("/")
        self.api_key = api_key
        self.retry_initial = retry_initial
        self.retry_max = retry_max
        self.timeout = timeout
        self.publications: list[Publication] = []
        self._pending: deque[Publication] = deque()
        self._wake = asyncio.Event()
        self._sleep = sleep

    def publish(self, topic: str, value: dict[str, Any]) -> Publication:
        """Queue `value` for `topic`; the worker sends it after everything queued before."""
        publication = Publication(topic=topic, value=value)
        self.publications.append(publication)
        self._pending.append(publication)
        self._wake.set()
        return publication

    async def _send(self, client: httpx.AsyncClient, publication: Publication) -> None:
        headers = {"Idempotency-Key": publication.idempotency_key}
        if self.api_key is not None:
            headers["X-API-Key"] = self.api_key
        url = f"{self.hub_url}/topics/{quote(publication.topic, safe='')}/messages"
        publication.attempts += 1
        try:
            answer = await client.post(url, json={"value": publication.value}, headers=headers)
        except httpx.TransportError as exc:  # refused, reset, timed out: it may have arrived
            raise _Transient(f"{type(exc).__name__}: {exc}") from exc
        if answer.status_code == 429 or answer.status_code >= 500:
            raise _Transient(f"the hub answered {answer.status_code}", _retry_after(answer))
        body = _body(answer)
        if not 200 <= answer.status_code < 300:
            raise _Refused(f"the hub answered {answer.status_code}", body)
        try:
            [message] = body["messages"]
            publication.message_id = str(message["id"])
            publication.partition = message.get("partition")
            publication.duplicate = bool(message.get("duplicate", False))
        except (KeyError, TypeError, ValueError) as exc:
            raise _Refused("the hub's answer names no message id", body) from exc

    def _backoff(self, attempt: int, error: _Transient) -> float:
        if error.retry_after is not None:
            return min(error.retry_after, self.retry_max)
        ceiling = min(self.retry_max, self.retry_initial * 2 ** (attempt - 1))
        return random.uniform(ceiling / 2, ceiling)  # jitter: producers do not retry in step

    async def _deliver(self, client: httpx.AsyncClient, publication: Publication) -> None:
        """Send one publication until the hub takes or refuses it (retries are never given up:
        the outbox is what keeps a message through an outage)."""
        failures = 0
        while True:
            try:
                await self._send(client, publication)
            except _Transient as exc:
                failures += 1
                publication.last_error = str(exc)
                delay = self._backoff(failures, exc)
                logger.info(
                    "publish to %s failed (%s); again in %.2fs", publication.topic, exc, delay
                )
                await self._sleep(delay)
                continue
            except _Refused as exc:
                publication.state, publication.last_error = REFUSED, str(exc)
                publication.problem = exc.problem
                logger.warning("the hub refused a message for %s: %s", publication.topic, exc)
                return
            publication.state, publication.last_error = ACCEPTED, None
            return

    async def run(self, client: httpx.AsyncClient) -> None:
        """The worker: drain the queue in order, for ever."""
        while True:
            while not self._pending:
                self._wake.clear()
                await self._wake.wait()
            await self._deliver(client, self._pending[0])
            self._pending.popleft()

    @asynccontextmanager
    async def running(self) -> AsyncIterator[None]:
        """Run the worker while the block lasts (in a simulator's lifespan)."""
        async with httpx.AsyncClient(timeout=self.timeout) as client:
            task = asyncio.create_task(self.run(client), name="publisher")
            try:
                yield
            finally:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task

    def routes(self, path: str = "/_sim/published") -> list[Route]:
        async def read(request: Request) -> Response:
            """What this system published: state, attempts, the hub's message id (?topic=)."""
            topic = request.query_params.get("topic")
            return JSONResponse(
                [asdict(p) for p in self.publications if topic is None or p.topic == topic]
            )

        return [Route(path, read, methods=["GET"])]
