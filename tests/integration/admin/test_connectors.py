"""/admin/connectors: field rules, write-only credentials, integrators limited to their agency."""

from __future__ import annotations

import json
import logging
import secrets

import pytest

from tests.integration import sealed
from tests.integration.admin.conftest import UPSTREAM, Base, Registry, ok, problem


def stored_secret(reg: Registry, name: str) -> str | None:
    return sealed.connector_secret(reg.hub.hub.runtime.engine, name)


def test_connector_crud(reg: Registry) -> None:
    agency = reg.agency()
    name = reg.unique("csdl-dan-cu")
    body = {
        "name": name, "agency_code": agency, "kind": "soap", "base_url": "http://dan-cu.local/",
        "options": {"namespace": "urn:dan-cu", "soap_version": "1.2"},
        "retry": {"max_attempts": 2},
    }  # fmt: skip
    created = ok(reg.client.post("/admin/connectors", json=body), 201)
    assert created["base_url"] == "http://dan-cu.local"
    assert created["auth"] == {"type": "none", "secret_set": False}
    assert created["options"]["soap_version"] == "1.2" and created["retry"]["max_attempts"] == 2
    assert ok(reg.client.get(f"/admin/connectors/{name}"))["id"] == created["id"]
    patched = ok(reg.client.patch(f"/admin/connectors/{name}", json={"read_timeout": 3}))
    assert patched["read_timeout"] == 3 and patched["kind"] == "soap"
    assert reg.client.delete(f"/admin/connectors/{name}").status_code == 204
    problem(reg.client.get(f"/admin/connectors/{name}"), 404)


def test_secrets_are_write_only(reg: Registry, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    secret, rotated = f"pw-{secrets.token_hex(8)}", f"pw-{secrets.token_hex(8)}"
    auth = {"type": "basic", "username": "hub", "secret": secret}
    connector = reg.connector(auth=auth)
    name = connector["name"]
    assert connector["auth"] == {"type": "basic", "username": "hub", "secret_set": True}
    assert stored_secret(reg, name) == secret

    # No auth in a PATCH keeps the secret; a given auth block replaces it.
    ok(reg.client.patch(f"/admin/connectors/{name}", json={"base_url": "http://b.local"}))
    assert stored_secret(reg, name) == secret
    rid = secrets.token_hex(8)
    answer = reg.client.patch(
        f"/admin/connectors/{name}",
        json={"auth": {**auth, "secret": rotated}},
        headers={"X-Request-Id": rid},
    )
    assert ok(answer)["auth"]["secret_set"] is True
    assert stored_secret(reg, name) == rotated
    (record,) = reg.changes(request_id=rid)
    assert record["details"]["changes"] == {"auth.secret": ["(hidden)", "(changed)"]}

    seen = [
        reg.client.get(f"/admin/connectors/{name}").text,
        reg.client.get("/admin/connectors").text,
        reg.client.get("/admin/export").text,
        json.dumps(reg.changes()),
        caplog.text,
    ]
    for text in seen:
        assert secret not in text and rotated not in text

    none = {"auth": {"type": "none"}}
    assert (
        ok(reg.client.patch(f"/admin/connectors/{name}", json=none))["auth"]["secret_set"] is False
    )
    assert stored_secret(reg, name) is None


@pytest.mark.parametrize(
    ("fields", "pointer"),
    [
        ({"name": "Bad_Name"}, "/name"),
        ({"name": "-x"}, "/name"),
        ({"kind": "carrier-pigeon"}, "/kind"),
        ({"base_url": "ftp://x"}, "/base_url"),
        ({"base_url": "http://u:p@x.local"}, "/base_url"),
        ({"base_url": "http://x.local/?a=1"}, "/base_url"),
        ({"connect_timeout": 0}, "/connect_timeout"),
        ({"read_timeout": 1000}, "/read_timeout"),
        ({"max_connections": 0}, "/max_connections"),
        ({"retry": {"max_attempts": 11}}, "/retry/max_attempts"),
        ({"retry": {"tries": 1}}, "/retry/tries"),
        ({"options": {"soap_version": "2.0"}}, "/options/soap_version"),
        ({"auth": {"type": "basic", "secret": "x"}}, "/auth/username"),
        ({"auth": {"type": "kerberos"}}, "/auth/type"),
        ({"auth": {"type": "oauth2_client_credentials", "client_id": "a", "secret": "b",
                   "token_url": "gopher://x"}}, "/auth/token_url"),
        ({"auth": {"type": "api_key", "secret": "x" * 4001}}, "/auth/secret"),
        ({"agency_code": "999.99.99.Z99"}, "/agency_code"),
    ],
)  # fmt: skip
def test_connector_field_rules(
    reg: Registry, base: Base, fields: dict[str, object], pointer: str
) -> None:
    body = {"name": reg.unique("conn"), "agency_code": base.agency, "kind": "rest",
            "base_url": UPSTREAM, **fields}  # fmt: skip
    problem(reg.client.post("/admin/connectors", json=body), 422, pointer)


def test_deadline_rules_and_the_default(reg: Registry, base: Base) -> None:
    """The attempt deadline is positive and within the exchange deadline (retry.max_delay);
    none set means connect + read timeout."""
    connector = reg.connector(base.agency, attempt_deadline=4, retry={"max_delay": 8})
    name = connector["name"]
    assert (connector["attempt_deadline"], connector["retry"]["max_delay"]) == (4, 8)
    assert reg.connector(base.agency)["attempt_deadline"] is None

    body = {"name": reg.unique("conn"), "agency_code": base.agency, "kind": "rest",
            "base_url": UPSTREAM}  # fmt: skip
    for fields, pointer in (
        ({"attempt_deadline": 0}, "/attempt_deadline"),
        ({"attempt_deadline": -1}, "/attempt_deadline"),
        ({"attempt_deadline": 11}, "/attempt_deadline"),  # the exchange deadline is 10 s
        ({"attempt_deadline": 5, "retry": {"max_delay": 4}}, "/attempt_deadline"),
        ({"retry": {"max_delay": 0}}, "/retry/max_delay"),
    ):
        problem(reg.client.post("/admin/connectors", json={**body, **fields}), 422, pointer)
    shorter = reg.client.patch(f"/admin/connectors/{name}", json={"retry": {"max_delay": 3}})
    doc = problem(shorter, 422, "/attempt_deadline")
    assert "exchange deadline" in doc["errors"][0]["message"]

    rid = secrets.token_hex(8)
    back = reg.client.patch(
        f"/admin/connectors/{name}", json={"attempt_deadline": None}, headers={"X-Request-Id": rid}
    )
    assert ok(back)["attempt_deadline"] is None
    (record,) = reg.changes(request_id=rid)
    assert record["details"]["changes"] == {"attempt_deadline": [4, None]}


def test_soap_connector_needs_a_namespace(reg: Registry, base: Base) -> None:
    body = {"name": reg.unique("conn"), "agency_code": base.agency, "kind": "soap",
            "base_url": UPSTREAM}  # fmt: skip
    doc = problem(reg.client.post("/admin/connectors", json=body), 422)
    assert "namespace" in doc["errors"][0]["message"]


def test_patch_rules(reg: Registry) -> None:
    name = reg.connector()["name"]
    problem(reg.client.patch(f"/admin/connectors/{name}", json={"kind": "soap"}), 422, "/kind")
    problem(reg.client.patch(f"/admin/connectors/{name}", json={"auth": None}), 422, "/auth")
    problem(reg.client.patch("/admin/connectors/nope-404", json={}), 404)


def test_duplicate_and_referenced(reg: Registry) -> None:
    service = reg.service()
    name = service["connector"]
    body = {"name": name, "agency_code": service["agency_code"], "kind": "rest",
            "base_url": UPSTREAM}  # fmt: skip
    problem(reg.client.post("/admin/connectors", json=body), 409)
    doc = problem(reg.client.delete(f"/admin/connectors/{name}"), 409)
    assert service["name"] in doc["detail"]


def test_integrator_manages_only_its_agency(reg: Registry) -> None:
    ours, theirs = reg.agency(), reg.agency()
    foreign = reg.connector(theirs)["name"]
    key = reg.principal("integrator", ours)
    with reg.as_key(key) as client:
        body = {"name": reg.unique("conn"), "agency_code": ours, "kind": "rest",
                "base_url": UPSTREAM}  # fmt: skip
        mine = ok(client.post("/admin/connectors", json=body), 201)["name"]
        assert [c["name"] for c in ok(client.get("/admin/connectors"))] == [mine]
        problem(client.post("/admin/connectors", json={**body, "agency_code": theirs,
                                                       "name": reg.unique("c")}), 403)  # fmt: skip
        problem(client.get(f"/admin/connectors/{foreign}"), 403)
        problem(client.patch(f"/admin/connectors/{foreign}", json={"read_timeout": 2}), 403)
        problem(client.delete(f"/admin/connectors/{foreign}"), 403)
        ok(client.patch(f"/admin/connectors/{mine}", json={"read_timeout": 2}))
    assert foreign in [c["name"] for c in ok(reg.client.get("/admin/connectors"))]
