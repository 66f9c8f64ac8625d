"""Deadlines of a provider call: each attempt whole, and the whole exchange with its retries.

`connect_timeout` and `read_timeout` bound single socket operations (a read timeout is the
silence allowed between two reads, so a provider that drips its answer never trips it). What a
consumer waits for is bounded by two deadlines:

    attempt deadline   one attempt whole: waiting for a pooled connection, fetching a token
                       (OAuth2), sending the request, reading the whole answer
                       (a connector's `attempt_deadline`; default connect + read timeout)
    exchange deadline  every attempt and the waits between them (the retry policy's `max_delay`)

Each attempt runs under one asyncio timer set to the sooner of its own deadline and what is left
of the exchange's, so the error names the deadline that passed. The retry policy never starts an
attempt that cannot finish before the exchange deadline (connectors/retry.py).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Literal

from connectors.errors import DeadlinePassed

Deadline = Literal["attempt", "exchange"]


@dataclass(frozen=True, slots=True)
class Limit:
    """How long one attempt may run, and which deadline sets that (named when it passes)."""

    seconds: float
    deadline: Deadline
    value: float  # the deadline as configured


@dataclass(frozen=True, slots=True)
class Deadlines:
    attempt: float
    exchange: float

    def limit(self, elapsed: float) -> Limit:
        """The limit of an attempt starting `elapsed` seconds into the exchange."""
        remaining = self.exchange - elapsed
        if self.attempt <= remaining:
            return Limit(self.attempt, "attempt", self.attempt)
        return Limit(max(remaining, 0.0), "exchange", self.exchange)


@dataclass(slots=True)
class Progress:
    """How far one attempt got, so that a passed deadline says what the hub was waiting for."""

    waiting_for: str = "the provider"  # as messages name it: never a host name
    sent: bool = False  # the request was handed to the HTTP client: the provider may have it
    answering: bool = False  # the head of the answer has arrived


def deadline_passed(limit: Limit, progress: Progress) -> DeadlinePassed:
    late = "did not finish its answer" if progress.answering else "did not answer"
    return DeadlinePassed(
        f"{progress.waiting_for} {late} within the {limit.deadline} deadline of {limit.value:g} s",
        deadline=limit.deadline,
        seconds=limit.value,
        request_sent=progress.sent,
    )


@contextlib.asynccontextmanager
async def within(limit: Limit, progress: Progress) -> AsyncIterator[None]:
    """Run the block under `limit`: when it passes, the block is cancelled (a connection cut
    mid-answer is closed, see connectors/http.py) and DeadlinePassed is raised.

    asyncio.timeout, not wait_for: on Python 3.11 wait_for can swallow a cancellation that
    arrives as the awaited call completes (see messaging/relay.py).
    """
    try:
        async with asyncio.timeout(limit.seconds) as timer:
            yield
    except TimeoutError:
        if not timer.expired():
            raise
        raise deadline_passed(limit, progress) from None
