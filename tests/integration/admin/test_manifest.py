"""POST /admin/apply and GET /admin/export: diffs, dry runs, idempotence, all-or-nothing."""

from __future__ import annotations

import copy
import secrets
from typing import Any

from tests.integration.admin.conftest import UPSTREAM, Registry, ok, problem
from tests.integration.conftest import random_agency


def manifest(reg: Registry, *, secret: str = "mat-khau") -> dict[str, Any]:
    agency = random_agency()
    connector, service, consumer = (
        reg.unique("csdl-dan-cu"),
        reg.unique("dan-cu"),
        reg.unique("app"),
    )
    return {
        "apiVersion": "lgsp.laichau.gov.vn/v1",
        "kind": "Manifest",
        "agencies": [{"code": agency, "name": "Công an tỉnh"}],
        "connectors": [{
            "name": connector, "agency_code": agency, "kind": "rest", "base_url": UPSTREAM,
            "auth": {"type": "basic", "username": "hub", "secret": secret},
        }],
        "services": [{
            "name": service, "version": "v1", "connector": connector, "title": "Dân cư",
            "status": "published", "routes": [{"method": "GET", "path": "/cong-dan/{id}"}],
        }],
        "consumers": [{"name": consumer, "agency_code": agency, "title": "Một cửa"}],
        "grants": [{"consumer": consumer, "service": service, "purposes": ["xac-thuc"],
                    "valid_until": "2999-12-31T00:00:00Z", "status": "approved"}],
    }  # fmt: skip


def apply(reg: Registry, doc: dict[str, Any], *, dry_run: bool = False, **kw: Any) -> Any:
    params = {"dry_run": str(dry_run).lower()}
    return reg.client.post("/admin/apply", json=doc, params=params, **kw)


def actions(result: dict[str, Any]) -> list[tuple[str, str]]:
    return [(o["kind"], o["action"]) for o in result["objects"]]


def test_dry_run_apply_and_idempotence(reg: Registry) -> None:
    doc = manifest(reg)
    connector = doc["connectors"][0]["name"]
    dry = ok(apply(reg, doc, dry_run=True))
    assert dry["dry_run"] is True and dry["applied"] is False
    assert actions(dry) == [(k, "create") for k in
                            ("agency", "connector", "service", "consumer", "grant")]  # fmt: skip
    assert "never deletes" in dry["note"]
    problem(reg.client.get(f"/admin/connectors/{connector}"), 404)

    done = ok(apply(reg, doc))
    assert done["applied"] is True and done["summary"] == {"create": 5, "update": 0, "unchanged": 0}
    assert ok(reg.client.get(f"/admin/connectors/{connector}"))["auth"]["secret_set"] is True
    (grant,) = ok(reg.client.get("/admin/grants", params={"consumer": doc["consumers"][0]["name"]}))
    assert grant["status"] == "approved" and grant["decided_by"].startswith("bootstrap-")

    rid = secrets.token_hex(8)
    again = ok(apply(reg, doc, headers={"X-Request-Id": rid}))
    assert again["applied"] is False and again["revision"] == done["revision"]
    assert {o["action"] for o in again["objects"]} == {"unchanged"}
    assert reg.changes(request_id=rid) == []


def test_updates_show_field_changes_and_hide_secrets(reg: Registry) -> None:
    doc = manifest(reg, secret="first-secret")
    ok(apply(reg, doc))
    changed = copy.deepcopy(doc)
    changed["connectors"][0]["base_url"] = "http://b.local"
    changed["connectors"][0]["auth"]["secret"] = "second-secret"
    changed["grants"][0]["purposes"] = ["thong-ke"]
    del changed["grants"][0]["status"]
    rid = secrets.token_hex(8)
    result = ok(apply(reg, changed, headers={"X-Request-Id": rid}))
    by_kind = {o["kind"]: o for o in result["objects"]}
    assert by_kind["connector"]["changes"] == {
        "base_url": [UPSTREAM, "http://b.local"], "auth.secret": ["(hidden)", "(changed)"],
    }  # fmt: skip
    assert by_kind["grant"]["changes"]["status"] == ["approved", "requested"]
    assert by_kind["service"]["action"] == "unchanged"
    records = reg.changes(request_id=rid)
    assert sorted(r["object_type"] for r in records) == ["connector", "grant"]
    assert "second-secret" not in str(records) + str(result)

    # Without a secret, the stored one is kept.
    del changed["connectors"][0]["auth"]["secret"]
    assert {o["action"] for o in ok(apply(reg, changed))["objects"]} == {"unchanged"}


def test_all_or_nothing_with_pointers(reg: Registry) -> None:
    doc = manifest(reg)
    agency = doc["agencies"][0]["code"]
    bad = copy.deepcopy(doc)
    bad["services"][0]["routes"][0]["path"] = "no-slash"
    problem(apply(reg, bad), 422, "/services/0/routes/0/path")
    bad = copy.deepcopy(doc)
    bad["services"].append({**bad["services"][0], "name": reg.unique("s"), "connector": "nope-x"})
    problem(apply(reg, bad), 422, "/services/1/connector")
    bad = copy.deepcopy(doc)
    bad["services"].append(bad["services"][0])
    problem(apply(reg, bad), 422, "/services/1")
    bad = copy.deepcopy(doc)
    bad["grants"][0] |= {"status": "refused", "reason": "no"}
    problem(apply(reg, bad), 422, "/grants/0")
    bad = copy.deepcopy(doc)
    bad["connectors"][0]["auth"]["secret"] = {"env": "POPDB_PASSWORD"}
    problem(apply(reg, bad), 422, "/connectors/0/auth/secret")
    # Rules across fields point at the field to change, inside the manifest.
    bad = copy.deepcopy(doc)
    bad["connectors"][0] |= {"kind": "soap"}
    problem(apply(reg, bad), 422, "/connectors/0/options/namespace")
    bad = copy.deepcopy(doc)
    bad["services"][0] |= {"personal_data": True}
    problem(apply(reg, bad), 422, "/services/0/subject_pointer")
    problem(apply(reg, {**doc, "apiVersion": "v2"}), 422, "/apiVersion")
    problem(apply(reg, {**doc, "kind": "List"}), 422, "/kind")
    problem(apply(reg, {**doc, "widgets": []}), 422, "/widgets")
    problem(apply(reg, {**doc, "agencies": ["x"]}), 422, "/agencies/0")
    problem(
        apply(reg, {**doc, "agencies": [{"code": "bad", "name": "x"}]}), 422, "/agencies/0/code"
    )
    problem(reg.client.get(f"/admin/agencies/{agency}"), 404)  # nothing was applied


def test_integrators_apply_for_their_agency_without_deciding(reg: Registry) -> None:
    doc = manifest(reg)
    agency = doc["agencies"][0]
    ok(reg.client.post("/admin/agencies", json=agency), 201)
    ok(reg.client.post("/admin/consumers", json=doc["consumers"][0]), 201)
    integrator = reg.principal("integrator", agency["code"])
    with reg.as_key(integrator) as client:
        refused = client.post("/admin/apply", json=doc)
        problem(refused, 403, "/grants/0/status")
        del doc["grants"][0]["status"]
        result = ok(client.post("/admin/apply", json=doc))
        assert actions(result)[0] == ("agency", "unchanged")
        foreign = manifest(reg)
        problem(client.post("/admin/apply", json={**foreign, "grants": [], "consumers": []}), 403,
                "/agencies/0")  # fmt: skip
        exported = ok(client.get("/admin/export"))
    assert [a["code"] for a in exported["agencies"]] == [agency["code"]]
    assert [c["name"] for c in exported["connectors"]] == [doc["connectors"][0]["name"]]
    assert exported["grants"][0]["status"] == "requested"


def test_export_round_trip(reg: Registry) -> None:
    doc = manifest(reg, secret="round-trip-secret")
    ok(apply(reg, doc))
    exported = ok(reg.client.get("/admin/export"))
    assert exported["apiVersion"] == "lgsp.laichau.gov.vn/v1" and exported["kind"] == "Manifest"
    name = doc["connectors"][0]["name"]
    (mine,) = [c for c in exported["connectors"] if c["name"] == name]
    variable = "LGSP_SECRET_" + name.upper().replace("-", "_")
    assert mine["auth"] == {"type": "basic", "username": "hub", "secret": {"env": variable}}
    assert "round-trip-secret" not in str(exported)
    assert "lgsp_" not in str(exported) and "key_hash" not in str(exported)

    # Applying the export (secrets left out: the stored ones stay) changes nothing at all.
    for connector in exported["connectors"]:
        connector.get("auth", {}).pop("secret", None)
    result = ok(apply(reg, exported))
    assert result["summary"]["create"] == result["summary"]["update"] == 0, [
        o for o in result["objects"] if o["action"] != "unchanged"
    ]


STATUS_V1: dict[str, Any] = {
    "type": "object",
    "properties": {"MaHoSo": {"type": "string"}, "TrangThaiHoSo": {"type": "integer"}},
    "required": ["MaHoSo"],
}


def test_schemas_in_manifests(reg: Registry) -> None:
    """Subjects are declared with numbered versions; a route names one; versions are immutable."""
    doc = manifest(reg)
    subject, code = reg.unique("ho-so.trang-thai"), reg.unique("ho-so.ma")
    v2 = {**STATUS_V1, "properties": {**STATUS_V1["properties"], "MaHoSo": {"$ref": "ma.json"}}}
    doc["schemas"] = [
        {"subject": code, "versions": [{"version": 1, "schema": {"type": "string"}}]},
        {"subject": subject, "compatibility": "NONE", "versions": [
            {"version": 1, "schema": STATUS_V1, "state": "deprecated"},
            {"version": 2, "schema": v2,
             "references": [{"name": "ma.json", "subject": code, "version": 1}]},
        ]},
    ]  # fmt: skip
    doc["services"][0]["routes"][0]["response_schema"] = {"subject": subject, "version": 2}
    result = ok(apply(reg, doc))
    keys = {(o["kind"], o["key"], o["action"]) for o in result["objects"]}
    assert {("schema", f"{subject}/1", "create"), ("schema", f"{subject}/2", "create"),
            ("schema", f"{subject}/1", "update")} <= keys  # fmt: skip
    assert ok(reg.client.get(f"/admin/schemas/{subject}/versions/1"))["state"] == "deprecated"
    assert ok(reg.client.get(f"/admin/schemas/{subject}/config"))["compatibility"] == "NONE"
    used = ok(reg.client.get(f"/admin/schemas/{subject}/versions/2"))["used_by"]
    assert used["services"] == [f"{doc['services'][0]['name']}/v1"]
    again = ok(apply(reg, doc))
    assert again["summary"]["create"] == again["summary"]["update"] == 0

    changed = copy.deepcopy(doc)
    changed["schemas"][1]["versions"][0]["schema"] = {"type": "object"}
    doc_ = problem(apply(reg, changed), 422, "/schemas/1/versions/0/schema")
    assert "immutable" in doc_["detail"]
    gap = copy.deepcopy(doc)
    gap["schemas"][0]["versions"].append(
        {"version": 3, "schema": {"type": "string", "maxLength": 9}}
    )
    problem(apply(reg, gap), 422, "/schemas/0/versions/1/version")
    broken = copy.deepcopy(doc)
    broken["schemas"][0]["versions"].append({"version": 2, "schema": {"type": "strin"}})
    problem(apply(reg, broken), 422, "/schemas/0/versions/1/schema/type")
    # Nothing of the refused manifests stayed.
    assert [v["version"] for v in ok(reg.client.get(f"/admin/schemas/{code}/versions"))] == [1]


def test_limits_in_manifests(reg: Registry) -> None:
    """A grant's rate limit and quota and a connector's calls at once are declared in manifests,
    exported as stated, refused with the manifest's pointer when they make no sense, and a
    changed limit is a change of the grant's terms."""
    doc = manifest(reg)
    doc["connectors"][0] |= {"max_in_flight": 4, "max_waiting": 10, "max_wait_seconds": 2.5}
    doc["grants"][0] |= {
        "rate_limit": {"requests": 50, "seconds": 10, "burst": 20},
        "quota": {"requests": 10_000, "period": "month"},
    }
    ok(apply(reg, doc))
    exported = ok(reg.client.get("/admin/export"))
    (connector,) = [c for c in exported["connectors"] if c["name"] == doc["connectors"][0]["name"]]
    assert (connector["max_in_flight"], connector["max_waiting"]) == (4, 10)
    assert connector["max_wait_seconds"] == 2.5
    consumer = doc["consumers"][0]["name"]
    (grant,) = [g for g in exported["grants"] if g["consumer"] == consumer]
    assert grant["rate_limit"] == {"requests": 50, "seconds": 10, "burst": 20}
    assert grant["quota"] == {"requests": 10_000, "period": "month"}

    bad = copy.deepcopy(doc)
    bad["grants"][0]["rate_limit"]["requests"] = 0
    problem(apply(reg, bad), 422, "/grants/0/rate_limit/requests")
    bad = copy.deepcopy(doc)
    bad["grants"][0]["quota"]["requests"] = -5
    problem(apply(reg, bad), 422, "/grants/0/quota/requests")
    bad = copy.deepcopy(doc)
    bad["connectors"][0]["max_in_flight"] = 0
    problem(apply(reg, bad), 422, "/connectors/0/max_in_flight")

    changed = copy.deepcopy(doc)
    changed["grants"][0]["rate_limit"]["requests"] = 100
    del changed["grants"][0]["status"]
    ok(apply(reg, changed))
    (after,) = ok(reg.client.get("/admin/grants", params={"consumer": consumer}))
    assert after["status"] == "requested" and after["rate_limit"]["requests"] == 100
