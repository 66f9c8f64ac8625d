"""Two replicas on one database: a change made through one is live on the other within a second."""

from __future__ import annotations

import pytest

from tests.conftest import BACKENDS, start_hub
from tests.integration.conftest import APPROVE, provision
from tests.wait import wait_until


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
            wait_until(  # LGSP_REGISTRY_POLL_SECONDS=0.2 in the tests
                lambda: other.get(path).status_code == 200,
                timeout=1.0,
                what="the new service to reach the replica",
            )

            key_id = world.key.split(".")[0].removeprefix("lgsp_")
            with first.admin() as admin:
                revoked = admin.delete(f"/admin/consumers/{world.consumer}/keys/{key_id}")
                assert revoked.status_code in (200, 204), revoked.text
            wait_until(
                lambda: other.get(path).status_code == 401,
                timeout=1.0,
                what="the revocation to reach the replica",
            )
    finally:
        for hub in (second_hub, first_hub):
            hub.close()
