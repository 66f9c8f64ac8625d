"""/admin/services: routes, schemas, lifecycle, agency derived from the connector."""

from __future__ import annotations

from typing import Any

import pytest

from tests.integration.admin.conftest import ROUTE, Base, Registry, ok, problem


def test_service_crud(reg: Registry) -> None:
    connector = reg.connector()
    service = reg.service(
        connector["name"], personal_data=True, subject_pointer="/path/so_dinh_danh"
    )
    name = service["name"]
    assert service["agency_code"] == connector["agency_code"] and service["status"] == "draft"
    assert service["routes"][0]["path"] == "/cong-dan/{so_dinh_danh}"
    assert ok(reg.client.get(f"/admin/services/{name}/v1"))["id"] == service["id"]
    assert [s["name"] for s in ok(reg.client.get("/admin/services", params={"name": name}))] == [
        name
    ]
    listed = ok(reg.client.get("/admin/services", params={"name": name, "status": "published"}))
    assert listed == []
    patched = ok(reg.client.patch(f"/admin/services/{name}/v1", json={"title": "Khác"}))
    assert patched["title"] == "Khác"
    assert reg.client.delete(f"/admin/services/{name}/v1").status_code == 204
    problem(reg.client.get(f"/admin/services/{name}/v1"), 404)


def test_lifecycle(reg: Registry) -> None:
    name = reg.service()["name"]
    url = f"/admin/services/{name}/v1"
    doc = problem(reg.client.patch(url, json={"status": "deprecated"}), 409, "/status")
    assert "published" in doc["detail"]
    for status in ("published", "deprecated", "published", "deprecated", "retired"):
        assert ok(reg.client.patch(url, json={"status": status}))["status"] == status
    doc = problem(reg.client.patch(url, json={"status": "published"}), 409)
    assert "retired" in doc["detail"]
    listed = ok(reg.client.get("/admin/services", params={"name": name, "status": "retired"}))
    assert [s["status"] for s in listed] == ["retired"]


def test_published_service_cannot_be_deleted(reg: Registry) -> None:
    name = reg.service(status="published")["name"]
    doc = problem(reg.client.delete(f"/admin/services/{name}/v1"), 409)
    assert "retire" in doc["detail"]


def test_duplicate_service_version(reg: Registry) -> None:
    service = reg.service()
    body = {"name": service["name"], "version": "v1", "connector": service["connector"],
            "title": "x", "routes": [ROUTE]}  # fmt: skip
    problem(reg.client.post("/admin/services", json=body), 409)
    ok(reg.client.post("/admin/services", json={**body, "version": "v2"}), 201)


UNKNOWN_SCHEMA = {"subject": "no-such-subject", "version": 1}


@pytest.mark.parametrize(
    ("fields", "pointer"),
    [
        ({"name": "Dan Cu"}, "/name"),
        ({"version": "1"}, "/version"),
        ({"version": "v0"}, "/version"),
        ({"title": ""}, "/title"),
        ({"status": "live"}, "/status"),
        ({"routes": []}, "/routes"),
        ({"routes": [{"method": "GET", "path": "cong-dan"}]}, "/routes/0/path"),
        ({"routes": [ROUTE, {"method": "GET", "path": "/x/{Bad}"}]}, "/routes/1/path"),
        ({"routes": [{"method": "FETCH", "path": "/x"}]}, "/routes/0/method"),
        ({"routes": [{**ROUTE, "response_schema": UNKNOWN_SCHEMA}]},
         "/routes/0/response_schema"),
        ({"routes": [{**ROUTE, "request_schema": {"subject": "s", "version": 0}}]},
         "/routes/0/request_schema/version"),
        ({"routes": [{**ROUTE, "request_schema": {"type": "object"}}]},
         "/routes/0/request_schema/subject"),
        ({"routes": [ROUTE, {"method": "GET", "path": "/cong-dan/{id}"}]}, "/routes"),
        ({"routes": [{**ROUTE, "fault_status": {"x": 200}}]}, "/routes/0/fault_status"),
        ({"routes": [{**ROUTE, "operation": "1bad"}]}, "/routes/0/operation"),
        ({"routes": [{**ROUTE, "subject_pointer": "no-slash"}]}, "/routes/0/subject_pointer"),
        ({"routes": [{**ROUTE, "colour": "red"}]}, "/routes/0/colour"),
        ({"connector": "no-such-connector"}, "/connector"),
        ({"personal_data": True}, "/subject_pointer"),
    ],
)  # fmt: skip
def test_service_field_rules(
    reg: Registry, base: Base, fields: dict[str, Any], pointer: str
) -> None:
    body = {"name": reg.unique("svc"), "version": "v1", "connector": base.connector, "title": "t",
            "routes": [ROUTE], **fields}  # fmt: skip
    problem(reg.client.post("/admin/services", json=body), 422, pointer)


def test_soap_routes_need_an_operation(reg: Registry, base: Base) -> None:
    soap = base.soap_connector
    body: dict[str, Any] = {
        "name": reg.unique("svc"),
        "version": "v1",
        "connector": soap,
        "title": "t",
        "routes": [{**ROUTE, "operation": "TraCuu"}, {"method": "POST", "path": "/x"}],
    }
    problem(reg.client.post("/admin/services", json=body), 422, "/routes/1/operation")
    body["routes"][1]["operation"] = "Ghi"
    ok(reg.client.post("/admin/services", json=body), 201)


def test_patch_revalidates_the_whole_service(reg: Registry) -> None:
    name = reg.service()["name"]
    url = f"/admin/services/{name}/v1"
    problem(reg.client.patch(url, json={"personal_data": True}), 422)
    problem(reg.client.patch(url, json={"connector": "nope-nope"}), 422, "/connector")
    problem(reg.client.patch(url, json={"routes": [{"method": "GET", "path": "x"}]}), 422,
            "/routes/0/path")  # fmt: skip
    problem(reg.client.patch(url, json={"version": "v2"}), 422, "/version")
    problem(reg.client.get("/admin/services", params={"status": "live"}), 422, "/query/status")


def test_integrator_limited_to_its_agency(reg: Registry) -> None:
    ours, theirs = reg.agency(), reg.agency()
    our_conn, their_conn = reg.connector(ours)["name"], reg.connector(theirs)["name"]
    foreign = reg.service(their_conn)["name"]
    key = reg.principal("integrator", ours)
    with reg.as_key(key) as client:
        body = {"name": reg.unique("svc"), "version": "v1", "connector": our_conn, "title": "t",
                "routes": [ROUTE]}  # fmt: skip
        mine = ok(client.post("/admin/services", json=body), 201)
        assert mine["agency_code"] == ours
        problem(client.post("/admin/services", json={**body, "connector": their_conn}), 403)
        problem(client.get(f"/admin/services/{foreign}/v1"), 403)
        problem(client.patch(f"/admin/services/{foreign}/v1", json={"title": "x"}), 403)
        url = f"/admin/services/{mine['name']}/v1"
        problem(client.patch(url, json={"connector": their_conn}), 403)
        assert ok(client.get(url))["connector"] == our_conn
        assert {s["agency_code"] for s in ok(client.get("/admin/services"))} == {ours}


def test_remote_references_are_refused_without_fetching(reg: Registry, base: Base) -> None:
    """A schema may not make the hub fetch a URL (SSRF): refused, and nothing is requested."""
    import socket
    import threading

    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        listener.settimeout(0.5)
        port = listener.getsockname()[1]
        arrived: list[bool] = []

        def watch() -> None:
            try:
                conn, _ = listener.accept()
                conn.close()
                arrived.append(True)
            except OSError:
                pass

        watcher = threading.Thread(target=watch)
        watcher.start()
        remote = {"properties": {"a": {"$ref": f"http://127.0.0.1:{port}/schema.json"}}}
        url = f"/admin/schemas/{reg.unique('remote')}/versions"
        doc = problem(reg.client.post(url, json={"schema": remote}), 422,
                      "/schema/properties/a/$ref")  # fmt: skip
        watcher.join()
    assert "never fetches a URL" in str(doc)
    assert arrived == []
