"""The REST connector against a real provider on loopback: mapping, failures, retries."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest

from connectors import UpstreamRequest, UpstreamResponse, create_connector
from connectors.config import HttpConfig
from connectors.errors import (
    ConnectorError,
    ProviderRejected,
    RequestNotMappable,
    UpstreamAuthFailed,
    UpstreamBadResponse,
    UpstreamOverloaded,
    UpstreamTimeout,
    UpstreamUnavailable,
)
from connectors.rest import RestConnector
from registry.models import Connector, Route
from tests.integration.connectors.connector_upstreams import API_KEY, Provider, connector_row


def request(method: str, path: str, **kw: Any) -> UpstreamRequest:
    route_fields = {k: kw.pop(k) for k in list(kw) if k in Route.model_fields}
    return UpstreamRequest(
        route=Route(method=method, path=path, **route_fields),
        path_params=kw.pop("path_params", {}),
        query=kw.pop("query", []),
        body=kw.pop("body", None),
        headers=kw.pop("headers", {}),
    )


def call(row: Connector, req: UpstreamRequest) -> UpstreamResponse:
    async def main() -> UpstreamResponse:
        connector = create_connector(row)
        try:
            return await connector.call(req)
        finally:
            await connector.aclose()

    return asyncio.run(main())


def failure(row: Connector, req: UpstreamRequest) -> ConnectorError:
    with pytest.raises(ConnectorError) as info:
        call(row, req)
    return info.value


def test_builds_the_upstream_request(provider: Provider) -> None:
    row = connector_row(provider.base_url, options={"headers": {"X-Province": "TTH"}})
    req = request(
        "POST",
        "/cong-dan/{so_dinh_danh}",
        upstream_method="PUT",
        upstream_path="/echo/citizens/{so_dinh_danh}",
        path_params={"so_dinh_danh": "0012/34 5?"},
        query=[("a", "1"), ("a", "2"), ("q", "Huế")],
        body={"ho_ten": "Nguyễn Văn A", "tuoi": 42},
        headers={"X-Request-Id": "req-1", "X-Province": "overridden?"},
    )
    answer = call(row, req)
    echo = answer.body
    assert answer.status == 200
    assert answer.attempts == 1
    assert echo["method"] == "PUT"
    assert echo["raw_path"] == "/echo/citizens/0012%2F34%205%3F"
    assert echo["query"] == [["a", "1"], ["a", "2"], ["q", "Huế"]]
    assert echo["body"] == {"ho_ten": "Nguyễn Văn A", "tuoi": 42}
    assert echo["headers"]["content-type"] == "application/json"
    assert echo["headers"]["accept"] == "application/json"
    assert echo["headers"]["x-request-id"] == "req-1"
    assert echo["headers"]["x-province"] == "TTH"  # the connector's static header wins
    # Only the selected provider headers come back; Server does not.
    assert answer.headers == {"cache-control": "no-store", "etag": '"v1"'}


@pytest.mark.parametrize("value", [".", ".."])
def test_dot_segments_cannot_climb_out_of_the_template(provider: Provider, value: str) -> None:
    req = request("GET", "/echo/a/{x}/b", path_params={"x": value})
    error = failure(connector_row(provider.base_url), req)
    assert type(error) is RequestNotMappable
    assert provider.state.calls["echo"] == 0


def test_get_sends_no_body(provider: Provider) -> None:
    answer = call(connector_row(provider.base_url), request("GET", "/echo/x", body={"a": 1}))
    assert answer.body["body"] is None
    assert "content-type" not in answer.body["headers"]


@pytest.mark.parametrize(
    ("path", "cls", "message"),
    [
        ("/html", UpstreamBadResponse, "answered text/html, expected JSON"),
        ("/bad-json", UpstreamBadResponse, "answered invalid JSON"),
        ("/huge", UpstreamBadResponse, "answered more than 10 MiB"),
    ],
)
def test_garbage_is_a_bad_response(provider: Provider, path: str, cls: type, message: str) -> None:
    error = failure(connector_row(provider.base_url), request("GET", path))
    assert type(error) is cls
    assert message in str(error)
    assert error.provider_status == 200
    assert error.attempts == 1  # Terminal: never retried


def test_body_cap_applies_to_chunked_answers(provider: Provider) -> None:
    async def main() -> None:
        config = HttpConfig.from_row(connector_row(provider.base_url), max_body=1024)
        connector = RestConnector(config)
        try:
            with pytest.raises(UpstreamBadResponse, match="more than 0 MiB"):
                await connector.call(request("POST", "/echo/x", body={"x": "y" * 5000}))
        finally:
            await connector.aclose()

    asyncio.run(main())


@pytest.mark.parametrize(
    ("path", "cls", "message", "sent"),
    [
        ("/truncated", UpstreamUnavailable, "closed the connection in the middle", True),
        ("/not-http", UpstreamBadResponse, "not valid HTTP", True),
        ("/close", UpstreamUnavailable, "connection", True),
    ],
)
def test_broken_transfers(raw_server: str, path: str, cls: type, message: str, sent: bool) -> None:
    error = failure(connector_row(raw_server), request("POST", path))
    assert type(error) is cls
    assert message in str(error)
    assert error.request_sent is sent
    assert error.attempts == 1  # POST: not retried


def test_refused_connection_is_retried_even_for_post(closed_port: str) -> None:
    error = failure(connector_row(closed_port), request("POST", "/echo/x", body={}))
    assert type(error) is UpstreamUnavailable
    assert "could not connect to the provider: Connection refused" in str(error)
    assert error.request_sent is False
    assert error.attempts == 3


def test_read_timeout_retried_for_idempotent_routes(provider: Provider) -> None:
    row = connector_row(provider.base_url, read_timeout=0.2, retry={**FAST, "max_attempts": 2})
    started = time.monotonic()
    error = failure(row, request("GET", "/slow/{key}/{s}", path_params={"key": "t1", "s": "1"}))
    assert type(error) is UpstreamTimeout
    assert "did not answer in time" in str(error)
    assert error.attempts == 2
    assert provider.state.calls["t1"] == 2
    assert time.monotonic() - started < 1.5


def test_read_timeout_not_retried_for_post(provider: Provider) -> None:
    row = connector_row(provider.base_url, read_timeout=0.2)
    error = failure(row, request("POST", "/slow/{key}/{s}", path_params={"key": "t2", "s": "1"}))
    assert type(error) is UpstreamTimeout
    assert error.attempts == 1
    assert provider.state.calls["t2"] == 1


FAST = {"backoff_initial": 0.001, "backoff_max": 0.005, "max_delay": 5}


@pytest.mark.parametrize("code", [502, 503, 504, 429])
def test_overload_is_retried_for_get_and_counted(provider: Provider, code: int) -> None:
    key = f"get-{code}"
    req = request("GET", "/flaky/{k}/{n}/{c}", path_params={"k": key, "n": "2", "c": str(code)})
    answer = call(connector_row(provider.base_url), req)
    assert answer.body == {"ok": True, "calls": 3}
    assert answer.attempts == 3


@pytest.mark.parametrize("code", [502, 503, 504, 429])
def test_overload_maps_with_provider_status(provider: Provider, code: int) -> None:
    req = request(
        "GET", "/flaky/{k}/{n}/{c}", path_params={"k": f"x{code}", "n": "9", "c": str(code)}
    )
    error = failure(connector_row(provider.base_url), req)
    assert type(error) is UpstreamOverloaded
    assert error.provider_status == code
    assert error.attempts == 3
    assert provider.state.calls[f"x{code}"] == 3


def test_post_is_not_retried(provider: Provider) -> None:
    req = request("POST", "/flaky/{k}/{n}/{c}", path_params={"k": "post", "n": "1", "c": "503"})
    error = failure(connector_row(provider.base_url), req)
    assert type(error) is UpstreamOverloaded
    assert error.attempts == 1
    assert provider.state.calls["post"] == 1


def test_post_declared_idempotent_is_retried(provider: Provider) -> None:
    req = request(
        "POST", "/flaky/{k}/{n}/{c}", idempotent=True, path_params={"k": "pi", "n": "1", "c": "503"}
    )
    assert call(connector_row(provider.base_url), req).attempts == 2


def test_retry_after_is_the_wait(provider: Provider) -> None:
    req = request(
        "GET",
        "/flaky/{k}/{n}/{c}",
        path_params={"k": "ra", "n": "1", "c": "429"},
        query=[("retry_after", "1")],
    )
    started = time.monotonic()
    answer = call(connector_row(provider.base_url), req)
    assert answer.attempts == 2
    assert time.monotonic() - started >= 0.95


def test_retry_after_beyond_max_delay_gives_up_at_once(provider: Provider) -> None:
    req = request(
        "GET",
        "/flaky/{k}/{n}/{c}",
        path_params={"k": "ra2", "n": "5", "c": "503"},
        query=[("retry_after", "120")],
    )
    started = time.monotonic()
    error = failure(connector_row(provider.base_url), req)
    assert type(error) is UpstreamOverloaded
    assert error.retry_after == 120
    assert error.attempts == 1
    assert time.monotonic() - started < 1


def test_internal_error_is_terminal(provider: Provider) -> None:
    req = request("GET", "/flaky/{k}/{n}/{c}", path_params={"k": "500", "n": "5", "c": "500"})
    error = failure(connector_row(provider.base_url), req)
    assert type(error) is UpstreamBadResponse
    assert error.provider_status == 500
    assert error.attempts == 1
    assert provider.state.calls["500"] == 1


@pytest.mark.parametrize(("code", "cls"), [(401, UpstreamAuthFailed), (403, UpstreamAuthFailed)])
def test_credentials_refused(provider: Provider, code: int, cls: type) -> None:
    req = request(
        "GET", "/flaky/{k}/{n}/{c}", path_params={"k": f"a{code}", "n": "5", "c": str(code)}
    )
    error = failure(connector_row(provider.base_url), req)
    assert type(error) is cls
    assert error.provider_status == code
    assert error.attempts == 1


def test_other_4xx_is_rejected_with_the_providers_body(provider: Provider) -> None:
    req = request("GET", "/flaky/{k}/{n}/{c}", path_params={"k": "404", "n": "5", "c": "404"})
    error = failure(connector_row(provider.base_url), req)
    assert type(error) is ProviderRejected
    assert error.provider_status == 404
    assert error.body == {"error": "busy", "call": 1}


def test_api_key_is_sent_and_never_shown(provider: Provider) -> None:
    auth = {"type": "api_key", "secret": API_KEY}
    row = connector_row(provider.base_url, auth=auth)
    assert call(row, request("GET", "/api-key")).body == {"ok": True}

    async def main() -> None:
        connector = create_connector(row)
        assert isinstance(connector, RestConnector)
        assert API_KEY not in repr(connector)
        assert API_KEY not in repr(connector.config)
        await connector.aclose()

    asyncio.run(main())
    wrong = connector_row(provider.base_url, auth={**auth, "secret": "wrong-key-123"})
    error = failure(wrong, request("GET", "/api-key"))
    assert type(error) is UpstreamAuthFailed
    for text in (str(error), repr(error), repr(error.body), repr(error.args)):
        assert "wrong-key-123" not in text


def test_basic_auth(provider: Provider) -> None:
    row = connector_row(
        provider.base_url, auth={"type": "basic", "username": "hub", "secret": "p@ss"}
    )
    headers = call(row, request("GET", "/echo/b")).body["headers"]
    assert headers["authorization"] == "Basic aHViOnBAc3M="
