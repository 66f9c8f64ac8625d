"""Failover, the circuit breaker, health checks and mutual TLS against real servers on loopback."""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import trustme

from connectors import UpstreamRequest, create_connector
from connectors.breaker import CircuitOpen, State
from connectors.errors import ConnectorError, UpstreamUnavailable
from connectors.health import HealthMonitor
from connectors.http_connector import HttpConnector
from gateway.exchange.providers import connector_problem
from registry.models import Route
from tests.conftest import free_port
from tests.integration.connectors.connector_upstreams import (
    Provider,
    ProviderState,
    UvicornThread,
    build_app,
    connector_row,
)
from tests.wait import wait_until_async

ONE_TRY = {"max_attempts": 1, "backoff_initial": 0.001, "backoff_max": 0.005, "max_delay": 5}


def get(path: str, query: list[tuple[str, str]] | None = None) -> UpstreamRequest:
    route = Route(method="GET", path=path)
    return UpstreamRequest(route=route, path_params={}, query=query or [], body=None)


def post(path: str) -> UpstreamRequest:
    return UpstreamRequest(
        route=Route(method="POST", path=path), path_params={}, query=[], body={"a": 1}
    )


def http_connector(row: Any) -> HttpConnector:
    connector = create_connector(row)
    assert isinstance(connector, HttpConnector)
    return connector


# ---------------------------------------------------------------- failover


def test_a_refused_url_fails_over_to_the_next_even_for_a_post(
    provider: Provider, closed_port: str
) -> None:
    """Connection refused: nothing was sent, so even a POST moves on to the second URL."""
    row = connector_row(closed_port, base_urls=[closed_port, provider.base_url], retry=ONE_TRY)

    async def main() -> list[tuple[int, int]]:
        connector = create_connector(row)
        try:
            served = []
            for request in (get("/echo/a"), post("/echo/b")):
                answer = await connector.call(request)
                served.append((answer.upstream, answer.attempts))
            return served
        finally:
            await connector.aclose()

    assert asyncio.run(main()) == [(1, 2), (1, 2)]
    assert provider.state.calls["echo"] == 2


def test_a_503_on_one_url_is_retried_on_the_next_at_once(provider: Provider) -> None:
    """in_order: the first URL answers 503 (Retry-After 30) for an idempotent GET; the second URL
    serves without waiting out the Retry-After (the exchange deadline is 5 s)."""
    first = provider.base_url + "/flaky/fo/100"  # + /503: always 503
    row = connector_row(first, base_urls=[first, provider.base_url + "/echo"], retry=ONE_TRY)

    async def main() -> Any:
        connector = create_connector(row)
        try:
            return await connector.call(get("/503", [("retry_after", "30")]))
        finally:
            await connector.aclose()

    answer = asyncio.run(main())
    assert (answer.upstream, answer.attempts, answer.body["path"]) == (1, 2, "/echo/503")
    assert provider.state.calls["fo"] == 1


def test_round_robin_spreads_calls_over_the_urls(provider: Provider) -> None:
    a, b = provider.base_url + "/echo/a", provider.base_url + "/echo/b"
    row = connector_row(a, base_urls=[a, b], failover="round_robin", retry=ONE_TRY)

    async def main() -> list[str]:
        connector = create_connector(row)
        try:
            return [(await connector.call(get("/x"))).body["path"] for _ in range(4)]
        finally:
            await connector.aclose()

    assert asyncio.run(main()) == ["/echo/a/x", "/echo/b/x", "/echo/a/x", "/echo/b/x"]


# ---------------------------------------------------------------- circuit breaker


def test_a_provider_that_dies_opens_the_breaker_and_closes_it_when_back() -> None:
    state = ProviderState()
    port = free_port()
    breaker = {"failures": 3, "window": 30, "cool_down": 0.5}
    row = connector_row(f"http://127.0.0.1:{port}", retry=ONE_TRY, breaker=breaker)

    async def main() -> None:
        connector = http_connector(row)
        try:
            with UvicornThread(build_app(state), port=port):
                assert (await connector.call(get("/echo/up"))).status == 200
            # The provider is gone: three refused calls open the circuit.
            for _ in range(3):
                with pytest.raises(UpstreamUnavailable):
                    await connector.call(get("/echo/down"))
            assert connector.breaker.snapshot().state is State.OPEN
            with UvicornThread(build_app(state), port=port):  # back, but the circuit is open
                with pytest.raises(CircuitOpen) as refused:
                    await connector.call(get("/echo/refused"))
                assert state.calls["echo"] == 1  # nothing reached it
                problem = connector_problem(refused.value, "dan-cu")
                assert problem.status == 503
                assert 1 <= int(problem.headers["retry-after"]) <= 1
                # After the cool-down one probe goes through and closes the circuit.
                await wait_until_async(_cooled(connector), timeout=10, what="the cool-down to pass")
                assert (await connector.call(get("/echo/probe"))).status == 200
                assert connector.breaker.snapshot().state is State.CLOSED
                assert (await connector.call(get("/echo/again"))).status == 200
                assert [r["path"] for r in state.requests["echo"]] == [
                    "/echo/up",
                    "/echo/probe",
                    "/echo/again",
                ]
        finally:
            await connector.aclose()

    asyncio.run(main())


def _cooled(connector: HttpConnector) -> Any:
    async def probe() -> bool:
        return connector.breaker.snapshot().retry_after == 0

    return probe


def test_a_failed_probe_opens_the_circuit_again(closed_port: str) -> None:
    row = connector_row(
        closed_port, retry=ONE_TRY, breaker={"failures": 1, "window": 30, "cool_down": 0.2}
    )

    async def main() -> list[str]:
        connector = http_connector(row)
        outcomes = []
        try:
            for _ in range(2):
                with pytest.raises(ConnectorError) as failed:
                    await connector.call(get("/x"))
                outcomes.append(type(failed.value).__name__)
            await wait_until_async(_cooled(connector), timeout=10, what="the cool-down")
            with pytest.raises(ConnectorError) as failed:
                await connector.call(get("/x"))  # the probe, refused by the closed port
            outcomes.append(type(failed.value).__name__)
            outcomes.append(connector.breaker.state.value)
            return outcomes
        finally:
            await connector.aclose()

    assert asyncio.run(main()) == [
        "UpstreamUnavailable",
        "CircuitOpen",
        "UpstreamUnavailable",
        "open",
    ]


# ---------------------------------------------------------------- health checks


def test_health_checks_follow_a_provider_that_dies_and_comes_back() -> None:
    state = ProviderState()
    port = free_port()
    health = {"interval": 0.3, "timeout": 0.3, "healthy_threshold": 2, "unhealthy_threshold": 2}
    row = connector_row(f"http://127.0.0.1:{port}", health_path="/api-key", health=health)
    row.options = {"headers": {}}

    async def main() -> list[str]:
        connector = http_connector(row)
        monitor = HealthMonitor()
        seen = []
        try:
            monitor.sync({"provider": connector})
            await _state(monitor, "unhealthy")  # nothing listens yet
            seen.append("unhealthy")
            with UvicornThread(build_app(state), port=port):
                # /api-key without the key answers 403: that is a failed check too.
                await wait_until_async(_checked(monitor, 403), timeout=10, what="a 403 check")
                assert (monitor.report("provider") or {})["state"] == "unhealthy"
                seen.append("403")
            return seen
        finally:
            await monitor.stop()
            await connector.aclose()

    assert asyncio.run(main()) == ["unhealthy", "403"]


def test_a_healthy_provider_is_reported_healthy(provider: Provider) -> None:
    health = {"interval": 0.5, "timeout": 0.5, "healthy_threshold": 2, "unhealthy_threshold": 1}
    row = connector_row(provider.base_url, health_path="/echo/health", health=health)

    async def main() -> dict[str, Any]:
        connector = http_connector(row)
        monitor = HealthMonitor()
        try:
            monitor.sync({"provider": connector})
            await _state(monitor, "healthy")
            report = monitor.report("provider")
            assert report is not None
            return report
        finally:
            await monitor.stop()
            await connector.aclose()

    report = asyncio.run(main())
    assert [u["state"] for u in report["urls"]] == ["healthy"]
    assert len(report["history"]) >= 2 and all(c["ok"] for c in report["history"])
    assert provider.state.requests["echo"][0]["path"] == "/echo/health"


def _checked(monitor: HealthMonitor, status: int) -> Any:
    async def probe() -> bool:
        report = monitor.report("provider") or {"history": []}
        return any(c["status"] == status for c in report["history"])

    return probe


async def _state(monitor: HealthMonitor, wanted: str) -> None:
    async def probe() -> bool:
        report = monitor.report("provider")
        return report is not None and report["state"] == wanted

    await wait_until_async(probe, timeout=10, what=f"the provider to be {wanted}")


# ---------------------------------------------------------------- mutual TLS


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture(scope="module")
def mtls_provider(ca: trustme.CA, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A provider that accepts only clients with a certificate from `ca`."""
    directory: Path = tmp_path_factory.mktemp("mtls")
    server = ca.issue_cert("127.0.0.1")
    server.cert_chain_pems[0].write_to_path(str(directory / "cert.pem"))
    server.private_key_pem.write_to_path(str(directory / "key.pem"))
    ca.cert_pem.write_to_path(str(directory / "ca.pem"))
    with UvicornThread(
        build_app(ProviderState()),
        ssl_certfile=str(directory / "cert.pem"),
        ssl_keyfile=str(directory / "key.pem"),
        ssl_ca_certs=str(directory / "ca.pem"),
        ssl_cert_reqs=ssl.CERT_REQUIRED,
    ) as base_url:
        yield base_url


def client_tls(ca: trustme.CA, *, trust: trustme.CA | None = None) -> dict[str, str]:
    client = ca.issue_cert("hub.lgsp.local")
    return {
        "client_cert": client.cert_chain_pems[0].bytes().decode(),
        "client_key": client.private_key_pem.bytes().decode(),
        "ca_bundle": (trust or ca).cert_pem.bytes().decode(),
    }


def outcome(row: Any) -> Any:
    async def main() -> Any:
        connector = create_connector(row)
        try:
            return await connector.call(get("/echo/mtls"))
        except ConnectorError as exc:
            return exc
        finally:
            await connector.aclose()

    return asyncio.run(main())


def test_a_call_with_the_client_certificate_succeeds(ca: trustme.CA, mtls_provider: str) -> None:
    answer = outcome(connector_row(mtls_provider, tls=client_tls(ca)))
    assert not isinstance(answer, ConnectorError), answer
    assert answer.body["path"] == "/echo/mtls"


def test_a_soap_connector_speaks_mutual_tls_too(ca: trustme.CA, mtls_provider: str) -> None:
    row = connector_row(mtls_provider + "/soap", kind="soap", tls=client_tls(ca))

    async def main() -> Any:
        connector = create_connector(row)
        try:
            route = Route(method="POST", path="/tra-cuu", operation="TraCuu")
            request = UpstreamRequest(
                route=route, path_params={}, query=[], body={"SoDinhDanh": "012345678901"}
            )
            return await connector.call(request)
        finally:
            await connector.aclose()

    assert asyncio.run(main()).body == {"SoDinhDanh": "012345678901"}


def test_without_a_client_certificate_the_provider_refuses(
    ca: trustme.CA, mtls_provider: str
) -> None:
    tls = {"ca_bundle": ca.cert_pem.bytes().decode()}
    failed = outcome(connector_row(mtls_provider, tls=tls, retry=ONE_TRY))
    assert isinstance(failed, UpstreamUnavailable), failed
    assert connector_problem(failed, "dan-cu").status == 502


def test_a_provider_certificate_from_another_ca_is_refused(
    ca: trustme.CA, mtls_provider: str
) -> None:
    failed = outcome(
        connector_row(mtls_provider, tls=client_tls(ca, trust=trustme.CA()), retry=ONE_TRY)
    )
    assert isinstance(failed, UpstreamUnavailable), failed
    assert failed.detail == "TLS handshake with the provider failed"
    assert connector_problem(failed, "dan-cu").status == 502
