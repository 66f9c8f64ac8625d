"""The retry policy of a connector, declared once and keyed on the Transient marker.

A Transient failure is retried when the route is idempotent, or when the request certainly never
reached the provider (`request_sent` is False: connection refused, connect timeout, token endpoint
down). The wait is exponential with jitter, or the provider's Retry-After when it gave one, capped
by `max_delay`; the policy gives up after `max_attempts`, or rather than sleep past `max_delay`
since the first attempt. The number of attempts made is recorded on the result and on the error.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception,
    stop_after_attempt,
    stop_before_delay,
    wait_exponential_jitter,
)
from tenacity.wait import wait_base

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


class Retrier:
    """Runs one provider call under a connector's RetryPolicy."""

    def __init__(
        self,
        policy: RetryPolicy,
        *,
        sleep: Callable[[float], Awaitable[None]] | None = None,
    ) -> None:
        self.policy = policy
        self._wait = wait_retry_after(
            wait_exponential_jitter(
                multiplier=policy.backoff_initial,  # tenacity's name for the first wait
                max=policy.backoff_max,
                jitter=policy.backoff_initial,
            ),
            cap=policy.max_delay,
        )
        self._stop = stop_after_attempt(policy.max_attempts) | stop_before_delay(policy.max_delay)
        self._retry_idempotent = retry_if_exception(_retry_any_transient)
        self._retry_unsent = retry_if_exception(_retry_unsent)
        self._sleep = sleep

    def _retrying(self, idempotent: bool) -> AsyncRetrying:
        # A fresh controller per call: tenacity keeps per-call state on the object.
        extra = {"sleep": self._sleep} if self._sleep is not None else {}
        return AsyncRetrying(
            stop=self._stop,
            wait=self._wait,
            retry=self._retry_idempotent if idempotent else self._retry_unsent,
            reraise=True,
            **extra,  # type: ignore[arg-type]
        )

    def _may_retry(self, exc: ConnectorError, idempotent: bool) -> bool:
        return _retry_any_transient(exc) if idempotent else _retry_unsent(exc)

    async def run(self, call: Callable[[], Awaitable[T]], *, idempotent: bool) -> tuple[T, int]:
        """The call's result and the number of attempts made; errors carry `.attempts`.

        The first attempt runs without tenacity (the hot path: most calls succeed at once); a
        retryable failure hands over to tenacity, which replays that failure as its attempt 1,
        so waits, stops and the overall deadline are exactly the policy's.
        """
        started = time.monotonic()
        try:
            return await call(), 1
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
            return await call()

        async for attempt in self._retrying(idempotent):
            number = attempt.retry_state.attempt_number
            if number == 1:
                attempt.retry_state.start_time = started  # the deadline counts from the first try
            with attempt:
                try:
                    return await again(), number
                except ConnectorError as exc:
                    exc.attempts = number
                    raise
        raise AssertionError("unreachable: tenacity reraises the last error")
