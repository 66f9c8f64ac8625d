"""The proof that limits are exact across workers: `lgsp serve --workers 2` on PostgreSQL takes
1,000 calls at once against 50 per 10 seconds, and lets through exactly what one GCRA, deciding
the same calls one after the other, lets through; a quota continues after a restart."""

from __future__ import annotations

import asyncio
import itertools
import os
import signal
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from typing import Any, cast

import httpx
import pytest
from sqlalchemy import text

from gateway.db import make_engine
from gateway.settings import Settings
from registry.limits import RateLimit
from tests.conftest import RunningHub, free_port, start_hub
from tests.integration.conftest import APPROVE, World, provision
from tests.integration.registry.test_limit_counters import reference
from tests.integration.test_serve import _ready, _workers
from tests.wait import wait_until

ROUTE = {"method": "GET", "path": "/x/{n}", "upstream_path": "/echo/{n}"}
LIMIT = RateLimit(requests=50, seconds=10)  # burst 50: the whole allowance at once
CALLS = 1000


@contextmanager
def serve(made: Made, port: int) -> Iterator[str]:
    """`lgsp serve --workers 2`, ready on both workers; stopped with SIGTERM at the end."""
    env = {
        **os.environ,
        "LGSP_DATABASE_URL": made.database_url,
        "LGSP_BOOTSTRAP_ADMIN_KEY": made.admin_key,
        "LGSP_AUDIT_KEY_FILE": made.audit_key_file,
        "LGSP_REGISTRY_POLL_SECONDS": "0.2",
    }
    supervisor = subprocess.Popen(
        [sys.executable, "-m", "gateway.cli", "serve", "--port", str(port), "--workers", "2"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"

    def up() -> bool:
        if supervisor.poll() is not None:
            assert supervisor.stderr is not None
            stderr = supervisor.stderr.read().decode(errors="replace")
            raise AssertionError(f"lgsp serve exited with {supervisor.returncode}:\n{stderr}")
        return (
            len(_workers(supervisor.pid)) == 2
            and _ready(url)
            and all(_ready(url) for _ in range(10))  # fresh connections reach both workers
        )

    try:
        wait_until(up, timeout=60, interval=0.2, what="lgsp serve ready with 2 workers")
        yield url
        supervisor.send_signal(signal.SIGTERM)
        assert supervisor.wait(timeout=30) == 0
    finally:
        if supervisor.poll() is None:
            os.killpg(supervisor.pid, signal.SIGKILL)
            supervisor.wait()
        if supervisor.stderr is not None:
            supervisor.stderr.close()


@dataclass(frozen=True)
class Made:
    database_url: str
    admin_key: str
    audit_key_file: str
    world: World

    def at(self, url: str) -> World:
        """The world, reached through the hub at `url`."""
        remote = RunningHub(url=url, admin_key=self.admin_key, settings=Settings(), hub=None)  # type: ignore[arg-type]
        return replace(self.world, hub=remote)


def provisioned(database_url: str, upstream: str, grant: dict[str, Any]) -> Made:
    """The world made through an in-process hub on the same database, before `serve` starts,
    so that both workers load it with their first snapshot."""
    hubs = start_hub(database_url)
    hub = next(hubs)
    try:
        world = provision(hub, base_url=upstream, routes=[ROUTE], grant=grant, decision=APPROVE)
    finally:
        hubs.close()
    return Made(database_url, hub.admin_key, str(hub.settings.audit_key_file), world)


async def flood(url: str, world: World) -> list[int]:
    limits = httpx.Limits(max_connections=100)
    async with httpx.AsyncClient(
        base_url=url, headers={"X-API-Key": world.key}, timeout=60, limits=limits
    ) as client:
        answers = await asyncio.gather(
            *(client.get(f"/api/{world.service}/v1/x/{n}") for n in range(CALLS))
        )
    return [a.status_code for a in answers]


@pytest.mark.slow
def test_two_workers_let_through_exactly_what_one_gcra_would(database_urls, upstream):
    made = provisioned(
        database_urls("postgresql"), upstream, {"rate_limit": {"requests": 50, "seconds": 10}}
    )
    world = made.world
    with serve(made, free_port()) as url:
        statuses = asyncio.run(flood(url, world))
    assert set(statuses) <= {200, 429}, Counter(statuses)

    engine = make_engine(made.database_url)
    try:
        with engine.connect() as connection:
            rows = connection.execute(
                text("SELECT hub_status, details FROM exchange_record WHERE service = :s"),
                {"s": world.service},
            ).all()
    finally:
        engine.dispose()
    assert len(rows) == CALLS
    decisions: list[tuple[int, bool, int]] = []
    for status, details in rows:
        rate: dict[str, Any] = cast(dict[str, Any], details)["limits"]["rate"]
        assert rate["allowed"] == (status == 200), (status, details)
        decisions.append((rate["at"], not rate["allowed"], rate["tat"]))
    # The order the database decided in: `at` never goes back, and at one instant the allowed
    # calls come before the refused (a refusal at an instant means every later call then is).
    decisions.sort()
    times = [d[0] for d in decisions]
    allowed = [not d[1] for d in decisions]
    assert allowed == reference(LIMIT, times)

    # Per window of 10 s from the first decision: what went through, exactly as the GCRA says,
    # and never more than the burst plus one window's rate.
    windows: Counter[int] = Counter()
    for time_us, passed in zip(times, allowed, strict=True):
        if passed:
            windows[(time_us - times[0]) // (LIMIT.seconds * 1_000_000)] += 1
    assert windows[0] <= LIMIT.burst_or_default() + LIMIT.requests
    assert all(count <= 2 * LIMIT.requests for count in windows.values())
    # Each allowed call took a slot of its own: the shared state moved on by at least one
    # emission interval each time (exactly one while calls kept coming).
    tats = sorted(d[2] for d in decisions if not d[1])
    assert min(b - a for a, b in itertools.pairwise(tats)) >= LIMIT.interval_us()
    assert statuses.count(200) == sum(windows.values()) == allowed.count(True)
    # The run was far shorter than it takes to refill the bucket: the burst, plus what came
    # back while it ran (one call per 0.2 s), and nothing else.
    elapsed = times[-1] - times[0]
    assert allowed.count(True) <= LIMIT.burst_or_default() + elapsed // LIMIT.interval_us() + 1


@pytest.mark.slow
def test_a_quota_continues_after_a_restart(database_urls, upstream):
    made = provisioned(
        database_urls("postgresql"), upstream, {"quota": {"requests": 5, "period": "day"}}
    )
    port = free_port()
    with serve(made, port) as url:
        first = [made.at(url).call("GET", f"/x/{n}") for n in range(3)]
    assert [a.status_code for a in first] == [200, 200, 200]
    assert first[-1].headers["ratelimit"].startswith('"quota";r=2;')
    with serve(made, port) as url:
        second = [made.at(url).call("GET", f"/x/{n}") for n in range(3)]
    assert [a.status_code for a in second] == [200, 200, 429]
    assert second[1].headers["ratelimit"].startswith('"quota";r=0;')
    assert second[2].json()["type"].endswith("/quota-exhausted")
