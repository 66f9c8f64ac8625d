"""Deadlines of a provider call: each attempt whole, and the whole exchange with its retries.

`connect_timeout` and `read_timeout` bound single socket operations (a read timeout is the
silence allowed between two reads, so a provider that drips its answer never trips it). What a
consumer waits for is bounded by two deadlines:

    attempt deadline   one attempt whole: waiting for a pooled connection, fetching a token
                       (OAuth2), sending the request, reading the whole answer
                       (a connector's `attempt_deadline`; default connect + read timeout)
    exchange deadline  every attempt and the waits between them (the retry policy's `max_delay`)

Each attempt runs under one asyncio timer set to the sooner of its own deadline and what is left
of the exchange's, so the error names the deadline that passed. The retry policy starts no attempt
whose wait would end past the exchange deadline, nor one that would have less time left than the
last attempt took (connectors/retry.py); a retry may still be cut at the exchange deadline.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from types import TracebackType

from connectors.errors import Deadline, DeadlinePassed


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


class within:
    """Run the block under `limit`: when it passes, the block is cancelled (a connection cut
    mid-answer is closed, see connectors/http.py) and DeadlinePassed is raised.

    asyncio.timeout, not wait_for: on Python 3.11 wait_for can swallow a cancellation that
    arrives as the awaited call completes (see messaging/relay.py). A class rather than a
    generator-based context manager: it runs once per provider call and per push.
    """

    __slots__ = ("limit", "progress", "timer")

    def __init__(self, limit: Limit, progress: Progress) -> None:
        self.limit = limit
        self.progress = progress
        self.timer = asyncio.timeout(limit.seconds)

    async def __aenter__(self) -> None:
        await self.timer.__aenter__()

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        try:
            await self.timer.__aexit__(kind, error, trace)
        except TimeoutError:  # the timer cancelled the block
            raise deadline_passed(self.limit, self.progress) from None
        if kind is TimeoutError and self.timer.expired():
            raise deadline_passed(self.limit, self.progress) from None
