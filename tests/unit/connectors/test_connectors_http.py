"""Transport failures, as aiohttp raises them, to connector errors."""

from __future__ import annotations

import aiohttp
import pytest
from aiohttp.client_reqrep import ConnectionKey

from connectors.errors import UpstreamBadResponse, UpstreamTimeout, UpstreamUnavailable
from connectors.http import transport_failure

KEY = ConnectionKey("10.0.0.1", 443, True, True, None, None, None)


@pytest.mark.parametrize(
    ("aiohttp_error", "cls", "sent", "message"),
    [
        (
            aiohttp.ClientConnectorError(KEY, ConnectionRefusedError(111, "Connection refused")),
            UpstreamUnavailable,
            False,
            "could not connect to h: Connection refused",
        ),
        (
            aiohttp.ClientConnectorDNSError(KEY, OSError(-2, "Name or service not known")),
            UpstreamUnavailable,
            False,
            "could not resolve h",
        ),
        (
            aiohttp.ConnectionTimeoutError("Connection timeout"),
            UpstreamTimeout,
            False,
            "connecting to h timed out",
        ),
        (
            aiohttp.SocketTimeoutError("Timeout on reading data from socket"),
            UpstreamTimeout,
            True,
            "h did not answer in time",
        ),
        (aiohttp.ServerDisconnectedError(), UpstreamUnavailable, True, "connection to h was lost"),
        (
            aiohttp.ClientPayloadError("Response payload is not completed"),
            UpstreamUnavailable,
            True,
            "closed the connection in the middle",
        ),
        (
            # As aiohttp raises it for an answer it cannot parse: no request info to give.
            aiohttp.ClientResponseError(None, (), status=400, message="Invalid HTTP response"),  # type: ignore[arg-type]
            UpstreamBadResponse,
            True,
            "not valid HTTP",
        ),
        (TimeoutError(), UpstreamTimeout, True, "did not answer in time"),
        (ConnectionResetError(104, "reset"), UpstreamUnavailable, True, "was lost"),
    ],
)
def test_transport_failures_map_to_connector_errors(
    aiohttp_error: Exception, cls: type, sent: bool, message: str
) -> None:
    error = transport_failure(aiohttp_error, "h")
    assert type(error) is cls
    assert error.request_sent is sent
    assert message in str(error)
    assert "10.0.0.1" not in str(error)  # messages reach consumers: no internal addresses
