"""The limits step's own refusals: a limit that cannot be checked is not lifted."""

from __future__ import annotations

import asyncio

import pytest

from audit.records import RecordKind
from gateway.db import make_engine
from gateway.exchange.calls import Call
from gateway.exchange.limits import admit
from gateway.problems import Problem
from registry.limits import Quota, RateLimit


def test_counters_out_of_reach_answer_503_not_a_free_pass(tmp_path):
    # A database file in a directory that does not exist: every connection fails.
    engine = make_engine(f"sqlite:///{tmp_path / 'gone' / 'hub.db'}")
    call = Call(kind=RecordKind.EXCHANGE, request_id="r-1")
    try:
        with pytest.raises(Problem) as caught:
            asyncio.run(
                admit(
                    engine,
                    grant_id=1,
                    rate=RateLimit(requests=5, seconds=1),
                    quota=Quota(requests=5, period="day"),
                    call=call,
                )
            )
    finally:
        engine.dispose()
    assert (caught.value.status, caught.value.kind) == (503, "limits-unavailable")
    assert caught.value.headers == {"retry-after": "1"}


def test_a_grant_without_limits_never_touches_the_database(tmp_path):
    engine = make_engine(f"sqlite:///{tmp_path / 'gone' / 'hub.db'}")
    call = Call(kind=RecordKind.EXCHANGE, request_id="r-2")
    try:
        verdict = asyncio.run(admit(engine, grant_id=1, rate=None, quota=None, call=call))
    finally:
        engine.dispose()
    assert verdict.headers == [] and call.details is None
