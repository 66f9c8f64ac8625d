"""A grant's limit terms, the GCRA arithmetic of what the caller is told, and quota periods."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from pydantic import ValidationError

from registry.limits import Quota, RateLimit, gcra, period_of
from registry.models import GrantCreate

S = 1_000_000  # microseconds


def test_the_emission_interval_and_the_burst():
    limit = RateLimit(requests=50, seconds=10)
    assert limit.interval_us() == 200_000  # one call each 0.2 s
    assert limit.burst_or_default() == 50  # the whole allowance at once
    assert limit.capacity_us() == 10 * S
    bursty = RateLimit(requests=50, seconds=10, burst=5)
    assert bursty.capacity_us() == S


def test_a_full_bucket_leaves_the_burst_less_one():
    limit = RateLimit(requests=50, seconds=10)
    # The first call of an idle grant: tat = now + T.
    told = gcra(limit, allowed=True, tat=100 * S + 200_000, at=100 * S)
    assert (told.remaining, told.reset, told.retry_after) == (49, 1, 0)


def test_an_empty_bucket_says_when_the_next_call_may_pass():
    limit = RateLimit(requests=50, seconds=10)
    # 50 calls at once: tat is a whole window ahead; the next may pass after one interval.
    told = gcra(limit, allowed=False, tat=110 * S, at=100 * S)
    assert (told.remaining, told.reset, told.retry_after) == (0, 10, 1)
    # 3.5 s later, 17 calls' worth has come back (3.5 / 0.2 = 17.5).
    later = gcra(limit, allowed=True, tat=110 * S, at=103 * S + 500_000)
    assert (later.remaining, later.reset, later.retry_after) == (17, 7, 0)


def test_retry_after_rounds_up_to_whole_seconds():
    limit = RateLimit(requests=1, seconds=60)
    told = gcra(limit, allowed=False, tat=160 * S, at=100 * S + 1)
    assert told.retry_after == 60  # 59.999999 s, never 59: a retry then would be refused


@pytest.mark.parametrize(
    ("terms", "where"),
    [
        ({"rate_limit": {"requests": 0, "seconds": 10}}, ("rate_limit", "requests")),
        ({"rate_limit": {"requests": -3, "seconds": 10}}, ("rate_limit", "requests")),
        ({"rate_limit": {"requests": 3, "seconds": 0}}, ("rate_limit", "seconds")),
        ({"rate_limit": {"requests": 3, "seconds": 10, "burst": 0}}, ("rate_limit", "burst")),
        ({"quota": {"requests": 0, "period": "day"}}, ("quota", "requests")),
        ({"quota": {"requests": -1, "period": "day"}}, ("quota", "requests")),
        ({"quota": {"requests": 5, "period": "year"}}, ("quota", "period")),
    ],
)
def test_bad_terms_are_refused_where_they_are(terms, where):
    with pytest.raises(ValidationError) as caught:
        GrantCreate.model_validate({"consumer": "app", "service": "svc", **terms})
    assert [e["loc"][:2] for e in caught.value.errors()] == [where]


def test_a_day_is_the_province_s_day():
    quota = Quota(requests=10, period="day")
    # 16:59:59 UTC is 23:59:59 in Lai Châu; 17:00 UTC is the next day there.
    assert period_of(quota, datetime(2026, 12, 6, 16, 59, 59, tzinfo=UTC)) == (
        "2026-12-06",
        datetime(2026, 12, 6, 17, 0, tzinfo=UTC),
    )
    assert period_of(quota, datetime(2026, 12, 6, 17, 0, tzinfo=UTC))[0] == "2026-12-07"


def test_a_month_is_the_province_s_month():
    quota = Quota(requests=10, period="month")
    assert period_of(quota, datetime(2026, 12, 31, 16, 59, tzinfo=UTC)) == (
        "2026-12",
        datetime(2026, 12, 31, 17, 0, tzinfo=UTC),
    )
    assert period_of(quota, datetime(2026, 12, 31, 17, 0, tzinfo=UTC)) == (
        "2027-01",
        datetime(2027, 1, 31, 17, 0, tzinfo=UTC),
    )
    assert period_of(quota, datetime(2027, 2, 10, tzinfo=UTC))[1] == datetime(
        2027, 2, 28, 17, 0, tzinfo=UTC
    )
