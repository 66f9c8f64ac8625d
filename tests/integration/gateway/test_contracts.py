"""The data plane validates with the schema version each route names, our formats included."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx

from tests.integration.conftest import APPROVE, World
from tests.integration.gateway.test_exchange import problem
from tests.wait import wait_until

FILING: dict[str, Any] = {
    "type": "object",
    "required": ["ma_so_thue", "nguoi_nop"],
    "properties": {
        "ma_so_thue": {"type": "string", "format": "vn-tax-code"},
        "ngay_nop": {"type": "string", "format": "yyyyMMdd"},
        "ma_xa": {"type": "string", "format": "vn-commune-code"},
        "nguoi_nop": {
            "type": "object",
            "x-vn-personal-id": {"id": "so_dinh_danh", "birth_date": "ngay_sinh"},
            "properties": {
                "so_dinh_danh": {"type": "string", "format": "vn-personal-id"},
                "ngay_sinh": {"type": "string", "format": "yyyyMMdd"},
            },
        },
    },
}
GOOD = {
    "ma_so_thue": "0100109106",
    "ngay_nop": "20251124",
    "ma_xa": "03388",
    "nguoi_nop": {"so_dinh_danh": "012090001234", "ngay_sinh": "19900517"},
}


def registered(admin: httpx.Client, subject: str, schema: Any) -> dict[str, Any]:
    answer = admin.post(f"/admin/schemas/{subject}/versions", json={"schema": schema})
    assert answer.status_code in (200, 201), answer.text
    return dict(answer.json())


def filing_world(
    make_world: Callable[..., World], upstream: str, admin: httpx.Client, subject: str
) -> World:
    registered(admin, subject, FILING)
    route = {"method": "POST", "path": "/to-khai", "upstream_path": "/echo/to-khai",
             "request_schema": {"subject": subject, "version": 1}}  # fmt: skip
    return make_world(
        base_url=upstream, routes=[route], grant={"purposes": ["kiem-tra"]}, decision=APPROVE
    )


def test_our_formats_are_asserted_with_reasons(hub, make_world, upstream, unique):
    with hub.admin() as admin:
        world = filing_world(make_world, upstream, admin, unique("thue.to-khai"))
    assert world.call("POST", "/to-khai", json=GOOD).status_code == 200

    bad = {
        **GOOD,
        "ma_so_thue": "0100109105",  # wrong check digit
        "ngay_nop": "20250231",  # no such day
        "ma_xa": "03391",  # merged into another commune
        "nguoi_nop": {"so_dinh_danh": "012090001234", "ngay_sinh": "19850517"},
    }
    errors = problem(world.call("POST", "/to-khai", json=bad), 422, "schema-violation")["errors"]
    by_pointer = {e["pointer"]: e["message"] for e in errors}
    assert "check digit" in by_pointer["/body/ma_so_thue"]
    assert "/body/ngay_nop" in by_pointer
    assert "/body/ma_xa" in by_pointer
    # The number says 1990, the birth date 1985: the error is at the number and names both.
    mismatch = by_pointer["/body/nguoi_nop/so_dinh_danh"]
    assert "so_dinh_danh" in mismatch and "ngay_sinh" in mismatch


def test_a_route_validates_with_the_version_it_names(hub, make_world, upstream, unique):
    subject = unique("thue.to-khai")
    with hub.admin() as admin:
        world = filing_world(make_world, upstream, admin, subject)
        # v2 also requires the filing date (the subject's rule is relaxed to allow it).
        ok = admin.put(f"/admin/schemas/{subject}/config", json={"compatibility": "NONE"})
        assert ok.status_code == 200
        v2 = registered(admin, subject, {**FILING, "required": ["ma_so_thue", "nguoi_nop",
                                                                "ngay_nop"]})  # fmt: skip
        assert v2["version"] == 2
        undated = {k: v for k, v in GOOD.items() if k != "ngay_nop"}
        # The route still names version 1: a newer version changes nothing by itself.
        assert world.call("POST", "/to-khai", json=undated).status_code == 200

        route = {"method": "POST", "path": "/to-khai", "upstream_path": "/echo/to-khai",
                 "request_schema": {"subject": subject, "version": 2}}  # fmt: skip
        moved = admin.patch(f"/admin/services/{world.service}/v1", json={"routes": [route]})
        assert moved.status_code == 200, moved.text
        assert world.call("POST", "/to-khai", json=undated).status_code == 422

        # Deprecating the version the route names warns its callers; exchanges carry on.
        deprecated = admin.patch(
            f"/admin/schemas/{subject}/versions/2", json={"state": "deprecated"}
        )
        assert deprecated.status_code == 200
        answer = world.call("POST", "/to-khai", json=GOOD)
        assert answer.status_code == 200
        assert f"deprecated schema version {subject}/2" in answer.headers["warning"]


def test_other_replicas_follow_a_contract_change(hub, database_urls, make_world, upstream, unique):
    """A second hub on the same database validates with the new version, by polling."""
    from tests.conftest import start_hub

    subject = unique("thue.to-khai")
    with hub.admin() as admin:
        world = filing_world(make_world, upstream, admin, subject)
    replicas = start_hub(hub.settings.database_url)
    other = next(replicas)
    try:
        key = {"X-API-Key": world.key}
        url = f"/api/{world.service}/v1/to-khai"
        with other.client() as client:
            assert client.post(url, json=GOOD, headers=key).status_code == 200
            with hub.admin() as admin:
                relaxed = admin.put(
                    f"/admin/schemas/{subject}/config", json={"compatibility": "NONE"}
                )
                assert relaxed.status_code == 200, relaxed.text
                registered(admin, subject, {**FILING, "required": ["ngay_nop"]})
                route = {"method": "POST", "path": "/to-khai", "upstream_path": "/echo/to-khai",
                         "request_schema": {"subject": subject, "version": 2}}  # fmt: skip
                moved = admin.patch(f"/admin/services/{world.service}/v1", json={"routes": [route]})
                assert moved.status_code == 200, moved.text
            undated = {k: v for k, v in GOOD.items() if k != "ngay_nop"}

            def refused() -> int | None:
                """The status of an undated filing, once the replica no longer accepts it."""
                status = client.post(url, json=undated, headers=key).status_code
                return status if status != 200 else None

            status = wait_until(
                refused, timeout=5, what="the replica to validate with version 2 (no 200)"
            )
            assert status == 422
    finally:
        replicas.close()


def test_the_personal_id_rule_is_located_through_references(hub, make_world, upstream, unique):
    """The rule sits in a referenced schema; the 422 still points at the number itself."""
    person, envelope = unique("cong-dan"), unique("ho-so")
    with hub.admin() as admin:
        registered(admin, person, FILING["properties"]["nguoi_nop"])
        wrapper = {"type": "object", "properties": {"chu_ho_so": {"$ref": "cong-dan.json"}}}
        answer = admin.post(
            f"/admin/schemas/{envelope}/versions",
            json={"schema": wrapper,
                  "references": [{"name": "cong-dan.json", "subject": person, "version": 1}]},
        )  # fmt: skip
        assert answer.status_code == 201, answer.text
        route = {"method": "POST", "path": "/ho-so", "upstream_path": "/echo/ho-so",
                 "request_schema": {"subject": envelope, "version": 1}}  # fmt: skip
        world = make_world(
            base_url=upstream, routes=[route], grant={"purposes": ["x"]}, decision=APPROVE
        )
    bad = {"chu_ho_so": {"so_dinh_danh": "012090001234", "ngay_sinh": "19850517"}}
    errors = problem(world.call("POST", "/ho-so", json=bad), 422, "schema-violation")["errors"]
    assert [e["pointer"] for e in errors] == ["/body/chu_ho_so/so_dinh_danh"]
    good = {"chu_ho_so": {"so_dinh_danh": "012090001234", "ngay_sinh": "19900517"}}
    assert world.call("POST", "/ho-so", json=good).status_code == 200
