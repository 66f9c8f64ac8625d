"""/admin/principals and who may call the admin API at all."""

from __future__ import annotations

from collections.abc import Callable

from sqlmodel import Session, select

from registry.models import Principal
from tests.conftest import RunningHub, start_hub
from tests.integration.admin.conftest import Registry, ok, problem


def test_principals_are_issued_once_and_revoked(reg: Registry) -> None:
    agency = reg.agency()
    name = reg.unique("integrator")
    body = {"name": name, "role": "integrator", "agency_code": agency}
    issued = ok(reg.client.post("/admin/principals", json=body), 201)
    assert issued["key"].startswith(f"lgsp_{issued['key_id']}.")
    listed = {p["name"]: p for p in ok(reg.client.get("/admin/principals"))}
    assert set(listed[name]) == {"id", "name", "role", "agency_code", "key_id", "created_at",
                                 "revoked_at"}  # fmt: skip
    with Session(reg.hub.hub.runtime.engine) as session:
        row = session.exec(select(Principal).where(Principal.name == name)).one()
    assert issued["key"].split(".")[1] not in row.model_dump_json()

    with reg.as_key(issued["key"]) as client:
        ok(client.get("/admin/connectors"))
    revoked = ok(reg.client.delete(f"/admin/principals/{name}"))
    assert revoked["revoked_at"] is not None
    with reg.as_key(issued["key"]) as client:
        assert problem(client.get("/admin/connectors"), 401)["title"] == "Invalid key"
    problem(reg.client.delete(f"/admin/principals/{name}"), 409)
    problem(reg.client.delete("/admin/principals/nobody-here"), 404)
    problem(reg.client.post("/admin/principals", json={"name": name, "role": "auditor"}), 409)


def test_principal_rules(reg: Registry) -> None:
    url = "/admin/principals"
    problem(
        reg.client.post(url, json={"name": reg.unique("i"), "role": "integrator"}),
        422,
        "/agency_code",
    )
    problem(reg.client.post(url, json={"name": reg.unique("i"), "role": "root"}), 422, "/role")
    problem(reg.client.post(url, json={"name": "Bad Name", "role": "auditor"}), 422, "/name")
    problem(
        reg.client.post(
            url,
            json={"name": reg.unique("i"), "role": "integrator", "agency_code": "999.99.99.Z97"},
        ),
        422,
        "/agency_code",
    )


def test_authentication_and_roles(reg: Registry) -> None:
    with reg.hub.client() as anonymous:
        doc = problem(anonymous.get("/admin/agencies"), 401)
        assert "X-API-Key" in doc["detail"]
    for bad in ("nonsense", "lgsp_aaaaaaaaaaaa." + "A" * 43):
        with reg.hub.client(bad) as client:
            problem(client.post("/admin/agencies", json={"code": "000.00.00.A00", "name": "x"}),
                    401)  # fmt: skip
    auditor = reg.principal("auditor")
    with reg.as_key(auditor) as client:
        for method, path in [("POST", "/admin/agencies"), ("POST", "/admin/connectors"),
                             ("POST", "/admin/grants"), ("GET", "/admin/connectors"),
                             ("POST", "/admin/principals"), ("POST", "/admin/apply"),
                             ("DELETE", "/admin/principals/x")]:  # fmt: skip
            problem(client.request(method, path, json={}), 403)
    integrator = reg.principal("integrator", reg.agency())
    with reg.as_key(integrator) as client:
        problem(client.get("/admin/principals"), 403)
        problem(client.post("/admin/principals", json={"name": "x", "role": "administrator"}), 403)


def test_the_last_administrator_stays(hub: RunningHub, database_urls: Callable[[str], str]) -> None:
    backend = "sqlite" if hub.settings.is_sqlite else "postgresql"
    for fresh in start_hub(database_urls(backend)):
        with fresh.admin() as boot:
            (me,) = ok(boot.get("/admin/principals"))
            doc = problem(boot.delete(f"/admin/principals/{me['name']}"), 409)
            assert "last active administrator" in doc["detail"]
            other = ok(
                boot.post(
                    "/admin/principals", json={"name": "second-admin", "role": "administrator"}
                ),
                201,
            )
        with fresh.client(other["key"]) as second:
            ok(second.delete(f"/admin/principals/{me['name']}"))
            problem(second.delete("/admin/principals/second-admin"), 409)
        with fresh.admin() as boot:
            problem(boot.get("/admin/agencies"), 401)
