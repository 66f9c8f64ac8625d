"""Two replicas on one database: a change made through one is live on the other within a second."""

from __future__ import annotations

import time

import pytest

from tests.conftest import BACKENDS, start_hub
from tests.integration.conftest import APPROVE, provision


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_revoked_key_stops_working_on_every_replica(backend, database_urls, upstream):
    url = database_urls(backend)
    first_hub = start_hub(url)
    first = next(first_hub)
    second_hub = start_hub(url)
    second = next(second_hub)
    try:
        world = provision(
            first, base_url=upstream,
            routes=[{"method": "GET", "path": "/x/{n}", "upstream_path": "/echo/{n}"}],
            grant={}, decision=APPROVE,
        )  # fmt: skip
        path = f"/api/{world.service}/v1/x/1"
        with second.client(world.key) as other:
            deadline = time.monotonic() + 1.0  # LGSP_REGISTRY_POLL_SECONDS=0.2 in the tests
            while other.get(path).status_code != 200:
                assert time.monotonic() < deadline, "the new service never reached the replica"
                time.sleep(0.05)

            key_id = world.key.split(".")[0].removeprefix("lgsp_")
            with first.admin() as admin:
                revoked = admin.delete(f"/admin/consumers/{world.consumer}/keys/{key_id}")
                assert revoked.status_code in (200, 204), revoked.text
            started = time.monotonic()
            while other.get(path).status_code != 401:
                assert time.monotonic() - started < 1.0, "the revocation never reached the replica"
                time.sleep(0.05)
    finally:
        for hub in (second_hub, first_hub):
            hub.close()
