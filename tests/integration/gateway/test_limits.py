"""A grant's rate limit and quota, and a connector's calls at once, through real HTTP."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import httpx

from tests.integration.conftest import APPROVE, World
from tests.integration.gateway.test_exchange import problem

ECHO = {"method": "GET", "path": "/x/{n}", "upstream_path": "/echo/{n}"}
SLOW = {"method": "GET", "path": "/slow"}


def limited_world(make_world: Callable[..., World], upstream: str, **grant: Any) -> World:
    return make_world(base_url=upstream, routes=[ECHO], grant=grant, decision=APPROVE)


def test_within_the_rate_limit_the_headers_say_what_is_left_then_429(make_world, upstream):
    # 3 an hour: the emission interval is 20 minutes, so nothing comes back during the test.
    world = limited_world(make_world, upstream, rate_limit={"requests": 3, "seconds": 3600})
    seen = []
    for n in range(3):
        answer = world.call("GET", f"/x/{n}")
        assert answer.status_code == 200, answer.text
        assert answer.headers["ratelimit-policy"] == '"grant";q=3;w=3600'
        seen.append(answer.headers["ratelimit"])
    assert seen[0].startswith('"grant";r=2;t=')
    assert seen[1].startswith('"grant";r=1;t=')
    assert seen[2].startswith('"grant";r=0;t=')

    refused = world.call("GET", "/x/4", headers={"X-Request-Id": "over-the-limit"})
    doc = problem(refused, 429, "rate-limited")
    assert "3 calls per 3600 s" in doc["detail"]
    # The next call may pass when one emission interval (1200 s) has gone by, less what has.
    retry = int(refused.headers["retry-after"])
    assert 1190 <= retry <= 1200, retry
    assert doc["retry_after"] == retry
    assert refused.headers["ratelimit"].startswith('"grant";r=0;t=')
    assert refused.headers["ratelimit-policy"] == '"grant";q=3;w=3600'

    (record,) = world.records(request_id="over-the-limit")
    assert record["hub_status"] == 429
    assert record["provider_status"] is None  # the provider never saw it
    assert "allows 3 calls per 3600 s" in record["error"]
    assert record["grant_id"] == world.grant_id


def test_a_burst_passes_at_once_and_no_more(make_world, upstream):
    world = limited_world(
        make_world, upstream, rate_limit={"requests": 2, "seconds": 3600, "burst": 4}
    )
    statuses = [world.call("GET", f"/x/{n}").status_code for n in range(6)]
    assert statuses == [200, 200, 200, 200, 429, 429]


def test_a_quota_is_used_up_and_says_when_it_comes_back(make_world, upstream):
    world = limited_world(make_world, upstream, quota={"requests": 2, "period": "day"})
    first = world.call("GET", "/x/1")
    assert first.status_code == 200, first.text
    assert first.headers["ratelimit-policy"] == '"quota";q=2;w=86400'
    assert first.headers["ratelimit"].startswith('"quota";r=1;t=')
    assert world.call("GET", "/x/2").headers["ratelimit"].startswith('"quota";r=0;t=')

    refused = world.call("GET", "/x/3", headers={"X-Request-Id": "quota-gone"})
    doc = problem(refused, 429, "quota-exhausted")
    assert "2 calls a day (Asia/Ho_Chi_Minh)" in doc["detail"]
    reset = int(refused.headers["retry-after"])
    assert 0 < reset <= 86_400
    assert refused.headers["ratelimit"] == f'"quota";r=0;t={reset}'
    (record,) = world.records(request_id="quota-gone")
    assert record["hub_status"] == 429 and "2 calls a day" in record["error"]


def test_rate_limit_and_quota_together_name_both_policies(make_world, upstream):
    world = limited_world(
        make_world,
        upstream,
        rate_limit={"requests": 50, "seconds": 10},
        quota={"requests": 1000, "period": "month"},
    )
    answer = world.call("GET", "/x/1")
    assert answer.status_code == 200, answer.text
    assert answer.headers["ratelimit-policy"] == '"grant";q=50;w=10, "quota";q=1000;w=2592000'
    grant_part, quota_part = answer.headers["ratelimit"].split(", ")
    assert grant_part.startswith('"grant";r=49;t=')
    assert quota_part.startswith('"quota";r=999;t=')


def test_an_unlimited_grant_sends_no_ratelimit_headers(make_world, upstream):
    world = limited_world(make_world, upstream)
    answer = world.call("GET", "/x/1")
    assert answer.status_code == 200
    assert "ratelimit" not in answer.headers and "ratelimit-policy" not in answer.headers


def test_bad_limits_are_422_with_the_pointer(hub, make_world, upstream):
    world = limited_world(make_world, upstream)
    bad: list[tuple[dict[str, Any], str]] = [
        ({"rate_limit": {"requests": 0, "seconds": 10}}, "/rate_limit/requests"),
        ({"rate_limit": {"requests": 5, "seconds": -1}}, "/rate_limit/seconds"),
        ({"rate_limit": {"requests": 5, "seconds": 10, "burst": 0}}, "/rate_limit/burst"),
        ({"rate_limit": {"requests": 5}}, "/rate_limit/seconds"),
        ({"rate_limit": {"requests": 5, "seconds": 10, "per": "x"}}, "/rate_limit/per"),
        ({"quota": {"requests": -1, "period": "day"}}, "/quota/requests"),
        ({"quota": {"requests": 10, "period": "week"}}, "/quota/period"),
    ]
    with hub.admin() as admin:
        for terms, pointer in bad:
            created = admin.post(
                "/admin/grants",
                json={"consumer": world.consumer, "service": world.service, **terms},
            )
            doc = problem(created, 422, "validation-error")
            assert pointer in [e["pointer"] for e in doc["errors"]], (terms, doc)
            changed = admin.patch(f"/admin/grants/{world.grant_id}", json=terms)
            doc = problem(changed, 422, "validation-error")
            assert pointer in [e["pointer"] for e in doc["errors"]], (terms, doc)


def test_changing_a_limit_is_a_change_of_terms(hub, make_world, upstream):
    world = limited_world(make_world, upstream, rate_limit={"requests": 5, "seconds": 60})
    with hub.admin() as admin:
        changed = admin.patch(
            f"/admin/grants/{world.grant_id}", json={"rate_limit": {"requests": 10, "seconds": 60}}
        )
        assert changed.status_code == 200, changed.text
        grant = changed.json()
    assert grant["status"] == "requested"
    assert grant["rate_limit"] == {"requests": 10, "seconds": 60, "burst": None}
    assert "rate_limit" in grant["history"][-1]["reason"]


# ---------------------------------------------------------------- connector concurrency


def slow_world(make_world: Callable[..., World], upstream: str, **limits: Any) -> World:
    return make_world(
        base_url=upstream,
        routes=[SLOW],
        grant={},
        decision=APPROVE,
        connector_extra={"read_timeout": 10, **limits},
    )


async def _together(world: World, count: int, seconds: float) -> list[httpx.Response]:
    async with httpx.AsyncClient(
        base_url=world.hub.url, headers={"X-API-Key": world.key}, timeout=30
    ) as client:
        return list(
            await asyncio.gather(
                *(
                    client.get(f"/api/{world.service}/v1/slow", params={"s": seconds})
                    for _ in range(count)
                )
            )
        )


def test_one_in_flight_one_waiting_and_the_third_is_turned_away(make_world, upstream):
    world = slow_world(make_world, upstream, max_in_flight=1, max_waiting=1, max_wait_seconds=10)
    answers = asyncio.run(_together(world, 3, 1.5))
    statuses = sorted(a.status_code for a in answers)
    assert statuses == [200, 200, 503], [a.text for a in answers]
    busy = next(a for a in answers if a.status_code == 503)
    doc = problem(busy, 503, "provider-busy")
    assert "1 calls wait already" in doc["detail"]
    assert busy.headers["retry-after"] == "10"
    records = world.records(status=503)
    assert len(records) == 1 and "takes 1 calls at once" in records[0]["error"]


def test_a_call_that_waits_past_its_deadline_is_turned_away(make_world, upstream):
    world = slow_world(make_world, upstream, max_in_flight=1, max_waiting=5, max_wait_seconds=0.3)
    answers = asyncio.run(_together(world, 2, 2))
    statuses = sorted(a.status_code for a in answers)
    assert statuses == [200, 503], [a.text for a in answers]
    doc = problem(next(a for a in answers if a.status_code == 503), 503, "provider-busy")
    assert "no slot freed within 0.3 s" in doc["detail"]


def test_connector_limits_are_validated(hub, make_world, upstream):
    world = slow_world(make_world, upstream)
    with hub.admin() as admin:
        for field, value in (("max_in_flight", 0), ("max_waiting", -1), ("max_wait_seconds", 0)):
            answer = admin.patch(f"/admin/connectors/{world.connector}", json={field: value})
            doc = problem(answer, 422, "validation-error")
            assert f"/{field}" in [e["pointer"] for e in doc["errors"]], doc
