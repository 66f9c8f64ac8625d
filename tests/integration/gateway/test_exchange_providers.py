"""What a consumer sees of a provider that dies and comes back (the circuit breaker), and of a
failover URL serving; each call recorded."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from tests.conftest import free_port
from tests.integration.conftest import APPROVE, World
from tests.integration.connectors.connector_upstreams import ProviderState, UvicornThread, build_app
from tests.integration.gateway.test_exchange import problem
from tests.wait import wait_until

ONE_TRY = {"max_attempts": 1, "backoff_initial": 0.01, "backoff_max": 0.05, "max_delay": 5}
ROUTE = {"method": "GET", "path": "/cong-dan", "upstream_path": "/echo/cong-dan"}


def world_on(make_world: Callable[..., World], base_url: str, **connector: Any) -> World:
    return make_world(
        base_url=base_url,
        routes=[ROUTE],
        grant={},
        decision=APPROVE,
        connector_extra={"retry": ONE_TRY, **connector},
    )


def test_a_dead_provider_opens_the_breaker_and_a_live_one_closes_it(
    make_world: Callable[..., World],
) -> None:
    state = ProviderState()
    port = free_port()
    world = world_on(
        make_world,
        f"http://127.0.0.1:{port}",
        breaker={"failures": 2, "window": 60, "cool_down": 1},
    )
    with UvicornThread(build_app(state), port=port):
        assert world.call("GET", "/cong-dan").status_code == 200
    for _ in range(2):  # the provider is gone
        problem(world.call("GET", "/cong-dan"), 502, "provider-unreachable")

    with UvicornThread(build_app(state), port=port):  # back, but the circuit is open
        refused = world.call("GET", "/cong-dan")
        doc = problem(refused, 503, "provider-circuit-open")
        assert refused.headers["retry-after"] == "1" and doc["retry_after"] == 1
        assert doc["detail"].startswith(f"{world.connector}: the provider failed 2 times")
        assert state.calls["echo"] == 1  # nothing reached the provider

        # After the cool-down, a probe goes through and closes the circuit.
        wait_until(
            lambda: world.call("GET", "/cong-dan").status_code == 200,
            timeout=15,
            what="a call through the closed circuit",
        )
        assert world.call("GET", "/cong-dan").status_code == 200
        assert state.calls["echo"] == 3

    records = world.records()
    statuses = [r["hub_status"] for r in reversed(records)]  # oldest first
    assert statuses[:4] == [200, 502, 502, 503] and statuses[-2:] == [200, 200]
    opened = [r for r in records if r["hub_status"] == 503]
    assert opened and all(r["error"].startswith("CircuitOpen: ") for r in opened)
    assert all(r["attempts"] == 0 and r["provider_status"] is None for r in opened)


def test_the_failover_url_that_served_is_recorded(
    make_world: Callable[..., World], closed_port_url: str
) -> None:
    closed_port = closed_port_url
    state = ProviderState()
    with UvicornThread(build_app(state)) as provider:
        world = world_on(make_world, closed_port, base_urls=[closed_port, provider])
        answer = world.call("GET", "/cong-dan")
        assert answer.status_code == 200, answer.text
    (record,) = world.records()
    assert (record["hub_status"], record["attempts"], record["details"]) == (
        200, 2, {"upstream": 1}
    )  # fmt: skip
