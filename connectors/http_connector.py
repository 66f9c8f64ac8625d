"""The request cycle shared by connectors that speak HTTP: headers, auth, retries, one pool.

A kind (rest, soap) says how to turn an UpstreamRequest into an HTTP request (`prepare`, once per
call, outside the retry loop) and how to read the provider's answer (`interpret`, which raises a
ConnectorError for anything but a usable answer). Everything else happens here, once: the
circuit breaker (connectors/breaker.py), the base URL of each attempt (connectors/failover.py),
the retries and deadlines, and the active health check of the provider (connectors/health.py).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

from connectors.auth import ISSUER, build_auth
from connectors.base import UpstreamRequest, UpstreamResponse
from connectors.breaker import Breaker
from connectors.config import HttpConfig
from connectors.deadline import Limit, Progress, within
from connectors.errors import ConnectorError
from connectors.failover import Upstreams
from connectors.http import Client, Reply
from connectors.retry import Retrier
from connectors.status import error_for_status
from registry.types import AuthType, ConnectorKind

# Provider headers worth handing back to the consumer; the rest (Server, Set-Cookie, Location
# pointing inside the province's network) stays here.
FORWARDED_REPLY_HEADERS = (
    "cache-control",
    "content-language",
    "etag",
    "expires",
    "last-modified",
)


@dataclass(frozen=True, slots=True)
class Capabilities:
    """What a kind of connector can do, declared as data for the factory and the catalogue."""

    protocol: str
    upstream_formats: tuple[str, ...]
    auth_types: tuple[AuthType, ...] = tuple(AuthType)
    soap_versions: tuple[str, ...] = ()
    streaming: bool = False


@dataclass(slots=True)
class Prepared:
    """The HTTP request a call becomes, built once and re-sent on each attempt."""

    method: str
    path: str  # after the base URL, which each attempt chooses (failover)
    params: tuple[tuple[str, str], ...] | None
    content: bytes | None
    headers: dict[str, str]


def reply_headers(headers: Mapping[str, str]) -> dict[str, str]:
    return {name: headers[name] for name in FORWARDED_REPLY_HEADERS if name in headers}


class HttpConnector(ABC):
    """A provider reached over HTTP, with one pooled client for its lifetime."""

    kind: ClassVar[ConnectorKind]
    capabilities: ClassVar[Capabilities]
    accept: str

    def __init__(self, config: HttpConfig) -> None:
        self.name = config.name
        self.config = config
        self.label = "the provider"  # messages reach consumers: no internal host names
        self._client = Client(config.client)
        self._auth = build_auth(config.auth)
        self.upstreams = Upstreams(config.urls, config.failover)
        self.breaker = Breaker(config.breaker)
        self._retrier = Retrier(
            config.retry, attempt_deadline=config.attempt_deadline, urls=len(self.upstreams)
        )
        headers = {"accept": self.accept}
        headers.update({k.lower(): v for k, v in config.options.headers.items()})
        headers.update(self._auth.static_headers)
        self._base_headers: Mapping[str, str] = headers

    def __repr__(self) -> str:
        return (
            f"<{type(self).__name__} name={self.name!r} base_url={self.config.base_url!r} "
            f"auth={self.config.auth.type.value}>"
        )

    @abstractmethod
    def prepare(self, request: UpstreamRequest) -> Prepared:
        """The HTTP request for this call (may raise RequestNotMappable)."""

    @abstractmethod
    def interpret(self, reply: Reply, request: UpstreamRequest) -> Any:
        """The JSON body for the consumer, or raise the ConnectorError the reply amounts to."""

    def headers_for(self, request: UpstreamRequest, extra: Mapping[str, str]) -> dict[str, str]:
        """The consumer-side headers passed through, then ours (ours win, case-insensitively)."""
        headers = {k.lower(): v for k, v in request.headers.items()}
        headers.update(self._base_headers)
        headers.update(extra)
        return headers

    async def call(self, request: UpstreamRequest) -> UpstreamResponse:
        prepared = self.prepare(request)
        probe = self.breaker.admit(self.label)  # raises CircuitOpen: nothing is sent
        order = self.upstreams.order()
        tried = 0

        async def attempt(limit: Limit) -> tuple[Reply, Any, int]:
            nonlocal tried
            upstream = order[tried % len(order)]
            tried += 1
            progress = Progress()
            async with within(limit, progress):
                reply = await self._exchange(prepared, self.upstreams.urls[upstream], progress)
            return reply, self.interpret(reply, request), upstream

        try:
            (reply, body, upstream), attempts = await self._retrier.run(
                attempt, idempotent=request.route.is_idempotent
            )
        except ConnectorError as exc:
            self.breaker.failed(exc, probe)
            raise
        except BaseException:  # cancelled: no outcome to judge the provider by
            self.breaker.abandoned(probe)
            raise
        self.breaker.succeeded(probe)
        return UpstreamResponse(
            reply.status, body, attempts, reply_headers(reply.headers), upstream=upstream
        )

    async def check_health(self, upstream: int) -> int:
        """GET one base URL's health path within the check's timeout: its 2xx status, or raise
        the ConnectorError it amounts to. Static credentials are sent; the breaker is not asked."""
        path, timeout = self.config.health_path or "/", self.config.health.timeout
        progress = Progress()
        limit = Limit(timeout, "attempt", timeout)
        async with within(limit, progress):
            reply = await self._client.send(
                "GET",
                self.upstreams.urls[upstream] + path,
                headers=self._base_headers,
                label=self.label,
                max_body=64 * 1024,
                progress=progress,
            )
        if not 200 <= reply.status < 300:
            raise error_for_status(reply, self.label)
        return reply.status

    async def _exchange(self, prepared: Prepared, base: str, progress: Progress) -> Reply:
        auth = await self._token(progress)
        reply = await self._send(prepared, base, auth, progress)
        if reply.status == 401 and self._auth.refreshable:
            # The cached token may have been revoked or expired early: one fresh token, one retry.
            self._auth.invalidate(auth)
            reply = await self._send(prepared, base, await self._token(progress), progress)
        return reply

    async def _token(self, progress: Progress) -> Mapping[str, str]:
        # Static credentials answer at once; a token after a 401 is a new wait, not an answer.
        progress.waiting_for, progress.answering = ISSUER, False
        return await self._auth.headers(self._client)

    async def _send(
        self, prepared: Prepared, base: str, auth: Mapping[str, str], progress: Progress
    ) -> Reply:
        headers = {**prepared.headers, **auth} if auth else prepared.headers
        return await self._client.send(
            prepared.method,
            base + prepared.path,
            params=prepared.params,
            content=prepared.content,
            headers=headers,
            label=self.label,
            max_body=self.config.max_body,
            progress=progress,
        )

    async def aclose(self) -> None:
        await self._client.aclose()
