"""Provider statuses to errors, and Retry-After in both of its forms."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import httpx
import pytest

from connectors.errors import (
    ProviderRejected,
    UpstreamAuthFailed,
    UpstreamBadResponse,
    UpstreamOverloaded,
    UpstreamTimeout,
)
from connectors.http import Reply
from connectors.status import error_for_status, parse_retry_after


def reply(status: int, content: bytes = b"", **headers: str) -> Reply:
    return Reply(
        status, httpx.Headers({k.replace("_", "-"): v for k, v in headers.items()}), content
    )


def test_retry_after_seconds_and_dates() -> None:
    assert parse_retry_after("7") == 7.0
    assert parse_retry_after(None) is None
    assert parse_retry_after("soon") is None
    assert parse_retry_after("-3") is None
    later = format_datetime(datetime.now(UTC) + timedelta(seconds=30), usegmt=True)
    assert 28 <= (parse_retry_after(later) or 0) <= 30
    earlier = format_datetime(datetime.now(UTC) - timedelta(seconds=30), usegmt=True)
    assert parse_retry_after(earlier) == 0.0


@pytest.mark.parametrize(
    ("status", "cls"),
    [
        (429, UpstreamOverloaded),
        (502, UpstreamOverloaded),
        (503, UpstreamOverloaded),
        (504, UpstreamOverloaded),
        (401, UpstreamAuthFailed),
        (403, UpstreamAuthFailed),
        (408, UpstreamTimeout),
        (400, ProviderRejected),
        (404, ProviderRejected),
        (422, ProviderRejected),
        (500, UpstreamBadResponse),
        (501, UpstreamBadResponse),
        (302, UpstreamBadResponse),
    ],
)
def test_each_status_maps_to_its_class(status: int, cls: type) -> None:
    error = error_for_status(reply(status), "provider.example:443")
    assert type(error) is cls
    assert error.provider_status == status
    assert "provider.example:443" in str(error)


def test_overload_carries_retry_after() -> None:
    error = error_for_status(reply(503, retry_after="12"), "p")
    assert error.retry_after == 12


def test_rejection_carries_a_json_body_only() -> None:
    as_json = reply(422, b'{"loi": "sai"}', content_type="application/problem+json")
    assert error_for_status(as_json, "p").body == {"loi": "sai"}
    assert error_for_status(reply(422, b"<p>sai</p>", content_type="text/html"), "p").body is None
