"""/admin/consumers and their API keys: shown once, stored hashed, several at a time, revocable."""

from __future__ import annotations

from sqlmodel import Session, select

from registry.models import ApiKey
from tests.integration.admin.conftest import Registry, ok, problem


def data_plane_status(reg: Registry, key: str) -> int:
    """401 for a key the hub refuses; 404 (no such service) once the key is accepted."""
    with reg.hub.client(key) as client:
        return client.get("/api/no-such-service/v1/x").status_code


def test_consumer_crud(reg: Registry) -> None:
    agency = reg.agency()
    consumer = reg.consumer(agency)
    name = consumer["name"]
    assert consumer["agency_code"] == agency and consumer["active"] is True
    assert ok(reg.client.get(f"/admin/consumers/{name}"))["id"] == consumer["id"]
    assert name in [c["name"] for c in ok(reg.client.get("/admin/consumers"))]
    assert (
        ok(reg.client.patch(f"/admin/consumers/{name}", json={"active": False}))["active"] is False
    )
    problem(reg.client.patch(f"/admin/consumers/{name}", json={"agency_code": agency}), 422,
            "/agency_code")  # fmt: skip
    problem(reg.client.post("/admin/consumers", json={"name": name, "agency_code": agency,
                                                      "title": "x"}), 409)  # fmt: skip
    problem(reg.client.post("/admin/consumers", json={"name": reg.unique("app"),
            "agency_code": "999.99.99.Z98", "title": "x"}), 422, "/agency_code")  # fmt: skip
    problem(reg.client.post("/admin/consumers", json={"name": "APP", "agency_code": agency,
                                                      "title": "x"}), 422, "/name")  # fmt: skip
    ok(reg.client.post(f"/admin/consumers/{name}/keys", json={}), 201)
    assert reg.client.delete(f"/admin/consumers/{name}").status_code == 204
    problem(reg.client.get(f"/admin/consumers/{name}"), 404)


def test_keys_are_shown_once_and_stored_hashed(reg: Registry) -> None:
    name = reg.consumer()["name"]
    first = ok(reg.client.post(f"/admin/consumers/{name}/keys", json={"label": "primary"}), 201)
    second = ok(reg.client.post(f"/admin/consumers/{name}/keys", json={"label": "rotation"}), 201)
    assert first["key"].startswith(f"lgsp_{first['key_id']}.")
    listed = ok(reg.client.get(f"/admin/consumers/{name}/keys"))
    assert [k["label"] for k in listed] == ["primary", "rotation"]
    for key in listed:
        assert set(key) == {"key_id", "label", "created_at", "expires_at", "revoked_at"}
    text = reg.client.get(f"/admin/consumers/{name}/keys").text + str(reg.changes())
    assert first["key"] not in text and second["key"] not in text

    with Session(reg.hub.hub.runtime.engine) as session:
        rows = session.exec(select(ApiKey).where(ApiKey.key_id == first["key_id"])).all()
    (row,) = rows
    secret_part = first["key"].split(".", 1)[1]
    assert secret_part not in row.key_hash and first["key"] not in row.model_dump_json()
    assert len(row.key_hash) == 64  # HMAC-SHA256 under the pepper

    # Both keys work at once (rotation); revoking one stops it at once and keeps the other.
    assert data_plane_status(reg, first["key"]) == 404
    assert data_plane_status(reg, second["key"]) == 404
    revoked = ok(reg.client.delete(f"/admin/consumers/{name}/keys/{first['key_id']}"))
    assert revoked["revoked_at"] is not None
    assert data_plane_status(reg, first["key"]) == 401
    assert data_plane_status(reg, second["key"]) == 404
    problem(reg.client.delete(f"/admin/consumers/{name}/keys/{first['key_id']}"), 409)
    problem(reg.client.delete(f"/admin/consumers/{name}/keys/nosuchkey123"), 404)


def test_key_rules(reg: Registry) -> None:
    name = reg.consumer()["name"]
    url = f"/admin/consumers/{name}/keys"
    problem(reg.client.post(url, json={"expires_at": "2001-01-01T00:00:00Z"}), 422, "/expires_at")
    problem(reg.client.post(url, json={"expires_at": "soon"}), 422, "/expires_at")
    problem(reg.client.post(url, json={"label": "x" * 101}), 422, "/label")
    problem(reg.client.post("/admin/consumers/nobody-here/keys", json={}), 404)


def test_consumer_with_grants_cannot_be_deleted(reg: Registry) -> None:
    consumer = reg.consumer()["name"]
    service = reg.service()["name"]
    ok(reg.client.post("/admin/grants", json={"consumer": consumer, "service": service}), 201)
    doc = problem(reg.client.delete(f"/admin/consumers/{consumer}"), 409)
    assert service in doc["detail"]


def test_consumers_are_administered(reg: Registry) -> None:
    agency = reg.agency()
    mine, other = reg.consumer(agency)["name"], reg.consumer()["name"]
    with reg.as_key(reg.principal("integrator", agency)) as client:
        assert [c["name"] for c in ok(client.get("/admin/consumers"))] == [mine]
        problem(client.get(f"/admin/consumers/{other}"), 403)
        problem(
            client.post(
                "/admin/consumers",
                json={"name": reg.unique("app"), "agency_code": agency, "title": "x"},
            ),
            403,
        )
        problem(client.post(f"/admin/consumers/{mine}/keys", json={}), 403)
        problem(client.get(f"/admin/consumers/{mine}/keys"), 403)
