"""Rate limits and quotas of grants: their terms, and the counters every hub process shares.

A grant may carry `rate_limit: {requests: N, seconds: S, burst: B}` and
`quota: {requests: Q, period: day | month}`. Each decision is ONE atomic SQL statement on the
database all replicas use (PostgreSQL, or SQLite for the workers of one machine: SQLite
serialises its writers across processes), so no process holds state of its own and a decision
is never taken on a stale copy. The `limits` library on PyPI has no PostgreSQL storage (Redis,
Memcached, MongoDB, memory only), which is why this is written here.

Rate limit: GCRA (the generic cell rate algorithm, a leaky bucket kept as one timestamp). The
emission interval is T = S / N; the bucket holds B calls (burst, default N). The state per grant
is its theoretical arrival time `tat` and the latest decision time `at`, integers in
microseconds. A call at time `now` is allowed iff max(tat, now) + T - now <= B * T; an allowed
call moves tat to max(tat, now) + T, a refused one changes nothing but `at`.

What "exact" means here:
- Every decision is taken by the database, in one statement, on the shared row: the decisions
  of all workers and replicas are serialised on that row, so the allowed calls are exactly those
  one GCRA would allow seeing the same calls one after the other. No call is allowed that the
  shared state refuses, none refused that it allows.
- Hence, over any interval of w seconds, the allowed calls are at most B + w / T (B + N per S
  seconds at the very most; B at once, then one each T).
- The clock is the hub process's wall clock (replicas keep NTP time), made monotonic on the
  shared row: `at` never goes back, so a replica whose clock lags cannot give calls back.

Quota: a counter per grant and period (a day or a month of the province's calendar,
Asia/Ho_Chi_Minh, UTC+7: Vietnam has no daylight saving time), incremented by one statement
only while below the quota. It lives in the database, so it survives restarts. A call refused by
the rate limit does not count against the quota; a call allowed by both counts even if a later
step refuses it (it reached the hub's limits: the provider may be asked).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from typing import Literal

from pydantic import BaseModel, ConfigDict
from pydantic import Field as PydanticField
from sqlalchemy import BigInteger, text
from sqlalchemy.engine import Connection
from sqlmodel import Field, SQLModel

# The province's calendar: Asia/Ho_Chi_Minh, a fixed UTC+7 (no tz database needed).
PROVINCE_TZ = timezone(timedelta(hours=7), "Asia/Ho_Chi_Minh")
MICROS = 1_000_000


class RateLimit(BaseModel):
    """At most `requests` calls per `seconds`, of which `burst` may come at once (default:
    `requests`, the whole allowance at once)."""

    model_config = ConfigDict(extra="forbid")

    requests: int = PydanticField(ge=1, le=1_000_000)
    seconds: int = PydanticField(ge=1, le=86_400)
    burst: int | None = PydanticField(default=None, ge=1, le=1_000_000)

    def burst_or_default(self) -> int:
        return self.burst if self.burst is not None else self.requests

    def interval_us(self) -> int:
        """T, the emission interval, in microseconds (at least 1)."""
        return max(1, round(self.seconds * MICROS / self.requests))

    def capacity_us(self) -> int:
        return self.burst_or_default() * self.interval_us()


class Quota(BaseModel):
    """At most `requests` calls per day or month of the province's calendar."""

    model_config = ConfigDict(extra="forbid")

    requests: int = PydanticField(ge=1, le=1_000_000_000)
    period: Literal["day", "month"]


# ---------------------------------------------------------------- shared counters


class RateLimitState(SQLModel, table=True):
    """GCRA state of one rate-limited grant (microseconds since the epoch)."""

    __tablename__ = "rate_limit_state"
    # The grant's id, never one of its own (no sequence, nothing handed out).
    grant_id: int = Field(
        primary_key=True,
        foreign_key="grant.id",
        ondelete="CASCADE",
        sa_column_kwargs={"autoincrement": False},
    )
    tat: int = Field(sa_type=BigInteger)
    at: int = Field(sa_type=BigInteger)
    allowed: bool


class QuotaUsage(SQLModel, table=True):
    """Calls counted against a grant's quota in one period (`2026-12-06` or `2026-12`)."""

    __tablename__ = "quota_usage"
    grant_id: int = Field(primary_key=True, foreign_key="grant.id", ondelete="CASCADE")
    period: str = Field(primary_key=True, max_length=10)
    used: int


# One GCRA decision: the first call of a grant inserts its row (and passes: a burst is at least
# one); later ones update it in place. Every right-hand side reads the row as it was.
_GCRA = """
INSERT INTO rate_limit_state (grant_id, tat, at, allowed)
VALUES (:grant, :now + :t, :now, :true)
ON CONFLICT (grant_id) DO UPDATE SET
  at = GREATEST(rate_limit_state.at, :now),
  allowed = (GREATEST(rate_limit_state.tat, rate_limit_state.at, :now) + :t
             - GREATEST(rate_limit_state.at, :now) <= :cap),
  tat = CASE
    WHEN GREATEST(rate_limit_state.tat, rate_limit_state.at, :now) + :t
         - GREATEST(rate_limit_state.at, :now) <= :cap
    THEN GREATEST(rate_limit_state.tat, rate_limit_state.at, :now) + :t
    ELSE rate_limit_state.tat END
RETURNING tat, at, allowed
"""
GCRA_SQL = {
    "postgresql": text(_GCRA),
    "sqlite": text(_GCRA.replace("GREATEST(", "max(")),
}

QUOTA_SQL = text("""
INSERT INTO quota_usage (grant_id, period, used) VALUES (:grant, :period, 1)
ON CONFLICT (grant_id, period) DO UPDATE SET used = quota_usage.used + 1
WHERE quota_usage.used < :quota
RETURNING used
""")


@dataclass(frozen=True, slots=True)
class RateDecision:
    allowed: bool
    remaining: int  # calls that could pass now, after this one
    reset: int  # seconds until the bucket is full again
    retry_after: int  # seconds until the next call may pass (0 when one may pass now)
    tat: int  # the shared state after the decision (microseconds), kept in the call's record
    at: int


def gcra(limit: RateLimit, *, allowed: bool, tat: int, at: int) -> RateDecision:
    """What the GCRA state after a decision (`tat`, `at`) tells the caller."""
    t, cap = limit.interval_us(), limit.capacity_us()
    backlog = max(0, tat - at)
    wait = max(0, backlog + t - cap)
    return RateDecision(
        allowed=allowed,
        remaining=max(0, (cap - backlog) // t),
        reset=math.ceil(backlog / MICROS),
        retry_after=math.ceil(wait / MICROS),
        tat=tat,
        at=at,
    )


def take_rate(
    connection: Connection, *, grant_id: int, limit: RateLimit, now_us: int
) -> RateDecision:
    """One GCRA decision for `grant_id` at `now_us`, taken atomically by the database."""
    row = connection.execute(
        GCRA_SQL[connection.dialect.name],
        {
            "grant": grant_id,
            "now": now_us,
            "t": limit.interval_us(),
            "cap": limit.capacity_us(),
            "true": True,
        },
    ).one()
    return gcra(limit, allowed=bool(row.allowed), tat=int(row.tat), at=int(row.at))


def period_of(quota: Quota, now: datetime) -> tuple[str, datetime]:
    """The period `now` falls in (its key) and when the next one starts, in the province's
    calendar."""
    local = now.astimezone(PROVINCE_TZ)
    if quota.period == "day":
        start = local.replace(hour=0, minute=0, second=0, microsecond=0)
        return local.strftime("%Y-%m-%d"), (start + timedelta(days=1)).astimezone(UTC)
    first = local.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    following = (first + timedelta(days=32)).replace(day=1)
    return local.strftime("%Y-%m"), following.astimezone(UTC)


@dataclass(frozen=True, slots=True)
class QuotaDecision:
    allowed: bool
    remaining: int
    reset: int  # seconds until the next period
    period: str


def take_quota(
    connection: Connection, *, grant_id: int, quota: Quota, now: datetime
) -> QuotaDecision:
    """Count one call against the quota, atomically, unless it is used up."""
    period, next_start = period_of(quota, now)
    row = connection.execute(
        QUOTA_SQL,
        {"grant": grant_id, "period": period, "quota": quota.requests},
    ).one_or_none()
    reset = max(1, math.ceil((next_start - now).total_seconds()))
    if row is None:
        return QuotaDecision(False, 0, reset, period)
    return QuotaDecision(True, max(0, quota.requests - int(row.used)), reset, period)
