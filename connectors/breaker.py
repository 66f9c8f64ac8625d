"""A circuit breaker per connector, in each hub process: a provider that keeps failing is left
alone for a while instead of being sent every consumer's call.

    closed     calls go through; transient failures are counted over a sliding window
               -> open after `failures` of them within `window` seconds
    open       calls are refused at once (CircuitOpen, 503 with Retry-After), nothing is sent
               -> half-open when `cool_down` seconds have passed
    half-open  one call goes through as a probe, the others are refused as while open
               -> closed when the probe succeeds, open again (a new cool-down) when it fails

A call counts as a failure when it ends in a Transient error (connection refused, timeouts,
502/503/504, 429); any answer of the provider, a 4xx included, shows that it is up and counts as
a success. No maintained asyncio breaker is in the lock (purgatory, aiobreaker), so this is a
small state machine with a clock argument; it holds no lock because it runs on one event loop.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum

from connectors.errors import ConnectorError, Transient, UpstreamOverloaded
from registry.connector_settings import BreakerPolicy


class State(StrEnum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


class CircuitOpen(UpstreamOverloaded):
    """The breaker refused the call: the provider failed too often lately; nothing was sent."""

    def __init__(self, detail: str, *, retry_after: float) -> None:
        super().__init__(detail, retry_after=retry_after, request_sent=False)
        self.attempts = 0


@dataclass(frozen=True, slots=True)
class Snapshot:
    """What the admin API shows of a breaker."""

    state: State
    since: float  # on the breaker's clock
    recent_failures: int
    opened: int  # how many times it opened in this process
    retry_after: float | None  # while open: seconds until a probe may go


class Breaker:
    def __init__(
        self, policy: BreakerPolicy, *, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.policy = policy
        self._clock = clock
        self._state = State.CLOSED
        self._since = clock()
        self._failures: deque[float] = deque()
        self._probing = False
        self.opened = 0

    @property
    def state(self) -> State:
        return self._state

    def admit(self, label: str = "the provider") -> bool:
        """Let a call through, or raise CircuitOpen. True when the call is the half-open probe
        (its outcome must then be reported through `succeeded` or `failed`, always)."""
        if not self.policy.enabled or self._state is State.CLOSED:
            return False
        now = self._clock()
        if self._state is State.OPEN and now - self._since >= self.policy.cool_down:
            self._move(State.HALF_OPEN, now)
        if self._state is State.HALF_OPEN and not self._probing:
            self._probing = True
            return True
        raise CircuitOpen(
            f"{label} failed {self.policy.failures} times within {self.policy.window:g} s: "
            "the hub stopped calling it for a while (circuit open)",
            retry_after=self._retry_after(now),
        )

    def succeeded(self, probe: bool = False) -> None:
        if probe or self._state is State.HALF_OPEN:
            self._probing = False
            self._failures.clear()
            self._move(State.CLOSED, self._clock())

    def failed(self, error: ConnectorError, probe: bool = False) -> None:
        """Count `error` if it is transient (anything else shows the provider answering)."""
        if not isinstance(error, Transient) or isinstance(error, CircuitOpen):
            self.succeeded(probe)
            return
        if not self.policy.enabled:
            return
        now = self._clock()
        if probe or self._state is State.HALF_OPEN:
            self._probing = False
            self._open(now)
            return
        if self._state is not State.CLOSED:
            return
        self._failures.append(now)
        while self._failures and now - self._failures[0] > self.policy.window:
            self._failures.popleft()
        if len(self._failures) >= self.policy.failures:
            self._open(now)

    def abandoned(self, probe: bool) -> None:
        """The probe was cancelled before it had an outcome: let the next call probe."""
        if probe:
            self._probing = False

    def snapshot(self) -> Snapshot:
        now = self._clock()
        open_ = self._state is State.OPEN
        return Snapshot(
            state=self._state,
            since=self._since,
            recent_failures=sum(1 for t in self._failures if now - t <= self.policy.window),
            opened=self.opened,
            retry_after=self._retry_after(now) if open_ else None,
        )

    def _open(self, now: float) -> None:
        self._failures.clear()
        self.opened += 1
        self._move(State.OPEN, now)

    def _move(self, state: State, now: float) -> None:
        if state is not self._state:
            self._state, self._since = state, now

    def _retry_after(self, now: float) -> float:
        if self._state is State.HALF_OPEN:  # a probe is out: its answer comes within a call
            return 1.0
        return max(self.policy.cool_down - (now - self._since), 0.0)
