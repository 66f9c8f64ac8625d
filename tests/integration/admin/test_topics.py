"""/admin/topics: schema, key and partitions, who may publish and subscribe, owner's access."""

from __future__ import annotations

import secrets
from typing import Any

import pytest

from tests.integration.admin.conftest import Base, Registry, ok, problem

STATUS: dict[str, Any] = {
    "type": "object",
    "properties": {"MaHoSo": {"type": "string"}, "TrangThai": {"type": "integer"}},
    "required": ["MaHoSo"],
}


def subject(reg: Registry, *, versions: int = 1) -> str:
    """A registered subject with `versions` versions (each one more optional field)."""
    name = reg.unique("ho-so.trang-thai")
    for i in range(versions):
        schema = {
            **STATUS,
            "properties": {**STATUS["properties"], **{f"f{j}": {} for j in range(i)}},
        }
        ok(reg.client.post(f"/admin/schemas/{name}/versions", json={"schema": schema}), 201)
    return name


def topic_body(
    reg: Registry, agency: str, subject_name: str | None = None, **fields: Any
) -> dict[str, Any]:
    return {
        "name": f"ho-so.t{secrets.token_hex(4)}",
        "agency_code": agency,
        "title": "Trạng thái hồ sơ",
        "schema": {"subject": subject_name or subject(reg), "version": 1},
        "key_pointer": "/MaHoSo",
        **fields,
    }


def topic(reg: Registry, agency: str | None = None, **fields: Any) -> dict[str, Any]:
    body = topic_body(reg, agency or reg.agency(), **fields)
    return dict(ok(reg.client.post("/admin/topics", json=body), 201))


def rid() -> dict[str, str]:
    return {"X-Request-Id": secrets.token_hex(8)}


def test_topic_crud_with_audit_records(reg: Registry) -> None:
    agency = reg.agency()
    publisher, reader = reg.consumer(agency)["name"], reg.consumer()["name"]
    name_ = subject(reg, versions=2)
    body = topic_body(reg, agency, name_, publishers=[publisher], subscribers=[reader],
                      partitions=4)  # fmt: skip
    headers = rid()
    created = ok(reg.client.post("/admin/topics", json=body, headers=headers), 201)
    name = created["name"]
    assert created["schema"] == {"subject": name_, "version": 1}
    assert (created["partitions"], created["key_pointer"]) == (4, "/MaHoSo")
    assert (created["publishers"], created["subscribers"]) == ([publisher], [reader])
    (record,) = reg.changes(request_id=headers["X-Request-Id"])
    assert (record["action"], record["object_type"], record["object_key"]) == (
        "create", "topic", name,
    )  # fmt: skip
    assert record["details"]["changes"]["schema"] == [None, {"subject": name_, "version": 1}]

    assert ok(reg.client.get(f"/admin/topics/{name}"))["id"] == created["id"]
    assert name in {t["name"] for t in ok(reg.client.get("/admin/topics"))}

    headers = rid()
    patch = {"title": "Khác", "schema": {"subject": name_, "version": 2}, "publishers": []}
    patched = ok(reg.client.patch(f"/admin/topics/{name}", json=patch, headers=headers))
    assert patched["schema"]["version"] == 2 and patched["publishers"] == []
    (record,) = reg.changes(request_id=headers["X-Request-Id"])
    assert record["action"] == "update"
    assert record["details"]["changes"]["publishers"] == [[publisher], []]
    # The same change again changes nothing and records nothing.
    headers = rid()
    ok(reg.client.patch(f"/admin/topics/{name}", json=patch, headers=headers))
    assert reg.changes(request_id=headers["X-Request-Id"]) == []

    headers = rid()
    assert reg.client.delete(f"/admin/topics/{name}", headers=headers).status_code == 204
    assert [r["action"] for r in reg.changes(request_id=headers["X-Request-Id"])] == ["delete"]
    problem(reg.client.get(f"/admin/topics/{name}"), 404)
    problem(reg.client.patch(f"/admin/topics/{name}", json={"title": "x"}), 404)
    problem(reg.client.delete(f"/admin/topics/{name}"), 404)


@pytest.mark.parametrize(
    ("fields", "pointer"),
    [
        ({"name": "Ho-So.Status"}, "/name"),
        ({"name": "ho-so..trang-thai"}, "/name"),
        ({"name": "1ho-so"}, "/name"),
        ({"schema": {"subject": "no-such-subject", "version": 1}}, "/schema"),
        ({"schema": {"subject": "x", "version": 0}}, "/schema/version"),
        ({"schema": None}, "/schema"),
        ({"publishers": ["no-such-app-x1"]}, "/publishers/0"),
        ({"subscribers": ["Bad Name"]}, "/subscribers"),
        ({"partitions": 0}, "/partitions"),
        ({"partitions": 65}, "/partitions"),
        ({"key_pointer": "MaHoSo"}, "/key_pointer"),
        ({"max_message_bytes": 10}, "/max_message_bytes"),
        ({"agency_code": "999.99.99.Z99"}, "/agency_code"),
        ({"title": ""}, "/title"),
        ({"colour": "red"}, "/colour"),
    ],
)  # fmt: skip
def test_topic_field_rules(reg: Registry, base: Base, fields: dict[str, Any], pointer: str) -> None:
    body = topic_body(reg, base.agency, **fields)
    problem(reg.client.post("/admin/topics", json=body), 422, pointer)


def test_unknown_subscriber_is_pointed_at(reg: Registry, base: Base) -> None:
    body = topic_body(reg, base.agency, subscribers=[base.consumer, "zz-no-such-app"])
    problem(reg.client.post("/admin/topics", json=body), 422, "/subscribers/1")


def test_duplicate_topic(reg: Registry, base: Base) -> None:
    body = topic_body(reg, base.agency)
    ok(reg.client.post("/admin/topics", json=body), 201)
    doc = problem(reg.client.post("/admin/topics", json=body), 409)
    assert body["name"] in doc["detail"]


def test_key_and_partitions_are_fixed(reg: Registry) -> None:
    name = topic(reg)["name"]
    url = f"/admin/topics/{name}"
    problem(reg.client.patch(url, json={"partitions": 6}), 422, "/partitions")
    problem(reg.client.patch(url, json={"key_pointer": "/Khac"}), 422, "/key_pointer")
    problem(reg.client.patch(url, json={"agency_code": "000.00.00.G10"}), 422, "/agency_code")
    problem(reg.client.patch(url, json={"schema": {"subject": "nope-x", "version": 1}}), 422,
            "/schema")  # fmt: skip
    problem(reg.client.patch(url, json={"publishers": ["no-such-app-x2"]}), 422, "/publishers/0")
    assert ok(reg.client.get(url))["partitions"] == 3


def test_deleted_schema_versions_are_refused_and_used_ones_kept(reg: Registry, base: Base) -> None:
    name_ = subject(reg, versions=2)
    url = f"/admin/schemas/{name_}/versions"
    ok(reg.client.delete(f"{url}/2"))
    body = topic_body(reg, base.agency, name_)
    doc = problem(reg.client.post("/admin/topics", json={**body, "schema": {"subject": name_,
                  "version": 2}}), 422, "/schema")  # fmt: skip
    assert "deleted" in doc["detail"]
    created = ok(reg.client.post("/admin/topics", json=body), 201)
    # The version a topic uses counts as used: it cannot be deleted under it.
    assert ok(reg.client.get(f"{url}/1"))["used_by"]["topics"] == [created["name"]]
    doc = problem(reg.client.delete(f"{url}/1"), 409)
    assert created["name"] in doc["detail"]
    problem(reg.client.delete(f"/admin/schemas/{name_}"), 409)
    assert reg.client.delete(f"/admin/topics/{created['name']}").status_code == 204
    ok(reg.client.delete(f"{url}/1"))


def test_delete_is_refused_while_subscribed(reg: Registry) -> None:
    agency = reg.agency()
    consumer = reg.consumer(agency)["name"]
    name = topic(reg, agency)["name"]
    sub = reg.unique("sub")
    body = {"name": sub, "topic": name, "consumer": consumer, "delivery": "group"}
    ok(reg.client.post("/admin/subscriptions", json=body), 201)
    doc = problem(reg.client.delete(f"/admin/topics/{name}"), 409)
    assert sub in doc["detail"]
    assert reg.client.delete(f"/admin/subscriptions/{sub}").status_code == 204
    assert reg.client.delete(f"/admin/topics/{name}").status_code == 204


def test_a_subscriber_with_a_subscription_cannot_be_removed(reg: Registry) -> None:
    owner, other = reg.agency(), reg.agency()
    reader = reg.consumer(other)["name"]
    name = topic(reg, owner, subscribers=[reader])["name"]
    sub = reg.unique("sub")
    body = {"name": sub, "topic": name, "consumer": reader, "delivery": "group"}
    ok(reg.client.post("/admin/subscriptions", json=body), 201)
    doc = problem(reg.client.patch(f"/admin/topics/{name}", json={"subscribers": []}), 409,
                  "/subscribers")  # fmt: skip
    assert sub in doc["detail"]
    ok(reg.client.delete(f"/admin/subscriptions/{sub}"), 204)
    assert (
        ok(reg.client.patch(f"/admin/topics/{name}", json={"subscribers": []}))["subscribers"] == []
    )


def test_integrators_manage_their_agency_topics(reg: Registry) -> None:
    ours, theirs, third = reg.agency(), reg.agency(), reg.agency()
    our_app = reg.consumer(ours)["name"]
    foreign = topic(reg, theirs)["name"]
    naming_us = topic(reg, third, subscribers=[our_app])["name"]
    key = reg.principal("integrator", ours)
    with reg.as_key(key) as client:
        body = topic_body(reg, ours)
        mine = ok(client.post("/admin/topics", json=body), 201)["name"]
        problem(client.post("/admin/topics", json=topic_body(reg, theirs)), 403)
        problem(client.get(f"/admin/topics/{foreign}"), 403)
        problem(client.patch(f"/admin/topics/{foreign}", json={"title": "x"}), 403)
        problem(client.delete(f"/admin/topics/{foreign}"), 403)
        # A topic that names one of our consumers may be read, not changed.
        assert ok(client.get(f"/admin/topics/{naming_us}"))["subscribers"] == [our_app]
        problem(client.patch(f"/admin/topics/{naming_us}", json={"title": "x"}), 403)
        assert {t["name"] for t in ok(client.get("/admin/topics"))} == {mine, naming_us}
        ok(client.patch(f"/admin/topics/{mine}", json={"description": "của chúng tôi"}))
        assert client.delete(f"/admin/topics/{mine}").status_code == 204
    auditor = reg.principal("auditor")
    with reg.as_key(auditor) as client:
        problem(client.get("/admin/topics"), 403)
