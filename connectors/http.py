"""The pooled HTTP client of a connector, and sending one request with transport errors mapped.

One aiohttp session per connector, made on first use inside the event loop. The hub first spoke
to providers through httpx over an aiohttp transport; under load httpx's request and response
objects, header and cookie handling cost a third of the hub's CPU per call, so the data plane
calls aiohttp directly and maps aiohttp's exceptions here, once. (httpx remains the client for
tests and tools.)
"""

from __future__ import annotations

import os
import ssl
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import aiohttp
from yarl import URL

from connectors.deadline import Progress
from connectors.errors import (
    ConnectorError,
    UpstreamBadResponse,
    UpstreamTimeout,
    UpstreamUnavailable,
)
from connectors.tls import ssl_context
from registry.connector_settings import ConnectorTls

MAX_BODY_BYTES = 10 * 1024 * 1024
USER_AGENT = "lgsp-hub/0.1"
# Below the shortest common server keep-alive (Apache and uvicorn: 5 s), so the hub does not reuse
# a connection the provider is closing; busy connectors never idle that long anyway.
KEEPALIVE_SECONDS = 4.0
_CHUNK = 64 * 1024


@dataclass(frozen=True, slots=True)
class ClientSettings:
    max_connections: int
    connect_timeout: float
    read_timeout: float
    tls: ConnectorTls | None = None  # a CA bundle and/or a client certificate (mutual TLS)


@dataclass(slots=True)
class Reply:
    """A provider's answer, read in full (and capped)."""

    status: int
    headers: Mapping[str, str]  # case-insensitive
    content: bytes

    @property
    def media_type(self) -> str:
        """The Content-Type without parameters, lower-cased ('' when absent)."""
        value: str = self.headers.get("content-type", "")
        return value.partition(";")[0].strip().lower()


class Client:
    """One pool for the life of a connector."""

    def __init__(self, settings: ClientSettings) -> None:
        self.settings = settings
        self._session: aiohttp.ClientSession | None = None
        # Built now, not on first use: a certificate that does not load breaks the connector.
        self._ssl: ssl.SSLContext | bool = ssl_context(settings.tls) if settings.tls else True
        # `connect` covers waiting for a free pooled connection plus connecting: a queued request
        # waits at most as long as one request may take.
        self._timeout = aiohttp.ClientTimeout(
            total=None,
            connect=settings.connect_timeout + settings.read_timeout,
            sock_connect=settings.connect_timeout,
            sock_read=settings.read_timeout,
        )

    def _open(self) -> aiohttp.ClientSession:
        connector = aiohttp.TCPConnector(
            limit=self.settings.max_connections,
            limit_per_host=0,
            keepalive_timeout=KEEPALIVE_SECONDS,
            ssl=self._ssl,
        )
        self._session = aiohttp.ClientSession(
            connector=connector,
            timeout=self._timeout,
            headers={"User-Agent": USER_AGENT},
            cookie_jar=aiohttp.DummyCookieJar(),  # a provider's cookies never cross callers
            trust_env=False,  # no proxy from the environment
            auto_decompress=True,
        )
        return self._session

    async def send(
        self,
        method: str,
        url: str,
        *,
        params: tuple[tuple[str, str], ...] | None = None,
        content: bytes | None = None,
        headers: Mapping[str, str],
        label: str = "the provider",
        max_body: int = MAX_BODY_BYTES,
        progress: Progress | None = None,
    ) -> Reply:
        """Send and read the whole answer; raise a ConnectorError on any transport failure.

        `label` names the other side in messages ("the provider", "the token endpoint"): messages
        reach consumers, so they do not name hosts inside the province's network. `progress`,
        when given, follows the call for the deadline that may cancel it (connectors/deadline.py).
        """
        session = self._session or self._open()
        target = URL(url, encoded=True)  # the path is quoted already, keep it as it is
        if params:
            target = target.extend_query(params)
        if progress is not None:
            progress.waiting_for, progress.sent, progress.answering = label, True, False
        try:
            response = await session.request(
                method, target, data=content, headers=headers, allow_redirects=False
            )
        except (TimeoutError, aiohttp.ClientError, OSError) as exc:
            raise transport_failure(exc, label) from exc
        if progress is not None:
            progress.answering = True
        try:
            body = await _read_capped(response, max_body, label)
        except (TimeoutError, aiohttp.ClientError, OSError) as exc:
            raise transport_failure(exc, label) from exc
        finally:
            # An answer cut mid-way (a failure, or a deadline cancelling the read) leaves its
            # connection unfinished: aiohttp then closes it rather than pool it.
            response.release()
        return Reply(response.status, response.headers, body)

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None


async def _read_capped(response: Any, max_body: int, label: str) -> bytes:
    declared = response.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > max_body:
        raise _too_big(response.status, max_body, label)
    chunks: list[bytes] = []
    size = 0
    async for chunk in response.content.iter_chunked(_CHUNK):  # decoded: stops zip bombs too
        size += len(chunk)
        if size > max_body:
            raise _too_big(response.status, max_body, label)
        chunks.append(chunk)
    return b"".join(chunks)


def _too_big(status: int, max_body: int, label: str) -> UpstreamBadResponse:
    return UpstreamBadResponse(
        f"{label} answered more than {max_body // (1024 * 1024)} MiB", provider_status=status
    )


def transport_failure(exc: BaseException, label: str) -> ConnectorError:
    """The ConnectorError for a failure below HTTP (connecting, sending, reading)."""
    if isinstance(exc, aiohttp.ClientConnectorDNSError):
        return UpstreamUnavailable(f"could not resolve {label}", request_sent=False)
    if isinstance(exc, aiohttp.ClientSSLError):
        return UpstreamUnavailable(f"TLS handshake with {label} failed", request_sent=False)
    if isinstance(exc, aiohttp.ClientConnectorError):
        errno = exc.os_error.errno  # its strerror may quote the address: keep only the errno
        reason = os.strerror(errno) if errno else "connection failed"
        return UpstreamUnavailable(f"could not connect to {label}: {reason}", request_sent=False)
    if isinstance(exc, aiohttp.ConnectionTimeoutError):
        return UpstreamTimeout(f"connecting to {label} timed out", request_sent=False)
    if isinstance(exc, aiohttp.SocketTimeoutError | TimeoutError):
        return UpstreamTimeout(f"{label} did not answer in time")
    if isinstance(exc, aiohttp.ClientPayloadError):
        return UpstreamUnavailable(f"{label} closed the connection in the middle of its answer")
    if isinstance(exc, aiohttp.ClientResponseError):
        return UpstreamBadResponse(f"{label} answered something that is not valid HTTP")
    return UpstreamUnavailable(f"the connection to {label} was lost")
