"""A provider's non-2xx HTTP status, mapped to the connector error that says what happened."""

from __future__ import annotations

from email.utils import parsedate_to_datetime
from typing import Any

import orjson

from connectors.errors import (
    ConnectorError,
    ProviderRejected,
    UpstreamAuthFailed,
    UpstreamBadResponse,
    UpstreamOverloaded,
    UpstreamTimeout,
)
from connectors.http import Reply
from registry.types import utcnow

OVERLOADED = frozenset({429, 502, 503, 504})
AUTH_FAILED = frozenset({401, 403})


def parse_retry_after(value: str | None) -> float | None:
    """Seconds to wait from a Retry-After header (delay-seconds or HTTP-date), or None."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:  # an HTTP-date is always GMT; a naive parse means "-0000"
        return None
    return max(0.0, (when - utcnow()).total_seconds())


def json_body(reply: Reply) -> Any:
    """The reply's body when it is JSON, else None (for error bodies: best effort)."""
    media = reply.media_type
    if not reply.content or not (media == "application/json" or media.endswith("+json")):
        return None
    try:
        return orjson.loads(reply.content)
    except orjson.JSONDecodeError:
        return None


def error_for_status(reply: Reply, label: str) -> ConnectorError:
    """The error for a non-2xx answer (SOAP connectors look for a fault before calling this)."""
    status = reply.status
    if status in OVERLOADED:
        retry_after = parse_retry_after(reply.headers.get("retry-after"))
        return UpstreamOverloaded(
            f"{label} is overloaded or unavailable (HTTP {status})",
            provider_status=status,
            retry_after=retry_after,
        )
    if status in AUTH_FAILED:
        return UpstreamAuthFailed(
            f"{label} refused the hub's credentials (HTTP {status})", provider_status=status
        )
    if status == 408:
        return UpstreamTimeout(
            f"{label} timed out reading the request (HTTP 408)", provider_status=408
        )
    if 400 <= status < 500:
        return ProviderRejected(
            f"{label} rejected the request (HTTP {status})",
            provider_status=status,
            body=json_body(reply),
        )
    if status >= 500:
        # A 500 is a provider bug, not congestion: retrying the same request will not help.
        return UpstreamBadResponse(
            f"{label} failed with an internal error (HTTP {status})",
            provider_status=status,
            body=json_body(reply),
        )
    return UpstreamBadResponse(
        f"{label} answered HTTP {status}, which the hub does not follow", provider_status=status
    )
