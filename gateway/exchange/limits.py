"""Protecting providers: a grant's rate limit and quota, and a connector's calls at once.

Rate limit and quota (registry/limits.py says what "exact" means): decided after the grant
check by one atomic statement each on the shared database; only a grant that has a limit pays
the round trip. Over either: 429 with `Retry-After` and the IETF httpapi draft's headers
(draft-ietf-httpapi-ratelimit-headers: `RateLimit-Policy: "grant";q=50;w=10` and
`RateLimit: "grant";r=0;t=7`, the quota as a second item `"quota"`); within them, the same
headers say what is left.

Connector concurrency is per hub process: with W workers (or replicas) the provider sees at most
W x max_in_flight calls at once. A call finding every slot taken waits, if fewer than
max_waiting wait already, at most max_wait_seconds; otherwise 503 with `Retry-After`.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from dataclasses import dataclass

from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import SQLAlchemyError

from connectors.base import Connector, UpstreamRequest, UpstreamResponse
from gateway.exchange.calls import Call
from gateway.problems import Problem
from registry.limits import Quota, QuotaDecision, RateDecision, RateLimit, take_quota, take_rate
from registry.models import Connector as ConnectorRow
from registry.types import utcnow

log = logging.getLogger(__name__)

Headers = list[tuple[bytes, bytes]]

QUOTA_WINDOW = {"day": 86_400, "month": 2_592_000}  # the policy's w (a month: 30 days)


@dataclass(frozen=True, slots=True)
class Verdict:
    """What the limits decided for a call that may go on: the headers to answer with."""

    headers: Headers


def _policies(rate: RateLimit | None, quota: Quota | None) -> str:
    items = []
    if rate is not None:
        items.append(f'"grant";q={rate.requests};w={rate.seconds}')
    if quota is not None:
        items.append(f'"quota";q={quota.requests};w={QUOTA_WINDOW[quota.period]}')
    return ", ".join(items)


def _state(rate: RateDecision | None, quota: QuotaDecision | None) -> str:
    items = []
    if rate is not None:
        items.append(f'"grant";r={rate.remaining};t={rate.reset}')
    if quota is not None:
        items.append(f'"quota";r={quota.remaining};t={quota.reset}')
    return ", ".join(items)


def _decide(
    engine: Engine, grant_id: int, rate: RateLimit | None, quota: Quota | None
) -> tuple[RateDecision | None, QuotaDecision | None]:
    """Each statement its own transaction: a call the rate limit refused never counts against
    the quota."""
    now = utcnow()
    with engine.connect() as connection:
        sqlite = connection.dialect.name == "sqlite"
        if sqlite:
            # A counter's commit needs no fsync of its own (WAL, synchronous=NORMAL: it survives
            # a crashed process, and the audit writer's next commit makes it durable): the
            # engine's FULL would cost one fsync per limited call. Restored before the
            # connection goes back to the pool.
            connection.exec_driver_sql("PRAGMA synchronous=NORMAL")
            connection.commit()
        try:
            decided = None
            if rate is not None:
                _no_flush_wait(connection, sqlite)
                now_us = math.floor(time.time() * 1_000_000)
                decided = take_rate(connection, grant_id=grant_id, limit=rate, now_us=now_us)
                connection.commit()
                if not decided.allowed:
                    return decided, None
            if quota is None:
                return decided, None
            _no_flush_wait(connection, sqlite)
            counted = take_quota(connection, grant_id=grant_id, quota=quota, now=now)
            connection.commit()
            return decided, counted
        finally:
            if sqlite:
                connection.rollback()
                connection.exec_driver_sql("PRAGMA synchronous=FULL")
                connection.commit()


def _no_flush_wait(connection: Connection, sqlite: bool) -> None:
    """PostgreSQL: this transaction's commit does not wait for its WAL to reach the disk.

    Every decision on a grant takes its row's lock until commit, so a commit that waits for an
    fsync would cap a grant at one decision per fsync (about 130 a second on the bench's VM).
    Without the wait the decision is as atomic and as consistent; only a crash of the database
    server itself may forget the last fraction of a second of counts (wal_writer_delay x 3).
    """
    if not sqlite:
        connection.exec_driver_sql("SET LOCAL synchronous_commit TO OFF")


async def admit(
    engine: Engine, *, grant_id: int, rate: RateLimit | None, quota: Quota | None, call: Call
) -> Verdict:
    """Let the call on (with its headers), or raise a 429 problem."""
    if rate is None and quota is None:
        return Verdict([])
    try:
        decided_rate, decided_quota = await asyncio.to_thread(
            _decide, engine, grant_id, rate, quota
        )
    except SQLAlchemyError as exc:  # fail closed: a limit that cannot be checked is not lifted
        log.error("rate limit of grant %s could not be decided: %s", grant_id, type(exc).__name__)
        raise Problem(
            503,
            "limits-unavailable",
            "The call's limits could not be checked",
            "the hub could not reach the counters of this grant's rate limit or quota; retry",
            headers={"retry-after": "1"},
        ) from None
    # The decision, in the call's record: auditors (and the proof test) can replay it.
    decisions: dict[str, object] = {}
    if decided_rate is not None:
        decisions["rate"] = {
            "allowed": decided_rate.allowed,
            "at": decided_rate.at,
            "tat": decided_rate.tat,
        }
    if decided_quota is not None:
        decisions["quota"] = {"allowed": decided_quota.allowed, "period": decided_quota.period}
    call.details = {"limits": decisions}
    policy = _policies(rate, quota if decided_quota is not None else None)
    state = _state(decided_rate, decided_quota)
    headers = {"ratelimit-policy": policy, "ratelimit": state}
    target = f"{call.service}/{call.version}"
    if decided_rate is not None and not decided_rate.allowed:
        assert rate is not None
        headers["retry-after"] = str(decided_rate.retry_after)
        raise Problem(
            429,
            "rate-limited",
            "Too many requests",
            f"the grant of {target} to {call.consumer} allows {rate.requests} calls per "
            f"{rate.seconds} s (burst {rate.burst_or_default()}); retry in "
            f"{decided_rate.retry_after} s",
            headers=headers,
            extra={"grant_id": grant_id, "retry_after": decided_rate.retry_after},
        )
    if decided_quota is not None and not decided_quota.allowed:
        assert quota is not None
        headers["retry-after"] = str(decided_quota.reset)
        raise Problem(
            429,
            "quota-exhausted",
            "Quota used up",
            f"the grant of {target} to {call.consumer} allows {quota.requests} calls a "
            f"{quota.period} (Asia/Ho_Chi_Minh); the next {quota.period} starts in "
            f"{decided_quota.reset} s",
            headers=headers,
            extra={"grant_id": grant_id, "retry_after": decided_quota.reset},
        )
    return Verdict([(k.encode(), v.encode()) for k, v in headers.items()])


# ---------------------------------------------------------------- connector concurrency


class LimitedConnector:
    """A connector that lets at most `max_in_flight` calls through at once (in this process)."""

    def __init__(
        self, inner: Connector, *, max_in_flight: int, max_waiting: int, max_wait_seconds: float
    ) -> None:
        self.name = inner.name
        self.inner = inner
        self.max_in_flight = max_in_flight
        self.max_waiting = max_waiting
        self.max_wait_seconds = max_wait_seconds
        self._slots = asyncio.Semaphore(max_in_flight)
        self._waiting = 0

    def _busy(self, why: str) -> Problem:
        return Problem(
            503,
            "provider-busy",
            "The provider is at its limit of calls at once",
            f"{self.name} takes {self.max_in_flight} calls at once: {why}; retry later",
            headers={"retry-after": str(max(1, math.ceil(self.max_wait_seconds)))},
        )

    async def call(self, request: UpstreamRequest) -> UpstreamResponse:
        if self._slots.locked():
            if self._waiting >= self.max_waiting:
                raise self._busy(f"{self.max_waiting} calls wait already")
            self._waiting += 1
            try:
                async with asyncio.timeout(self.max_wait_seconds):
                    await self._slots.acquire()
            except TimeoutError:
                raise self._busy(f"no slot freed within {self.max_wait_seconds:g} s") from None
            finally:
                self._waiting -= 1
        else:
            await self._slots.acquire()  # free: returns at once
        try:
            return await self.inner.call(request)
        finally:
            self._slots.release()

    async def aclose(self) -> None:
        await self.inner.aclose()


def limited(connector: Connector, row: ConnectorRow) -> Connector:
    """`connector`, held to the row's max_in_flight when it has one."""
    if row.max_in_flight is None:
        return connector
    return LimitedConnector(
        connector,
        max_in_flight=row.max_in_flight,
        max_waiting=row.max_waiting,
        max_wait_seconds=row.max_wait_seconds,
    )


def unwrapped(connector: Connector) -> Connector:
    """The connector `limited` wrapped, or `connector` itself."""
    return connector.inner if isinstance(connector, LimitedConnector) else connector
