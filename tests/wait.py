"""The one way tests wait: for an observable state, with a deadline, saying what they waited for.

A test never sleeps and then asserts; it waits until what it expects can be seen (a record, a
position, a delivered message) and fails with the last value seen when the deadline passes.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Literal, TypeAlias, TypeVar

T = TypeVar("T")
# What a probe answers while the state is not there yet; never what a wait returns.
NotYet: TypeAlias = Literal[False] | None

DEFAULT_TIMEOUT = 30.0


def wait_until(
    probe: Callable[[], T | NotYet],
    *,
    timeout: float = DEFAULT_TIMEOUT,
    interval: float = 0.05,
    what: str = "the condition",
) -> T:
    """Call `probe` until it returns something truthy, and return that; fail at the deadline."""
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"waited {timeout:g} s for {what}; last seen: {value!r}")
        time.sleep(interval)


async def wait_until_async(
    probe: Callable[[], Awaitable[T | NotYet]],
    *,
    timeout: float = DEFAULT_TIMEOUT,  # noqa: ASYNC109 - the failure names the last value seen
    interval: float = 0.05,
    what: str = "the condition",
) -> T:
    """`wait_until` for a coroutine probe, inside an event loop."""
    deadline = time.monotonic() + timeout
    while True:
        value = await probe()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"waited {timeout:g} s for {what}; last seen: {value!r}")
        await asyncio.sleep(interval)
