"""The order in which a call tries a connector's base URLs, and the waits between them."""

from __future__ import annotations

import asyncio

import pytest

from connectors.errors import UpstreamUnavailable
from connectors.failover import Upstreams
from connectors.retry import Retrier
from registry.connector_settings import Failover
from registry.models import RetryPolicy

URLS = ("http://a", "http://b", "http://c")


def test_in_order_always_starts_on_the_first_url() -> None:
    upstreams = Upstreams(URLS, Failover.IN_ORDER)
    assert [upstreams.order() for _ in range(3)] == [(0, 1, 2)] * 3


def test_round_robin_starts_each_call_on_the_next_url() -> None:
    upstreams = Upstreams(URLS, Failover.ROUND_ROBIN)
    assert [upstreams.order() for _ in range(4)] == [(0, 1, 2), (1, 2, 0), (2, 0, 1), (0, 1, 2)]


def test_one_url_is_one_order() -> None:
    assert Upstreams(("http://a",), Failover.ROUND_ROBIN).order() == (0,)


def test_no_url_is_refused() -> None:
    with pytest.raises(ValueError):
        Upstreams((), Failover.IN_ORDER)


def test_moving_to_an_untried_url_waits_nothing_and_each_url_gets_an_attempt() -> None:
    """max_attempts 1 with three URLs: three attempts; the policy's wait only between rounds."""
    slept: list[float] = []

    async def sleep(seconds: float) -> None:
        slept.append(seconds)

    policy = RetryPolicy(max_attempts=1, backoff_initial=1.0, backoff_max=1.0, max_delay=60)
    retrier = Retrier(policy, attempt_deadline=5, sleep=sleep, urls=3)
    tried: list[int] = []

    async def call(limit: object) -> str:
        tried.append(len(tried))
        if len(tried) < 3:
            raise UpstreamUnavailable("refused", request_sent=False)
        return "ok"

    result, attempts = asyncio.run(retrier.run(call, idempotent=False))
    assert (result, attempts, tried) == ("ok", 3, [0, 1, 2])
    assert slept == [0.0, 0.0]
