"""A registry write through any API is live on the replica that made it before its answer
leaves: admin routes and the Confluent-compatible registry alike (the routes say they write)."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator

import httpx
import pytest

from tests.conftest import BACKENDS, RunningHub, start_hub

STATUS = {"type": "object", "properties": {"MaHoSo": {"type": "string"}}}


@pytest.fixture(scope="module", params=BACKENDS)
def slow_polling_hub(
    request: pytest.FixtureRequest, database_urls: Callable[[str], str]
) -> Iterator[RunningHub]:
    """A hub that would not notice a change by polling within the test (an hour between polls)."""
    yield from start_hub(database_urls(request.param), registry_poll_seconds=3600)


def revision(client: httpx.Client) -> int:
    answer = client.get("/readyz")
    assert answer.status_code == 200, answer.text
    value: int = answer.json()["registry_revision"]
    return value


def test_confluent_writes_are_live_before_the_answer(
    slow_polling_hub: RunningHub, unique: Callable[[str], str]
) -> None:
    subject = f"{unique('ho-so.trang-thai')}-value"
    # As confluent-kafka's client sends them: the management key as the Basic password.
    with httpx.Client(
        base_url=slow_polling_hub.url, auth=("lgsp", slow_polling_hub.admin_key), timeout=30
    ) as client:
        writes = [
            ("POST", f"/subjects/{subject}/versions", {"schema": json.dumps(STATUS)}),
            ("PUT", f"/config/{subject}", {"compatibility": "FULL"}),
            ("DELETE", f"/config/{subject}", None),
            ("PUT", "/config", {"compatibility": "BACKWARD"}),
            ("DELETE", f"/subjects/{subject}/versions/1", None),
        ]
        for method, path, body in writes:
            before = revision(client)
            answer = client.request(method, path, json=body)
            assert answer.status_code == 200, (method, path, answer.text)
            assert revision(client) > before, f"{method} {path} was not live on this replica"


def test_admin_writes_are_live_before_the_answer(
    slow_polling_hub: RunningHub, unique: Callable[[str], str]
) -> None:
    code = "000.00.77.H12"
    with slow_polling_hub.admin() as client:
        before = revision(client)
        answer = client.post("/admin/agencies", json={"code": code, "name": unique("So")})
        assert answer.status_code in (201, 409), answer.text
        if answer.status_code == 201:
            assert revision(client) > before
        before = revision(client)
        answer = client.patch(f"/admin/agencies/{code}", json={"name": unique("So moi")})
        assert answer.status_code == 200, answer.text
        assert revision(client) > before
