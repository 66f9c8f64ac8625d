"""HTTP push for delivery: one pooled client per subscription; each attempt, its whole answer
included, within the subscription's `retry.timeout` (the attempt deadline)."""

from __future__ import annotations

import time

from connectors.deadline import Limit, Progress, within
from connectors.errors import ConnectorError, UpstreamTimeout
from connectors.http import Client, ClientSettings
from messaging.delivery import PushResult
from messaging.entries import SubscriptionEntry

MAX_ANSWER_BYTES = 64 * 1024  # a receiver's answer is read (for the record), never kept


def retry_after(value: str | None) -> float | None:
    """Retry-After in seconds (delta-seconds form; an HTTP date is ignored)."""
    if value is None:
        return None
    try:
        return max(0.0, float(value.strip()))
    except ValueError:
        return None


class HttpPusher:
    def __init__(self, max_connections: int = 64) -> None:
        self.max_connections = max_connections
        # Per subscription: its client and the deadline of a push, both for its current timeout.
        self._clients: dict[str, tuple[Client, Limit]] = {}
        self._replaced: list[Client] = []  # pushes may still be using them: closed at the end

    def _client(self, entry: SubscriptionEntry) -> tuple[Client, Limit]:
        timeout = entry.retry.timeout
        known = self._clients.get(entry.name)
        if known is not None and known[1].seconds == timeout:
            return known
        if known is not None:
            self._replaced.append(known[0])
        client = Client(
            ClientSettings(
                max_connections=self.max_connections,
                connect_timeout=min(timeout, 5.0),
                read_timeout=timeout,
            )
        )
        self._clients[entry.name] = (client, Limit(timeout, "attempt", timeout))
        return self._clients[entry.name]

    async def push(
        self, entry: SubscriptionEntry, body: bytes, headers: dict[str, str]
    ) -> PushResult:
        assert entry.url is not None
        started = time.perf_counter_ns()
        client, limit = self._client(entry)
        progress = Progress()
        try:
            async with within(limit, progress):
                reply = await client.send(
                    "POST",
                    entry.url,
                    content=body,
                    headers=headers,
                    label="the receiver",
                    max_body=MAX_ANSWER_BYTES,
                    progress=progress,
                )
        except ConnectorError as exc:
            return PushResult(
                status=None,
                error=exc.detail,
                latency_us=(time.perf_counter_ns() - started) // 1000,
                timed_out=isinstance(exc, UpstreamTimeout),
            )
        error = None
        if reply.status >= 300:
            error = reply.content[:200].decode("utf-8", "replace") or None
        return PushResult(
            status=reply.status,
            error=error,
            retry_after=retry_after(reply.headers.get("retry-after")),
            latency_us=(time.perf_counter_ns() - started) // 1000,
        )

    async def aclose(self) -> None:
        for client in [*(c for c, _ in self._clients.values()), *self._replaced]:
            await client.aclose()
        self._clients.clear()
        self._replaced.clear()
