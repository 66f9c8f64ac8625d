"""The pooled HTTP client of a connector, and sending one request with transport errors mapped.

One `httpx.AsyncClient` per connector, over `httpx_aiohttp.AiohttpTransport` (aiohttp's pool is
the fast one). That transport translates aiohttp's exceptions into httpx ones, sometimes oddly: a
refused connection (`aiohttp.ClientConnectorError`) comes out as `httpx.ConnectTimeout`, and a
server that drops a kept-alive connection also comes out as `ConnectTimeout`. So the mapping below
reads the original aiohttp exception (`__cause__`) first and trusts the httpx class only when there
is none. Exceptions the transport does not translate (asyncio timeouts, a reply that is not HTTP)
arrive as aiohttp's own and are mapped here too.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import aiohttp
import httpx
from httpx_aiohttp import AiohttpTransport

from connectors.errors import (
    ConnectorError,
    UpstreamBadResponse,
    UpstreamTimeout,
    UpstreamUnavailable,
)

MAX_BODY_BYTES = 10 * 1024 * 1024
USER_AGENT = "lgsp-hub/0.1"
# Below the shortest common server keep-alive (Apache and uvicorn: 5 s), so the hub does not reuse
# a connection the provider is closing; busy connectors never idle that long anyway.
KEEPALIVE_SECONDS = 4.0


@dataclass(frozen=True, slots=True)
class ClientSettings:
    max_connections: int
    connect_timeout: float
    read_timeout: float


@dataclass(slots=True)
class Reply:
    """A provider's answer, read in full (and capped)."""

    status: int
    headers: httpx.Headers
    content: bytes

    @property
    def media_type(self) -> str:
        """The Content-Type without parameters, lower-cased ('' when absent)."""
        value: str = self.headers.get("content-type", "")
        return value.partition(";")[0].strip().lower()


def build_client(settings: ClientSettings) -> httpx.AsyncClient:
    """One client, one pool, for the life of a connector."""
    limits = httpx.Limits(
        max_connections=settings.max_connections,
        max_keepalive_connections=settings.max_connections,
        keepalive_expiry=KEEPALIVE_SECONDS,
    )
    # `pool` becomes aiohttp's `connect`: waiting for a free connection plus connecting. A queued
    # request waits at most as long as one request may take.
    timeout = httpx.Timeout(
        connect=settings.connect_timeout,
        read=settings.read_timeout,
        write=settings.read_timeout,
        pool=settings.connect_timeout + settings.read_timeout,
    )
    return httpx.AsyncClient(
        transport=AiohttpTransport(limits=limits),
        timeout=timeout,
        headers={"User-Agent": USER_AGENT},
        follow_redirects=False,
        trust_env=False,  # no proxy from the environment: a proxy would bypass the aiohttp pool
    )


async def send(
    client: httpx.AsyncClient,
    request: httpx.Request,
    *,
    label: str = "the provider",
    max_body: int = MAX_BODY_BYTES,
) -> Reply:
    """Send `request` and read the whole answer; raise a ConnectorError on any transport failure.

    `label` names the other side in messages ("the provider", "the token endpoint"): messages
    reach consumers, so they do not name hosts inside the province's network.
    """
    try:
        response = await client.send(request, stream=True)
    except (TimeoutError, httpx.TransportError, aiohttp.ClientError, OSError) as exc:
        raise transport_failure(exc, label) from exc
    try:
        content = await _read_capped(response, max_body, label)
    except (TimeoutError, httpx.TransportError, aiohttp.ClientError, OSError) as exc:
        raise transport_failure(exc, label, reading=True) from exc
    finally:
        await response.aclose()
    return Reply(response.status_code, response.headers, content)


async def _read_capped(response: httpx.Response, max_body: int, label: str) -> bytes:
    declared = response.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > max_body:
        raise _too_big(response.status_code, max_body, label)
    chunks: list[bytes] = []
    size = 0
    async for chunk in response.aiter_bytes():  # decoded: the cap also stops zip bombs
        size += len(chunk)
        if size > max_body:
            raise _too_big(response.status_code, max_body, label)
        chunks.append(chunk)
    return b"".join(chunks)


def _too_big(status: int, max_body: int, label: str) -> UpstreamBadResponse:
    return UpstreamBadResponse(
        f"{label} answered more than {max_body // (1024 * 1024)} MiB", provider_status=status
    )


def transport_failure(exc: BaseException, label: str, *, reading: bool = False) -> ConnectorError:
    """The ConnectorError for a failure below HTTP (connecting, sending, reading)."""
    cause = exc.__cause__ if isinstance(exc, httpx.HTTPError) and exc.__cause__ else exc
    if isinstance(cause, aiohttp.ClientConnectorDNSError):
        return UpstreamUnavailable(f"could not resolve {label}", request_sent=False)
    if isinstance(cause, aiohttp.ClientSSLError):
        return UpstreamUnavailable(f"TLS handshake with {label} failed", request_sent=False)
    if isinstance(cause, aiohttp.ClientConnectorError):
        errno = cause.os_error.errno  # its strerror may quote the address: keep only the errno
        reason = os.strerror(errno) if errno else "connection failed"
        return UpstreamUnavailable(f"could not connect to {label}: {reason}", request_sent=False)
    if isinstance(cause, aiohttp.ConnectionTimeoutError):
        return UpstreamTimeout(f"connecting to {label} timed out", request_sent=False)
    if isinstance(cause, aiohttp.SocketTimeoutError | TimeoutError):
        return UpstreamTimeout(f"{label} did not answer in time")
    if isinstance(cause, aiohttp.ClientPayloadError):
        return UpstreamUnavailable(f"{label} closed the connection in the middle of its answer")
    if isinstance(cause, aiohttp.ClientResponseError):
        return UpstreamBadResponse(f"{label} answered something that is not valid HTTP")
    if isinstance(cause, aiohttp.ClientError | OSError):
        return UpstreamUnavailable(f"the connection to {label} was lost")
    return _from_httpx(exc, label, reading=reading)


def _from_httpx(exc: BaseException, label: str, *, reading: bool) -> ConnectorError:
    # Only reached when the exception did not come from aiohttp (another transport, in tests).
    if isinstance(exc, httpx.ConnectError):
        return UpstreamUnavailable(f"could not connect to {label}", request_sent=False)
    if isinstance(exc, httpx.ConnectTimeout | httpx.PoolTimeout):
        return UpstreamTimeout(f"connecting to {label} timed out", request_sent=False)
    if isinstance(exc, httpx.TimeoutException):
        return UpstreamTimeout(f"{label} did not answer in time")
    if isinstance(exc, httpx.RemoteProtocolError) and not reading:
        return UpstreamBadResponse(f"{label} answered something that is not valid HTTP")
    return UpstreamUnavailable(f"the connection to {label} was lost")
