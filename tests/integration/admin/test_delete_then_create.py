"""Delete, then create: the new object never gets the deleted one's id, so the audit records and
the people that named the old one never find the new one under it (issue 11)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from sqlmodel import Session, select

from registry.models import ApiKey
from tests.integration.admin.conftest import Registry, ok, problem
from tests.integration.admin.test_topics import topic
from tests.integration.conftest import APPROVE, World

ECHO_ROUTE = {"method": "POST", "path": "/echo/{item}", "upstream_path": "/echo/{item}"}


def test_a_deleted_grants_id_names_nothing_once_a_new_grant_is_made(
    make_world: Callable[..., World], upstream: str
) -> None:
    """The demo's failure: an exchange record names grant N; grant N is deleted and the same
    agreement made again; GET /admin/grants/N must not show the new one."""
    world = make_world(base_url=upstream, routes=[ECHO_ROUTE], grant={}, decision=APPROVE)
    assert world.call("POST", "/echo/a", json={}).status_code == 200
    [record] = world.records(grant_id=world.grant_id)
    with world.hub.admin() as admin:
        assert admin.delete(f"/admin/grants/{world.grant_id}").status_code == 204
        terms = {"consumer": world.consumer, "service": world.service}
        again = ok(admin.post("/admin/grants", json=terms), 201)
        assert again["id"] > record["grant_id"]
        problem(admin.get(f"/admin/grants/{record['grant_id']}"), 404)
    assert world.records(grant_id=again["id"]) == []


def connector(reg: Registry) -> tuple[dict[str, Any], str]:
    made = reg.connector()
    return made, f"/admin/connectors/{made['name']}"


def service(reg: Registry) -> tuple[dict[str, Any], str]:
    made = reg.service()
    return made, f"/admin/services/{made['name']}/v1"


def consumer(reg: Registry) -> tuple[dict[str, Any], str]:
    made = reg.consumer()
    return made, f"/admin/consumers/{made['name']}"


def topic_(reg: Registry) -> tuple[dict[str, Any], str]:
    made = topic(reg)
    return made, f"/admin/topics/{made['name']}"


def subscription(reg: Registry) -> tuple[dict[str, Any], str]:
    agency = reg.agency()
    body = {
        "name": reg.unique("sub"),
        "topic": topic(reg, agency)["name"],
        "consumer": reg.consumer(agency)["name"],
        "delivery": "group",
    }
    made = ok(reg.client.post("/admin/subscriptions", json=body), 201)
    return made, f"/admin/subscriptions/{made['name']}"


NOUNS = {f.__name__.rstrip("_"): f for f in (connector, service, consumer, topic_, subscription)}


@pytest.mark.parametrize("noun", sorted(NOUNS))
def test_a_new_object_never_gets_a_deleted_ones_id(reg: Registry, noun: str) -> None:
    make = NOUNS[noun]
    first, path = make(reg)  # the newest of its kind: the highest id
    assert reg.client.delete(path).status_code == 204
    second, second_path = make(reg)
    assert second["id"] > first["id"], f"{noun} {first['id']} deleted, then given again"
    problem(reg.client.get(path), 404)
    assert reg.client.delete(second_path).status_code == 204


def test_a_deleted_consumers_key_rows_leave_their_ids_behind(reg: Registry) -> None:
    """Keys are named by their key_id; their rows' ids are never given again either."""

    def consumer_with_key() -> tuple[str, int | None]:
        name = reg.consumer()["name"]
        issued = ok(reg.client.post(f"/admin/consumers/{name}/keys", json={}), 201)
        with Session(reg.hub.hub.runtime.engine) as session:
            row = session.exec(select(ApiKey).where(ApiKey.key_id == issued["key_id"])).one()
        return name, row.id

    name, first = consumer_with_key()
    assert reg.client.delete(f"/admin/consumers/{name}").status_code == 204
    _, second = consumer_with_key()
    assert first is not None and second is not None and second > first
