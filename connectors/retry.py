"""The retry policy of a connector, declared once and keyed on the Transient marker.

A Transient failure is retried when the route is idempotent, or when the request certainly never
reached the provider (`request_sent` is False: connection refused, connect timeout, token endpoint
down). The wait is exponential with jitter, or the provider's Retry-After when it gave one, capped
by `max_delay`. `max_delay` is the exchange deadline (connectors/deadline.py): every attempt runs
under the sooner of its own deadline and what is left of the exchange's, and the policy gives up
after `max_attempts`, or rather than start an attempt that cannot finish before the exchange
deadline: one whose wait would end past it, or that would have less time than the last attempt
took (after an attempt cut by its deadline, a retry needs a whole attempt deadline; with less it
would only be cut shorter, at the cost of a provider that is already slow). The number of
attempts made is recorded on the result and on the error.

With several base URLs (connectors/failover.py) the attempts walk them: a connector makes at
least one attempt per URL, and the retry that moves to a URL not yet tried this round starts at
once; the wait applies only when the walk starts over on the first URL.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception,
    stop_after_attempt,
    wait_exponential_jitter,
)
from tenacity.stop import stop_base
from tenacity.wait import wait_base

from connectors.deadline import Deadlines, Limit
from connectors.errors import ConnectorError, Transient
from registry.models import RetryPolicy

T = TypeVar("T")


def _retry_any_transient(exc: BaseException) -> bool:
    return isinstance(exc, Transient)


def _retry_unsent(exc: BaseException) -> bool:
    return isinstance(exc, Transient) and not exc.request_sent


class wait_retry_after(wait_base):  # named like tenacity's own strategies
    """The provider's Retry-After when it sent one (capped), else the fallback strategy."""

    def __init__(self, fallback: wait_base, cap: float) -> None:
        self.fallback = fallback
        self.cap = cap

    def __call__(self, retry_state: RetryCallState) -> float:
        outcome = retry_state.outcome
        exc = outcome.exception() if outcome is not None and outcome.failed else None
        if isinstance(exc, ConnectorError) and exc.retry_after is not None:
            return min(exc.retry_after, self.cap)
        return self.fallback(retry_state)


@dataclass(slots=True)
class wait_failover(wait_base):  # named like tenacity's own strategies
    """No wait before an attempt on the next, untried URL; the policy's wait before a round."""

    def __init__(self, inner: wait_base, urls: int) -> None:
        self.inner = inner
        self.urls = urls

    def __call__(self, retry_state: RetryCallState) -> float:
        # attempt_number is the attempt that just failed: the next one is that index.
        if retry_state.attempt_number % self.urls != 0:
            return 0.0
        return self.inner(retry_state)


@dataclass(slots=True)
class _Clock:
    """One exchange's time: when it started, and how long its last attempt took."""

    now: Callable[[], float]
    started: float
    last_took: float = 0.0

    def elapsed(self) -> float:
        return self.now() - self.started


class stop_before_deadline(stop_base):  # named like tenacity's own strategies
    """Stop rather than start an attempt whose wait ends past the exchange deadline, or that
    would have less time left than the last attempt took."""

    def __init__(self, clock: _Clock, deadline: float) -> None:
        self.clock = clock
        self.deadline = deadline

    def __call__(self, retry_state: RetryCallState) -> bool:
        starts_at = self.clock.elapsed() + (retry_state.upcoming_sleep or 0.0)
        return starts_at + self.clock.last_took >= self.deadline


class Retrier:
    """Runs one provider call under a connector's RetryPolicy and deadlines."""

    def __init__(
        self,
        policy: RetryPolicy,
        *,
        attempt_deadline: float,
        sleep: Callable[[float], Awaitable[None]] | None = None,
        clock: Callable[[], float] = time.monotonic,
        urls: int = 1,
    ) -> None:
        if urls > policy.max_attempts:  # one attempt per URL at least
            policy = policy.model_copy(update={"max_attempts": urls})
        self.policy = policy
        self.deadlines = Deadlines(attempt=attempt_deadline, exchange=policy.max_delay)
        self._first = self.deadlines.limit(0.0)  # every call's first attempt: known once
        self._clock = clock
        wait: wait_base = wait_retry_after(
            wait_exponential_jitter(
                multiplier=policy.backoff_initial,  # tenacity's name for the first wait
                max=policy.backoff_max,
                jitter=policy.backoff_initial,
            ),
            cap=policy.max_delay,
        )
        self._wait = wait_failover(wait, urls) if urls > 1 else wait
        self._stop_after = stop_after_attempt(policy.max_attempts)
        self._retry_idempotent = retry_if_exception(_retry_any_transient)
        self._retry_unsent = retry_if_exception(_retry_unsent)
        self._sleep = sleep

    def _retrying(self, idempotent: bool, clock: _Clock) -> AsyncRetrying:
        # A fresh controller per call: tenacity keeps per-call state on the object.
        extra = {"sleep": self._sleep} if self._sleep is not None else {}
        return AsyncRetrying(
            stop=self._stop_after | stop_before_deadline(clock, self.deadlines.exchange),
            wait=self._wait,
            retry=self._retry_idempotent if idempotent else self._retry_unsent,
            reraise=True,
            **extra,  # type: ignore[arg-type]
        )

    def _may_retry(self, exc: ConnectorError, idempotent: bool) -> bool:
        return _retry_any_transient(exc) if idempotent else _retry_unsent(exc)

    async def run(
        self, call: Callable[[Limit], Awaitable[T]], *, idempotent: bool
    ) -> tuple[T, int]:
        """The call's result and the number of attempts made; errors carry `.attempts`.

        `call` gets the Limit of its attempt and must keep to it (HttpConnector runs the attempt
        under `deadline.within`). The first attempt runs without tenacity (the hot path: most
        calls succeed at once); a retryable failure hands over to tenacity, which replays that
        failure as its attempt 1, so waits and stops are exactly the policy's.
        """
        clock = _Clock(self._clock, self._clock())

        async def one_attempt(first: bool = False) -> T:
            started = clock.elapsed()
            try:
                return await call(self._first if first else self.deadlines.limit(started))
            finally:
                clock.last_took = clock.elapsed() - started

        try:
            return await one_attempt(first=True), 1
        except ConnectorError as exc:
            exc.attempts = 1
            if self.policy.max_attempts == 1 or not self._may_retry(exc, idempotent):
                raise
            first: ConnectorError = exc

        replayed = False

        async def again() -> T:
            nonlocal replayed
            if not replayed:
                replayed = True
                raise first
            return await one_attempt()

        async for attempt in self._retrying(idempotent, clock):
            number = attempt.retry_state.attempt_number
            with attempt:
                try:
                    return await again(), number
                except ConnectorError as exc:
                    exc.attempts = number
                    raise
        raise AssertionError("unreachable: tenacity reraises the last error")
