"""The retry policy, driven by fake calls and a recorded sleep (no network, no real waiting)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest

from connectors.errors import (
    ConnectorError,
    ProviderRejected,
    UpstreamOverloaded,
    UpstreamTimeout,
    UpstreamUnavailable,
)
from connectors.retry import Retrier
from registry.models import RetryPolicy


def run(
    errors: list[ConnectorError],
    *,
    idempotent: bool,
    policy: RetryPolicy | None = None,
) -> tuple[int, list[float], str | ConnectorError]:
    """Fail with each error in turn, then succeed; return calls, sleeps and outcome."""
    sleeps: list[float] = []
    calls = 0

    async def sleep(seconds: float) -> None:
        sleeps.append(seconds)

    async def call() -> str:
        nonlocal calls
        calls += 1
        if errors:
            raise errors.pop(0)
        return "ok"

    retrier = Retrier(policy or RetryPolicy(backoff_initial=0.1, backoff_max=1), sleep=sleep)

    async def main() -> str | ConnectorError:
        try:
            result, attempts = await retrier.run(call, idempotent=idempotent)
        except ConnectorError as exc:
            return exc
        assert attempts == calls
        return result

    outcome = asyncio.run(main())
    return calls, sleeps, outcome


def overloaded(retry_after: float | None = None) -> UpstreamOverloaded:
    return UpstreamOverloaded("busy", provider_status=503, retry_after=retry_after)


def test_idempotent_transient_is_retried_with_growing_backoff() -> None:
    calls, sleeps, outcome = run([overloaded(), UpstreamTimeout("slow")], idempotent=True)
    assert (calls, outcome) == (3, "ok")
    assert 0.1 <= sleeps[0] <= 0.2
    assert 0.2 <= sleeps[1] <= 0.3


def test_gives_up_after_max_attempts_and_says_how_many() -> None:
    calls, _, outcome = run([overloaded() for _ in range(5)], idempotent=True)
    assert calls == 3
    assert isinstance(outcome, UpstreamOverloaded)
    assert outcome.attempts == 3


def test_not_idempotent_is_not_retried() -> None:
    calls, _, outcome = run([overloaded()], idempotent=False)
    assert calls == 1
    assert isinstance(outcome, UpstreamOverloaded)
    assert outcome.attempts == 1


def test_unsent_request_is_retried_even_when_not_idempotent() -> None:
    refused = UpstreamUnavailable("refused", request_sent=False)
    calls, _, outcome = run([refused], idempotent=False)
    assert (calls, outcome) == (2, "ok")


@pytest.mark.parametrize("idempotent", [True, False])
def test_terminal_is_never_retried(idempotent: bool) -> None:
    calls, _, outcome = run([ProviderRejected("no", provider_status=400)], idempotent=idempotent)
    assert calls == 1
    assert isinstance(outcome, ProviderRejected)


def test_retry_after_is_the_wait() -> None:
    calls, sleeps, outcome = run([overloaded(retry_after=3)], idempotent=True)
    assert (calls, sleeps, outcome) == (2, [3], "ok")


def test_retry_after_beyond_the_budget_stops_at_once() -> None:
    calls, sleeps, outcome = run([overloaded(retry_after=60)], idempotent=True)
    assert (calls, sleeps) == (1, [])
    assert isinstance(outcome, UpstreamOverloaded)
    assert outcome.retry_after == 60


def test_single_attempt_policy() -> None:
    calls, _, outcome = run([overloaded()], idempotent=True, policy=RetryPolicy(max_attempts=1))
    assert calls == 1
    assert isinstance(outcome, ConnectorError)
    assert outcome.attempts == 1


def test_other_exceptions_pass_through_untouched() -> None:
    async def boom() -> None:
        raise KeyError("bug")

    retrier = Retrier(RetryPolicy())
    bug: Callable[[], object] = lambda: asyncio.run(retrier.run(boom, idempotent=True))  # noqa: E731
    with pytest.raises(KeyError):
        bug()
