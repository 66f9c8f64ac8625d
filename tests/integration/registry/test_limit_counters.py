"""The shared counters' statements on SQLite and PostgreSQL, with the clock in the test's hand:
each decision is exactly the GCRA's, a lagging clock gives nothing back, quotas stop at their
number, and many threads deciding at once never let one call too many through."""

from __future__ import annotations

import random
import threading
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session

from gateway.db import make_engine, migrate
from registry.limits import Quota, RateLimit, take_quota, take_rate
from registry.models import Grant
from tests.conftest import BACKENDS

S = 1_000_000
T0 = 1_800_000_000 * S  # an arbitrary instant, in microseconds


@pytest.fixture(params=BACKENDS)
def engine(request, database_urls) -> Iterator[Engine]:
    engine = make_engine(database_urls(request.param))
    migrate(engine)
    yield engine
    engine.dispose()


def new_grant(engine: Engine) -> int:
    with Session(engine) as session:
        grant = Grant(consumer="app", service=f"svc-{random.randrange(10**9)}")
        session.add(grant)
        session.commit()
        assert grant.id is not None
        return grant.id


def reference(limit: RateLimit, times: list[int]) -> list[bool]:
    """The GCRA, one call after the other, in Python: what the database must agree with."""
    t, cap = limit.interval_us(), limit.capacity_us()
    tat: int | None = None
    at = 0
    out = []
    for now in times:
        if tat is None:
            tat, at = now + t, now
            out.append(True)
            continue
        at = max(at, now)
        candidate = max(tat, at) + t
        allowed = candidate - at <= cap
        if allowed:
            tat = candidate
        out.append(allowed)
    return out


def decide(engine: Engine, grant: int, limit: RateLimit, now: int) -> bool:
    with engine.begin() as connection:
        return take_rate(connection, grant_id=grant, limit=limit, now_us=now).allowed


def test_fifty_per_ten_seconds_burst_refill_and_a_full_bucket_again(engine):
    limit = RateLimit(requests=50, seconds=10)
    grant = new_grant(engine)
    assert [decide(engine, grant, limit, T0) for _ in range(51)] == [True] * 50 + [False]
    assert not decide(engine, grant, limit, T0 + 199_999)  # one interval, less 1 µs
    assert decide(engine, grant, limit, T0 + 200_000)  # one interval: one call
    assert not decide(engine, grant, limit, T0 + 200_000)
    later = T0 + 30 * S  # long idle: the bucket is full again, no more than full
    assert [decide(engine, grant, limit, later) for _ in range(51)] == [True] * 50 + [False]


def test_a_lagging_clock_gives_nothing_back(engine):
    limit = RateLimit(requests=2, seconds=10)
    grant = new_grant(engine)
    assert [decide(engine, grant, limit, T0 + 60 * S) for _ in range(3)] == [True, True, False]
    # A replica whose clock is a minute behind sees the state as of the latest decision.
    assert not decide(engine, grant, limit, T0)


def test_random_arrivals_match_the_reference_exactly(engine):
    limit = RateLimit(requests=5, seconds=2, burst=3)
    grant = new_grant(engine)
    rng = random.Random(12)
    times, now = [], T0
    for _ in range(300):
        now += rng.choice([0, 0, 50_000, 150_000, 400_000, 1_000_000, -300_000])
        times.append(now)
    assert [decide(engine, grant, limit, t) for t in times] == reference(limit, times)


def test_threads_deciding_at_once_let_exactly_the_burst_through(engine):
    limit = RateLimit(requests=40, seconds=3600)  # no refill within the test
    grant = new_grant(engine)
    results: list[bool] = []
    lock = threading.Lock()

    def worker() -> None:
        for _ in range(25):
            allowed = decide(engine, grant, limit, T0)
            with lock:
                results.append(allowed)

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert len(results) == 200
    assert results.count(True) == 40


def test_a_quota_stops_at_its_number_and_a_new_day_starts_afresh(engine):
    quota = Quota(requests=3, period="day")
    grant = new_grant(engine)
    day = datetime(2026, 12, 6, 10, 0, tzinfo=UTC)
    next_day = datetime(2026, 12, 6, 17, 0, tzinfo=UTC)  # midnight in Asia/Ho_Chi_Minh

    def take(now: datetime) -> tuple[bool, int]:
        with engine.begin() as connection:
            decided = take_quota(connection, grant_id=grant, quota=quota, now=now)
        return decided.allowed, decided.remaining

    assert [take(day) for _ in range(4)] == [(True, 2), (True, 1), (True, 0), (False, 0)]
    assert take(next_day) == (True, 2)
