"""The retry policy, driven by fake calls on a fake clock (no network, no real waiting)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field

import pytest

from connectors.deadline import Limit
from connectors.errors import (
    ConnectorError,
    Deadline,
    DeadlinePassed,
    ProviderRejected,
    UpstreamOverloaded,
    UpstreamTimeout,
    UpstreamUnavailable,
)
from connectors.retry import Retrier
from registry.models import RetryPolicy


@dataclass
class Run:
    calls: int = 0
    sleeps: list[float] = field(default_factory=list)
    limits: list[Limit] = field(default_factory=list)
    outcome: str | ConnectorError = ""


def run(
    errors: list[ConnectorError],
    *,
    idempotent: bool,
    policy: RetryPolicy | None = None,
    attempt_deadline: float | None = None,
    took: float = 0.0,
) -> Run:
    """Fail with each error in turn, then succeed. Each call takes `took` seconds of the fake
    clock, or its whole limit when it fails with DeadlinePassed; sleeping moves the clock too."""
    seen = Run()
    now = 0.0

    async def sleep(seconds: float) -> None:
        nonlocal now
        seen.sleeps.append(seconds)
        now += seconds

    async def call(limit: Limit) -> str:
        nonlocal now
        seen.calls += 1
        seen.limits.append(limit)
        if errors:
            error = errors.pop(0)
            now += limit.seconds if isinstance(error, DeadlinePassed) else took
            raise error
        now += took
        return "ok"

    policy = policy or RetryPolicy(backoff_initial=0.1, backoff_max=1)
    retrier = Retrier(
        policy,
        # None here: an attempt may take the whole exchange (the connector passes its default).
        attempt_deadline=attempt_deadline if attempt_deadline is not None else policy.max_delay,
        sleep=sleep,
        clock=lambda: now,
    )

    async def main() -> str | ConnectorError:
        try:
            result, attempts = await retrier.run(call, idempotent=idempotent)
        except ConnectorError as exc:
            return exc
        assert attempts == seen.calls
        return result

    seen.outcome = asyncio.run(main())
    return seen


def overloaded(retry_after: float | None = None) -> UpstreamOverloaded:
    return UpstreamOverloaded("busy", provider_status=503, retry_after=retry_after)


def test_idempotent_transient_is_retried_with_growing_backoff() -> None:
    seen = run([overloaded(), UpstreamTimeout("slow")], idempotent=True)
    assert (seen.calls, seen.outcome) == (3, "ok")
    assert 0.1 <= seen.sleeps[0] <= 0.2
    assert 0.2 <= seen.sleeps[1] <= 0.3


def test_gives_up_after_max_attempts_and_says_how_many() -> None:
    seen = run([overloaded() for _ in range(5)], idempotent=True)
    assert seen.calls == 3
    assert isinstance(seen.outcome, UpstreamOverloaded)
    assert seen.outcome.attempts == 3


def test_not_idempotent_is_not_retried() -> None:
    seen = run([overloaded()], idempotent=False)
    assert seen.calls == 1
    assert isinstance(seen.outcome, UpstreamOverloaded)
    assert seen.outcome.attempts == 1


def test_unsent_request_is_retried_even_when_not_idempotent() -> None:
    refused = UpstreamUnavailable("refused", request_sent=False)
    seen = run([refused], idempotent=False)
    assert (seen.calls, seen.outcome) == (2, "ok")


@pytest.mark.parametrize("idempotent", [True, False])
def test_terminal_is_never_retried(idempotent: bool) -> None:
    seen = run([ProviderRejected("no", provider_status=400)], idempotent=idempotent)
    assert seen.calls == 1
    assert isinstance(seen.outcome, ProviderRejected)


def test_retry_after_is_the_wait() -> None:
    seen = run([overloaded(retry_after=3)], idempotent=True)
    assert (seen.calls, seen.sleeps, seen.outcome) == (2, [3], "ok")


def test_retry_after_beyond_the_budget_stops_at_once() -> None:
    seen = run([overloaded(retry_after=60)], idempotent=True)
    assert (seen.calls, seen.sleeps) == (1, [])
    assert isinstance(seen.outcome, UpstreamOverloaded)
    assert seen.outcome.retry_after == 60


def test_single_attempt_policy() -> None:
    seen = run([overloaded()], idempotent=True, policy=RetryPolicy(max_attempts=1))
    assert seen.calls == 1
    assert isinstance(seen.outcome, ConnectorError)
    assert seen.outcome.attempts == 1


def test_other_exceptions_pass_through_untouched() -> None:
    async def boom(limit: Limit) -> None:
        raise KeyError("bug")

    policy = RetryPolicy()
    retrier = Retrier(policy, attempt_deadline=policy.max_delay)
    bug: Callable[[], object] = lambda: asyncio.run(retrier.run(boom, idempotent=True))  # noqa: E731
    with pytest.raises(KeyError):
        bug()


# ---------------------------------------------------------------- deadlines


def cut(deadline: Deadline = "attempt", seconds: float = 1.0) -> DeadlinePassed:
    return DeadlinePassed("too slow", deadline=deadline, seconds=seconds)


def test_each_attempt_gets_its_deadline_within_the_exchange() -> None:
    policy = RetryPolicy(max_attempts=5, backoff_initial=0, backoff_max=0, max_delay=10)
    seen = run([overloaded(), overloaded()], idempotent=True, policy=policy, attempt_deadline=4,
               took=3)  # fmt: skip
    assert seen.outcome == "ok"
    # 0-3 s, 3-6 s, then 6 s in: 4 s left, a whole attempt deadline still.
    assert [(lm.seconds, lm.deadline) for lm in seen.limits] == [
        (4, "attempt"), (4, "attempt"), (4, "attempt"),
    ]  # fmt: skip


def test_an_attempt_is_cut_to_what_is_left_of_the_exchange() -> None:
    policy = RetryPolicy(max_attempts=5, backoff_initial=0, backoff_max=0, max_delay=5)
    seen = run([overloaded()], idempotent=True, policy=policy, attempt_deadline=4, took=2)
    # 0-2 s, then 3 s are left: the second attempt may use those, and is told which deadline
    # limits it.
    assert seen.outcome == "ok"
    assert [(lm.seconds, lm.deadline, lm.value) for lm in seen.limits] == [
        (4, "attempt", 4), (3, "exchange", 5),
    ]  # fmt: skip


def test_a_retry_needs_as_long_as_the_last_attempt_took() -> None:
    policy = RetryPolicy(max_attempts=5, backoff_initial=0, backoff_max=0, max_delay=10)
    seen = run([overloaded() for _ in range(5)], idempotent=True, policy=policy,
               attempt_deadline=4, took=4)  # fmt: skip
    assert seen.calls == 2  # 0-4 s, 4-8 s; a third would have 2 s for what took 4
    assert isinstance(seen.outcome, UpstreamOverloaded)
    assert seen.outcome.attempts == 2


def test_an_attempt_deadline_beyond_the_exchange_is_the_exchange() -> None:
    seen = run([], idempotent=True, policy=RetryPolicy(max_delay=10), attempt_deadline=12)
    assert [(lm.seconds, lm.deadline, lm.value) for lm in seen.limits] == [(10, "exchange", 10)]


def test_after_an_attempt_ran_out_no_shorter_one_is_started() -> None:
    """A provider that used up a whole attempt is not asked again with less time than that."""
    policy = RetryPolicy(max_attempts=5, backoff_initial=0.01, backoff_max=0.01, max_delay=2.5)
    seen = run([cut() for _ in range(5)], idempotent=True, policy=policy, attempt_deadline=1)
    assert seen.calls == 2  # 0-1 s, 1-2 s; 0.5 s would be left for a third
    assert isinstance(seen.outcome, DeadlinePassed)
    assert seen.outcome.attempts == 2


def test_no_wait_runs_into_the_exchange_deadline() -> None:
    policy = RetryPolicy(max_attempts=5, backoff_initial=2, backoff_max=2, max_delay=5)
    seen = run([overloaded() for _ in range(5)], idempotent=True, policy=policy, took=1)
    # 0-1 s, wait ~2 s, 3-4 s; another wait of ~2 s would end past 5 s.
    assert seen.calls == 2
    assert isinstance(seen.outcome, UpstreamOverloaded)
    assert seen.outcome.attempts == 2


def test_a_deadline_passed_before_sending_is_retried_even_when_not_idempotent() -> None:
    unsent = DeadlinePassed("no token", deadline="attempt", seconds=1, request_sent=False)
    policy = RetryPolicy(backoff_initial=0, backoff_max=0, max_delay=10)
    assert run([unsent], idempotent=False, policy=policy, attempt_deadline=1).outcome == "ok"
    sent = cut()
    seen = run([sent], idempotent=False, policy=policy, attempt_deadline=1)
    assert (seen.calls, seen.outcome) == (1, sent)
