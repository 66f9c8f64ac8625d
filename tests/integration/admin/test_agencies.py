"""/admin/agencies through real HTTP, on SQLite and PostgreSQL."""

from __future__ import annotations

import pytest

from tests.integration.admin.conftest import Registry, ok, problem
from tests.integration.conftest import random_agency


def test_agency_lifecycle(reg: Registry) -> None:
    code = random_agency()
    created = ok(reg.client.post("/admin/agencies", json={"code": code, "name": "Sở Tư pháp"}), 201)
    assert created == {"code": code, "name": "Sở Tư pháp", "description": ""}
    assert ok(reg.client.get(f"/admin/agencies/{code}"))["name"] == "Sở Tư pháp"
    assert code in [a["code"] for a in ok(reg.client.get("/admin/agencies"))]

    patched = ok(reg.client.patch(f"/admin/agencies/{code}", json={"description": "Tư pháp"}))
    assert patched["description"] == "Tư pháp" and patched["name"] == "Sở Tư pháp"

    assert reg.client.delete(f"/admin/agencies/{code}").status_code == 204
    problem(reg.client.get(f"/admin/agencies/{code}"), 404)
    problem(reg.client.delete(f"/admin/agencies/{code}"), 404)


def test_duplicate_agency_is_a_conflict(reg: Registry) -> None:
    code = reg.agency()
    doc = problem(reg.client.post("/admin/agencies", json={"code": code, "name": "Again"}), 409)
    assert code in doc["detail"]


@pytest.mark.parametrize(
    ("body", "pointer"),
    [
        ({"code": "12.H12", "name": "x"}, "/code"),
        ({"code": "000.00.12.h12", "name": "x"}, "/code"),
        ({"code": "000.00.12.H12", "name": ""}, "/name"),
        ({"code": "000.00.12.H12", "name": "x" * 201}, "/name"),
        ({"code": "000.00.12.H12"}, "/name"),
        ({"code": "000.00.12.H12", "name": "x", "colour": "red"}, "/colour"),
        ({"code": "000.00.12.H12", "name": "x\u0000"}, "/name"),
    ],
)
def test_agency_field_rules(reg: Registry, body: dict[str, object], pointer: str) -> None:
    problem(reg.client.post("/admin/agencies", json=body), 422, pointer)


def test_patch_cannot_blank_the_name(reg: Registry) -> None:
    code = reg.agency()
    problem(reg.client.patch(f"/admin/agencies/{code}", json={"name": None}), 422, "/name")
    problem(reg.client.patch(f"/admin/agencies/{code}", json={"code": "x"}), 422, "/code")


def test_agency_still_referenced_cannot_be_deleted(reg: Registry) -> None:
    connector = reg.connector()
    doc = problem(reg.client.delete(f"/admin/agencies/{connector['agency_code']}"), 409)
    assert connector["name"] in doc["detail"]


def test_only_administrators_write_agencies(reg: Registry) -> None:
    code = reg.agency()
    integrator = reg.principal("integrator", code)
    with reg.as_key(integrator) as client:
        assert ok(client.get(f"/admin/agencies/{code}"))["code"] == code
        problem(client.post("/admin/agencies", json={"code": random_agency(), "name": "x"}), 403)
        problem(client.patch(f"/admin/agencies/{code}", json={"name": "y"}), 403)
        problem(client.delete(f"/admin/agencies/{code}"), 403)


def test_changes_are_recorded(reg: Registry) -> None:
    code = random_agency()
    answer = reg.client.post(
        "/admin/agencies", json={"code": code, "name": "Sở Y tế"}, headers={"X-Request-Id": code}
    )
    ok(answer, 201)
    (record,) = reg.changes(request_id=code)
    assert record["action"] == "create" and record["object_type"] == "agency"
    assert record["object_key"] == code and record["actor"].startswith("bootstrap-")
    assert record["details"]["changes"]["name"] == [None, "Sở Y tế"]


def test_a_malformed_body_is_placed_by_line_and_column(reg: Registry) -> None:
    body = b'{\n  "code": "000.00.12.H12",\n  "name": ,\n}'
    answer = reg.client.post(
        "/admin/agencies", content=body, headers={"content-type": "application/json"}
    )
    doc = problem(answer, 400, "")
    assert doc["type"].endswith("/malformed-json")
    assert doc["detail"].endswith("at line 3, column 11"), doc["detail"]
