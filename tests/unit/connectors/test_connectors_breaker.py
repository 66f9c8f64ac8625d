"""The circuit breaker's state machine on a fake clock."""

from __future__ import annotations

import pytest

from connectors.breaker import Breaker, CircuitOpen, State
from connectors.errors import ProviderRejected, UpstreamTimeout, UpstreamUnavailable
from registry.connector_settings import BreakerPolicy


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def breaker(clock: Clock, **policy: object) -> Breaker:
    settings = {"failures": 3, "window": 10.0, "cool_down": 5.0, **policy}
    return Breaker(BreakerPolicy.model_validate(settings), clock=clock)


def state(b: Breaker) -> State:
    return b.state  # a call: mypy does not narrow it from one assert to the next


def fail(b: Breaker, probe: bool = False) -> None:
    b.failed(UpstreamUnavailable("down", request_sent=False), probe)


def test_it_opens_after_n_transient_failures_within_the_window() -> None:
    clock = Clock()
    b = breaker(clock)
    for _ in range(2):
        assert b.admit() is False
        fail(b)
    assert state(b) is State.CLOSED
    fail(b)
    assert state(b) is State.OPEN and b.opened == 1
    clock.now += 2
    with pytest.raises(CircuitOpen) as refused:
        b.admit()
    assert refused.value.retry_after == pytest.approx(3.0)
    assert refused.value.request_sent is False


def test_failures_spread_wider_than_the_window_do_not_open_it() -> None:
    clock = Clock()
    b = breaker(clock)
    for _ in range(5):
        fail(b)
        clock.now += 6  # two failures never fall within 10 s of a third
    assert state(b) is State.CLOSED
    assert b.snapshot().recent_failures == 1  # at t+30: only the failure at t+24


def test_answers_of_the_provider_count_as_signs_of_life() -> None:
    clock = Clock()
    b = breaker(clock)
    for _ in range(10):
        b.failed(ProviderRejected("404", provider_status=404))
    assert state(b) is State.CLOSED


def test_half_open_lets_one_probe_through_and_closes_on_success() -> None:
    clock = Clock()
    b = breaker(clock)
    for _ in range(3):
        fail(b)
    clock.now += 5
    assert b.admit() is True  # the probe
    assert state(b) is State.HALF_OPEN
    with pytest.raises(CircuitOpen):
        b.admit()  # the others wait for the probe's outcome
    b.succeeded(probe=True)
    assert state(b) is State.CLOSED
    assert b.admit() is False
    fail(b)
    fail(b)
    assert state(b) is State.CLOSED  # the count started afresh


def test_a_failed_probe_opens_it_for_a_new_cool_down() -> None:
    clock = Clock()
    b = breaker(clock)
    for _ in range(3):
        fail(b)
    clock.now += 5
    assert b.admit() is True
    b.failed(UpstreamTimeout("slow"), probe=True)
    assert state(b) is State.OPEN and b.opened == 2
    clock.now += 4.5
    with pytest.raises(CircuitOpen):
        b.admit()
    clock.now += 0.5
    assert b.admit() is True


def test_an_abandoned_probe_lets_the_next_call_probe() -> None:
    clock = Clock()
    b = breaker(clock)
    for _ in range(3):
        fail(b)
    clock.now += 5
    assert b.admit() is True
    b.abandoned(probe=True)
    assert b.admit() is True


def test_a_disabled_breaker_never_opens() -> None:
    clock = Clock()
    b = breaker(clock, enabled=False)
    for _ in range(10):
        assert b.admit() is False
        fail(b)
    assert state(b) is State.CLOSED
