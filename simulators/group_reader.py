"""Reading a group subscription through the hub's pull API, as a consumer-group member does.

`GET /subscriptions/{name}/messages` long-polls for the next messages of every partition; once
they are handled, `POST /subscriptions/{name}/positions` commits the offsets to read next. A
crash between the two means the same messages come again (at least once), so the handler must
be idempotent: each simulated reader keys what it stores by the message's business key.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
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

Handle = Callable[[dict[str, Any]], None]


@dataclass
class ReaderState:
    """What the reader has done so far (GET /_sim/reader)."""

    subscription: str
    polls: int = 0
    messages: int = 0
    committed: dict[str, int] = field(default_factory=dict)  # partition -> next offset
    last_error: str | None = None
    last_error_at: str | None = None


class GroupReader:
    """Polls one group subscription with the subscribing consumer's API key."""

    def __init__(
        self,
        *,
        hub_url: str,
        api_key: str | None,
        subscription: str,
        handle: Handle,
        max_messages: int = 100,
        wait: float = 5.0,
        idle: float = 0.2,
        retry_initial: float = 0.2,
        retry_max: float = 5.0,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.base = f"{hub_url.rstrip('/')}/subscriptions/{quote(subscription, safe='')}"
        self.headers = {"X-API-Key": api_key} if api_key is not None else {}
        self.handle = handle
        self.max_messages = max_messages
        self.wait = wait
        self.idle = idle  # after an empty answer, should the hub not hold the poll open
        self.retry_initial = retry_initial
        self.retry_max = retry_max
        self.state = ReaderState(subscription=subscription)
        self._sleep = sleep

    async def poll_once(self, client: httpx.AsyncClient) -> int:
        """One round: fetch, handle each message in order, commit. The number handled."""
        self.state.polls += 1
        answer = await client.get(
            f"{self.base}/messages",
            params={"max": self.max_messages, "wait": self.wait},
            headers=self.headers,
        )
        if answer.status_code != 200:
            raise RuntimeError(f"GET messages answered {answer.status_code}: {answer.text[:300]}")
        batch = answer.json()
        messages: list[dict[str, Any]] = batch.get("messages") or []
        for message in messages:
            self.handle(message)
            self.state.messages += 1
        if messages:
            positions = {str(p): int(o) for p, o in (batch.get("next") or {}).items()}
            committed = await client.post(
                f"{self.base}/positions", json={"positions": positions}, headers=self.headers
            )
            if not 200 <= committed.status_code < 300:
                raise RuntimeError(
                    f"POST positions answered {committed.status_code}: {committed.text[:300]}"
                )
            self.state.committed.update(positions)
        return len(messages)

    async def run(self, client: httpx.AsyncClient) -> None:
        """Poll for ever; any failure (hub down, subscription not there yet, a handler error)
        is recorded and retried after a backoff, from the last committed position."""
        failures = 0
        while True:
            try:
                handled = await self.poll_once(client)
            except Exception as exc:  # a reader that dies silently is the one thing to avoid
                failures += 1
                self.state.last_error = f"{type(exc).__name__}: {exc}"
                self.state.last_error_at = format_timestamp(now_in_vietnam())
                ceiling = min(self.retry_max, self.retry_initial * 2 ** (failures - 1))
                logger.info("reading %s failed: %s", self.state.subscription, exc)
                await self._sleep(random.uniform(ceiling / 2, ceiling))
            else:
                failures = 0
                if not handled:
                    await self._sleep(self.idle)

    @asynccontextmanager
    async def running(self) -> AsyncIterator[None]:
        """Run the poller while the block lasts (in a simulator's lifespan)."""
        async with httpx.AsyncClient(timeout=self.wait + 10) as client:
            task = asyncio.create_task(self.run(client), name=f"reader-{self.state.subscription}")
            try:
                yield
            finally:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task

    def routes(self, path: str = "/_sim/reader") -> list[Route]:
        async def read(request: Request) -> Response:
            """The reader's state: polls, messages handled, committed positions, last error."""
            return JSONResponse(asdict(self.state))

        return [Route(path, read, methods=["GET"])]
