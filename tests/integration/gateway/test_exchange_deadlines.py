"""What a consumer sees of a provider that drips its answer: a 504 problem naming the connector
and the deadline that passed, in about that time, recorded with its attempts. Upper bounds on
time are the deadline plus 3 s, for a loaded CI machine."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from tests.integration.conftest import APPROVE, World
from tests.integration.dripping import DrippingServer
from tests.integration.gateway.test_exchange import problem
from tests.wait import wait_until

SLACK = 3.0


def dripping_world(
    make_world: Callable[..., World],
    dripping: DrippingServer,
    route: dict[str, Any],
    **connector: Any,
) -> World:
    return make_world(
        base_url=dripping.url,
        routes=[route],
        grant={},
        decision=APPROVE,
        connector_extra={"connect_timeout": 0.5, "read_timeout": 1, **connector},
    )


def test_a_dripping_provider_is_a_504_at_the_attempt_deadline(
    make_world: Any, dripping: DrippingServer, unique: Any
) -> None:
    # No read waits more than 0.05 s; the attempt deadline is connect + read timeout: 1.5 s.
    key = unique("drip")
    world = dripping_world(
        make_world,
        dripping,
        {"method": "POST", "path": "/ho-so", "upstream_path": f"/drip/{key}/0/9"},
    )
    started = time.monotonic()
    answer = world.call("POST", "/ho-so", json={"MaHoSo": "000.00.12.H12-261124-0001"})
    took = time.monotonic() - started

    doc = problem(answer, 504, "provider-timeout")
    assert doc["detail"] == (
        f"{world.connector}: the provider did not finish its answer within the attempt "
        "deadline of 1.5 s after 1 attempt"
    )
    assert (doc["attempts"], doc["deadline"], doc["deadline_seconds"]) == (1, "attempt", 1.5)
    assert "127.0.0.1" not in answer.text
    assert took < 1.5 + SLACK

    (record,) = world.records()
    assert (record["hub_status"], record["provider_status"], record["attempts"]) == (504, None, 1)
    assert record["error"] == (
        "DeadlinePassed: the provider did not finish its answer within the attempt "
        "deadline of 1.5 s"
    )
    assert 1_500_000 <= record["upstream_latency_us"] < (1.5 + SLACK) * 1_000_000
    assert record["request_id"] == answer.headers["x-request-id"]
    wait_until(lambda: dripping.keys[key].cut == 1, what="the provider to see its drip cut")


def test_retries_stop_at_the_exchange_deadline(
    make_world: Any, dripping: DrippingServer, unique: Any
) -> None:
    """An idempotent route: a fast 503, then a drip; the retry gets what is left of the
    exchange deadline, not a whole attempt deadline."""
    key = unique("drip")
    world = dripping_world(
        make_world,
        dripping,
        {"method": "GET", "path": "/ho-so", "upstream_path": f"/drip/{key}/1/9"},
        attempt_deadline=2,
        retry={"max_attempts": 5, "backoff_initial": 0.01, "backoff_max": 0.05, "max_delay": 2},
    )
    started = time.monotonic()
    answer = world.call("GET", "/ho-so")
    took = time.monotonic() - started

    doc = problem(answer, 504, "provider-timeout")
    assert doc["detail"] == (
        f"{world.connector}: the provider did not finish its answer within the exchange "
        "deadline of 2 s after 2 attempts"
    )
    assert (doc["attempts"], doc["deadline"], doc["deadline_seconds"]) == (2, "exchange", 2)
    assert took < 2 + SLACK
    assert dripping.keys[key].calls == 2

    (record,) = world.records()
    assert (record["hub_status"], record["attempts"]) == (504, 2)
    assert "exchange deadline of 2 s" in record["error"]
    assert record["upstream_latency_us"] < (2 + SLACK) * 1_000_000
