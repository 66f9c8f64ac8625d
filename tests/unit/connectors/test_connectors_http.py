"""Transport failures as httpx_aiohttp hands them over (oddly mapped), to connector errors."""

from __future__ import annotations

from types import SimpleNamespace

import aiohttp
import httpx
import pytest
from httpx_aiohttp.transport import map_aiohttp_exceptions

from connectors.errors import UpstreamBadResponse, UpstreamTimeout, UpstreamUnavailable
from connectors.http import transport_failure


def through_transport(exc: Exception) -> Exception:
    """The exception as httpx_aiohttp's transport would raise it."""
    try:
        with map_aiohttp_exceptions():
            raise exc
    except Exception as mapped:
        return mapped
    raise AssertionError("not raised")


KEY = SimpleNamespace(host="10.0.0.1", port=443, ssl=True)


@pytest.mark.parametrize(
    ("aiohttp_error", "httpx_class", "cls", "sent", "message"),
    [
        (
            aiohttp.ClientConnectorError(KEY, ConnectionRefusedError(111, "Connection refused")),  # type: ignore[arg-type]
            httpx.ConnectTimeout,  # sic: the transport calls a refusal a timeout
            UpstreamUnavailable,
            False,
            "could not connect to h: Connection refused",
        ),
        (
            aiohttp.ClientConnectorDNSError(KEY, OSError(-2, "Name or service not known")),  # type: ignore[arg-type]
            httpx.ConnectTimeout,
            UpstreamUnavailable,
            False,
            "could not resolve h",
        ),
        (
            aiohttp.ConnectionTimeoutError("Connection timeout"),
            httpx.ConnectTimeout,
            UpstreamTimeout,
            False,
            "connecting to h timed out",
        ),
        (
            aiohttp.SocketTimeoutError("Timeout on reading data from socket"),
            httpx.ReadTimeout,
            UpstreamTimeout,
            True,
            "h did not answer in time",
        ),
        (
            aiohttp.ServerDisconnectedError(),
            httpx.ConnectTimeout,  # sic: the request may well have been sent
            UpstreamUnavailable,
            True,
            "connection to h was lost",
        ),
        (
            aiohttp.ClientPayloadError("Response payload is not completed"),
            httpx.ReadError,
            UpstreamUnavailable,
            True,
            "closed the connection in the middle",
        ),
    ],
)
def test_mapped_from_the_original_aiohttp_error(
    aiohttp_error: Exception, httpx_class: type, cls: type, sent: bool, message: str
) -> None:
    wrapped = through_transport(aiohttp_error)
    assert type(wrapped) is httpx_class
    error = transport_failure(wrapped, "h")
    assert type(error) is cls
    assert error.request_sent is sent
    assert message in str(error)


def test_unmapped_aiohttp_errors_arrive_raw() -> None:
    raw = aiohttp.ClientResponseError(None, (), status=400, message="Invalid HTTP response")  # type: ignore[arg-type]
    assert through_transport(raw) is raw
    assert type(transport_failure(raw, "h")) is UpstreamBadResponse
    assert type(transport_failure(TimeoutError(), "h")) is UpstreamTimeout


@pytest.mark.parametrize(
    ("exc", "cls", "sent"),
    [
        (httpx.ConnectError("x"), UpstreamUnavailable, False),
        (httpx.ConnectTimeout("x"), UpstreamTimeout, False),
        (httpx.PoolTimeout("x"), UpstreamTimeout, False),
        (httpx.ReadTimeout("x"), UpstreamTimeout, True),
        (httpx.RemoteProtocolError("x"), UpstreamBadResponse, True),
        (httpx.ReadError("x"), UpstreamUnavailable, True),
    ],
)
def test_other_transports_by_httpx_class(exc: Exception, cls: type, sent: bool) -> None:
    error = transport_failure(exc, "h")
    assert type(error) is cls
    assert error.request_sent is sent
