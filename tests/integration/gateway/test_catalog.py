"""The catalogue through real HTTP, on SQLite and PostgreSQL: what a consumer sees, the
generated OpenAPI documents (valid, and what they declare), lifecycle headers on real calls,
the guarded retirement and the callers view."""

from __future__ import annotations

import calendar
import secrets
from collections.abc import Callable
from email.utils import parsedate_to_datetime
from typing import Any

import httpx
import pytest
from openapi_spec_validator import OpenAPIV31SpecValidator

from tests.integration.conftest import APPROVE, World, audit_records, ok

PURPOSES = ["thong-ke", "xac-thuc-ho-so"]
CITIZEN_ROUTE: dict[str, Any] = {
    "method": "GET",
    "path": "/citizen/{id}",
    "params_schema": {
        "type": "object",
        "required": ["id"],
        "properties": {"id": {"type": "string", "pattern": "^[0-9]{12}$"}},
    },
    "response_schema": {
        "type": "object",
        "required": ["so_dinh_danh"],
        "properties": {
            "so_dinh_danh": {"type": "string"},
            "ho_va_ten": {"type": "string"},
            "dia_chi": {"$ref": "#/$defs/dia_chi"},
        },
        "$defs": {"dia_chi": {"type": "object", "properties": {"ma_xa": {"type": "string"}}}},
    },
}
ECHO_ROUTE: dict[str, Any] = {
    "method": "POST",
    "path": "/echo/{item}",
    "request_schema": {
        "type": "object",
        "required": ["n"],
        "additionalProperties": False,
        "properties": {"n": {"type": "integer", "minimum": 0, "maximum": 1000}},
    },
}


def catalog_world(make_world: Callable[..., World], upstream: str) -> World:
    return make_world(
        base_url=upstream,
        routes=[CITIZEN_ROUTE, ECHO_ROUTE],
        personal_data=True,
        subject_pointer="/path/id",
        grant={"purposes": PURPOSES},
        decision=APPROVE,
    )


def problem(answer: httpx.Response, status: int, kind: str) -> dict[str, Any]:
    assert answer.status_code == status, answer.text
    assert answer.headers["content-type"] == "application/problem+json"
    doc: dict[str, Any] = answer.json()
    assert doc["type"].endswith("/" + kind), doc
    assert doc["status"] == status and doc["detail"]
    return doc


def other_service(world: World, status: str = "published") -> str:
    name = f"svc-{secrets.token_hex(3)}"
    with world.hub.admin() as admin:
        ok(
            admin.post(
                "/admin/services",
                json={
                    "name": name,
                    "version": "v1",
                    "connector": world.connector,
                    "title": f"Dịch vụ {status}",
                    "status": status,
                    "routes": [{"method": "GET", "path": "/citizen/{id}"}],
                },
            )
        )
    return name


def catalog(world: World, path: str = "", key: str | None = None) -> httpx.Response:
    with world.hub.client(world.key if key is None else key) as client:
        return client.get(f"/catalog{path}")


# ---------------------------------------------------------------- what a consumer sees


def test_a_consumer_sees_published_services_with_its_grants_and_not_drafts(make_world, upstream):
    world = catalog_world(make_world, upstream)
    ungranted = other_service(world)
    draft = other_service(world, "draft")

    answer = catalog(world)
    assert answer.status_code == 200, answer.text
    found = {item["name"]: item for item in answer.json()["items"]}
    assert answer.json()["consumer"] == world.consumer
    assert draft not in found
    mine = found[world.service]
    assert mine["agency"] == {"code": world.agency, "name": "Sở thử nghiệm"}
    assert mine["title"] == "Dịch vụ thử" and mine["personal_data"] is True
    (version,) = mine["versions"]
    assert version["version"] == "v1" and version["status"] == "published"
    assert version["deprecated_at"] is None and version["sunset_at"] is None
    assert version["grant"]["state"] == "approved"
    assert version["grant"]["id"] == world.grant_id
    assert version["grant"]["purposes"] == PURPOSES
    assert version["links"]["openapi"] == f"/catalog/{world.service}/v1/openapi.json"
    assert "request_access" not in version
    assert {(r["method"], r["path"]) for r in version["routes"]} == {
        ("GET", "/citizen/{id}"),
        ("POST", "/echo/{item}"),
    }

    (other,) = found[ungranted]["versions"]
    assert other["grant"] == {
        "state": "none", "id": None, "purposes": [], "valid_from": None, "valid_until": None
    }  # fmt: skip
    request = other["request_access"]
    assert request["endpoint"] == "POST /admin/grants"
    assert request["body"] == {"consumer": world.consumer, "service": ungranted, "versions": ["v1"]}
    assert request["manifest"] == {"grants": [request["body"]]}


def test_a_pending_grant_is_shown_as_requested(hub, make_world, upstream):
    world = make_world(base_url=upstream, routes=[CITIZEN_ROUTE], grant={"purposes": ["thong-ke"]})
    detail = catalog(world, f"/{world.service}/v1")
    assert detail.status_code == 200, detail.text
    body = detail.json()
    assert body["name"] == world.service and body["version"] == "v1"
    assert body["grant"]["state"] == "requested" and body["grant"]["purposes"] == []
    assert body["request_access"]["body"]["service"] == world.service


def test_unknown_services_versions_and_drafts_are_404_problems(make_world, upstream):
    world = catalog_world(make_world, upstream)
    draft = other_service(world, "draft")
    doc = problem(catalog(world, f"/{world.service}/v9"), 404, "unknown-service")
    assert "published: v1" in doc["detail"]
    problem(catalog(world, f"/{world.service}/v9/openapi.json"), 404, "unknown-service")
    problem(catalog(world, "/no-such-service/v1"), 404, "unknown-service")
    problem(catalog(world, f"/{draft}/v1"), 404, "unknown-service")
    problem(catalog(world, f"/{draft}/v1/openapi.json"), 404, "unknown-service")


def test_the_catalogue_takes_a_consumer_key(hub, make_world, upstream):
    world = catalog_world(make_world, upstream)
    with hub.client() as client:
        answer = client.get("/catalog")
    problem(answer, 401, "unauthenticated")
    assert answer.headers["www-authenticate"].startswith("ApiKey")
    problem(catalog(world, key=hub.admin_key), 401, "not-a-consumer-key")
    problem(catalog(world, key="lgsp_nothere.secret"), 401, "invalid-key")


# ---------------------------------------------------------------- the OpenAPI document


def test_the_generated_openapi_document_is_valid_and_complete(hub, make_world, upstream):
    world = catalog_world(make_world, upstream)
    answer = catalog(world, f"/{world.service}/v1/openapi.json")
    assert answer.status_code == 200, answer.text
    spec = answer.json()
    OpenAPIV31SpecValidator(spec).validate()

    assert spec["openapi"] == "3.1.0"
    assert spec["servers"] == [{"url": f"{hub.url}/api/{world.service}/v1"}]
    schemes = spec["components"]["securitySchemes"]
    assert schemes["apiKey"] == {
        "type": "apiKey", "in": "header", "name": "X-API-Key",
        "description": schemes["apiKey"]["description"],
    }  # fmt: skip
    flow = schemes["oauth2"]["flows"]["clientCredentials"]
    assert flow["tokenUrl"] == f"{hub.url}/oauth2/token"
    assert list(flow["scopes"]) == [f"{world.service}:v1"]

    purpose = spec["components"]["parameters"]["XPurpose"]
    assert purpose["in"] == "header" and purpose["required"] is True
    assert purpose["schema"]["enum"] == PURPOSES

    get = spec["paths"]["/citizen/{id}"]["get"]
    (path_param,) = [p for p in get["parameters"] if p.get("in") == "path"]
    assert path_param == {
        "name": "id", "in": "path", "required": True,
        "schema": {"type": "string", "pattern": "^[0-9]{12}$"},
    }  # fmt: skip
    refs = [p["$ref"] for p in get["parameters"] if "$ref" in p]
    assert refs == ["#/components/parameters/XPurpose", "#/components/parameters/XRequestId"]
    assert set(get["responses"]) == {"200", "401", "403", "404", "422", "429", "502", "503", "504"}
    assert get["responses"]["403"]["content"] == {
        "application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}
    }
    # What a client must read to come back later: Retry-After, and the rate-limit headers.
    assert set(get["responses"]["429"]["headers"]) == {
        "X-Request-Id", "Retry-After", "RateLimit", "RateLimit-Policy"
    }  # fmt: skip
    assert set(get["responses"]["503"]["headers"]) == {"X-Request-Id", "Retry-After"}
    assert {"RateLimit", "RateLimit-Policy"} <= set(get["responses"]["200"]["headers"])
    response_ref = get["responses"]["200"]["content"]["application/json"]["schema"]["$ref"]
    name = response_ref.rsplit("/", 1)[1]
    # The contract's own $ref, rebased under its component.
    assert spec["components"]["schemas"][name]["properties"]["dia_chi"] in (
        {"$ref": f"#/components/schemas/{name}/$defs/dia_chi"},
        {"type": "object", "properties": {"ma_xa": {"type": "string"}}},  # inlined
    )

    post = spec["paths"]["/echo/{item}"]["post"]
    assert post["requestBody"]["required"] is True
    assert {"400", "413", "415", "422"} <= set(post["responses"])
    assert post["security"] == [{"apiKey": []}, {"oauth2": [f"{world.service}:v1"]}]


def test_without_a_grant_the_purpose_is_any_string(make_world, upstream):
    world = make_world(
        base_url=upstream, routes=[CITIZEN_ROUTE], personal_data=True, subject_pointer="/path/id"
    )
    spec = catalog(world, f"/{world.service}/v1/openapi.json").json()
    OpenAPIV31SpecValidator(spec).validate()
    purpose = spec["components"]["parameters"]["XPurpose"]
    assert "enum" not in purpose["schema"] and purpose["required"] is False


# ---------------------------------------------------------------- lifecycle


def patch_service(world: World, body: dict[str, Any], force: bool | None = None) -> httpx.Response:
    params = {} if force is None else {"force": str(force).lower()}
    with world.hub.admin() as admin:
        return admin.patch(f"/admin/services/{world.service}/v1", json=body, params=params)


def test_a_deprecated_version_answers_with_deprecation_and_sunset_headers(make_world, upstream):
    world = catalog_world(make_world, upstream)
    before = world.call("GET", "/citizen/012090001234", headers={"X-Purpose": "thong-ke"})
    assert before.status_code == 200, before.text
    assert "deprecation" not in before.headers and "sunset" not in before.headers

    changed = patch_service(
        world,
        {
            "status": "deprecated",
            "deprecated_at": "2026-11-01T00:00:00Z",
            "sunset_at": "2027-06-30T17:00:00+07:00",
        },
    )
    assert changed.status_code == 200, changed.text
    answer = world.call("GET", "/citizen/012090001234", headers={"X-Purpose": "thong-ke"})
    assert answer.status_code == 200, answer.text
    deprecated = calendar.timegm((2026, 11, 1, 0, 0, 0))
    assert answer.headers["deprecation"] == f"@{deprecated}"
    assert answer.headers["sunset"] == "Wed, 30 Jun 2027 10:00:00 GMT"
    assert parsedate_to_datetime(answer.headers["sunset"]).timestamp() == calendar.timegm(
        (2027, 6, 30, 10, 0, 0)
    )
    assert answer.headers["link"] == f'</catalog/{world.service}/v1>; rel="deprecation"'
    refused = world.call("GET", "/citizen/012090001234")  # no purpose: a 403, dated too
    problem(refused, 403, "purpose-required")
    assert refused.headers["deprecation"] == f"@{deprecated}"
    assert refused.headers["sunset"] == answer.headers["sunset"]

    (version,) = [
        v for i in catalog(world).json()["items"] if i["name"] == world.service
        for v in i["versions"]
    ]  # fmt: skip
    assert version["status"] == "deprecated"
    assert version["deprecated_at"] == "2026-11-01T00:00:00+00:00"
    assert version["sunset_at"] == "2027-06-30T10:00:00+00:00"
    spec = catalog(world, f"/{world.service}/v1/openapi.json").json()
    assert spec["paths"]["/citizen/{id}"]["get"]["deprecated"] is True


def test_deprecating_without_a_date_dates_it_now(make_world, upstream):
    world = catalog_world(make_world, upstream)
    changed = patch_service(world, {"status": "deprecated"})
    assert changed.status_code == 200, changed.text
    assert changed.json()["deprecated_at"] is not None
    answer = world.call("GET", "/citizen/012090001234", headers={"X-Purpose": "thong-ke"})
    assert answer.headers["deprecation"].startswith("@")
    assert "sunset" not in answer.headers


def test_a_sunset_before_the_deprecation_is_a_422(make_world, upstream):
    world = catalog_world(make_world, upstream)
    answer = patch_service(
        world, {"deprecated_at": "2027-01-01T00:00:00Z", "sunset_at": "2026-01-01T00:00:00Z"}
    )
    assert answer.status_code == 422, answer.text
    assert "/sunset_at" in [e["pointer"] for e in answer.json()["errors"]]


def test_retiring_a_version_in_use_needs_force_and_is_recorded(hub, make_world, upstream):
    world = catalog_world(make_world, upstream)
    assert world.call("GET", "/citizen/012090001234", headers={"X-Purpose": "thong-ke"}).is_success
    assert patch_service(world, {"status": "deprecated"}).status_code == 200

    refused = patch_service(world, {"status": "retired"})
    doc = problem(refused, 409, "version-in-use")
    assert doc["consumers"] == [world.consumer]
    assert world.consumer in doc["detail"]
    with hub.admin() as admin:
        still = ok(admin.get(f"/admin/services/{world.service}/v1"), 200)
    assert still["status"] == "deprecated" and still["retired_at"] is None

    forced = patch_service(world, {"status": "retired"}, force=True)
    assert forced.status_code == 200, forced.text
    assert forced.json()["status"] == "retired" and forced.json()["retired_at"] is not None
    changes = [
        r for r in audit_records(hub, kind="registry_change")
        if r["object_key"] == f"{world.service}/v1"
    ]  # fmt: skip
    assert changes[0]["details"]["changes"]["forced_retirement"] == {"callers": [world.consumer]}
    assert changes[0]["details"]["changes"]["status"] == ["deprecated", "retired"]
    problem(
        world.call("GET", "/citizen/012090001234", headers={"X-Purpose": "thong-ke"}),
        404,
        "unknown-service",
    )


def test_retiring_a_version_nobody_calls_needs_no_force(make_world, upstream):
    world = catalog_world(make_world, upstream)
    assert patch_service(world, {"status": "deprecated"}).status_code == 200
    answer = patch_service(world, {"status": "retired"})
    assert answer.status_code == 200, answer.text
    assert answer.json()["retired_at"] is not None


# ---------------------------------------------------------------- callers view


def second_consumer(world: World) -> tuple[str, str]:
    name = f"app-{secrets.token_hex(3)}"
    with world.hub.admin() as admin:
        ok(admin.post("/admin/consumers", json={"name": name, "agency_code": world.agency,
                                                 "title": "Ứng dụng hai"}))  # fmt: skip
        key = ok(admin.post(f"/admin/consumers/{name}/keys", json={"label": "t"}))["key"]
        grant = ok(
            admin.post(
                "/admin/grants",
                json={"consumer": name, "service": world.service, "purposes": ["thong-ke"]},
            )
        )["id"]
        ok(admin.post(f"/admin/grants/{grant}/decision", json=APPROVE), 200)
    return name, key


def test_the_callers_view_counts_exactly_the_calls_made(hub, make_world, upstream):
    world = catalog_world(make_world, upstream)
    other, other_key = second_consumer(world)
    good = {"X-Purpose": "thong-ke"}
    for _ in range(3):
        assert world.call("GET", "/citizen/012090001234", headers=good).status_code == 200
    problem(world.call("GET", "/citizen/012090001234"), 403, "purpose-required")  # refused
    for _ in range(2):
        assert (
            world.call("GET", "/citizen/012090001234", key=other_key, headers=good).status_code
            == 200
        )
    with hub.client() as anonymous:  # nobody authenticated: not a caller
        assert anonymous.get(f"/api/{world.service}/v1/citizen/012090001234").status_code == 401

    with hub.admin() as admin:
        answer = admin.get(f"/admin/services/{world.service}/v1/callers", params={"days": 1})
        every = admin.get(f"/admin/services/{world.service}/callers")
    view = ok(answer, 200)
    assert view["service"] == world.service and view["version"] == "v1" and view["days"] == 1
    rows = {r["consumer"]: r for r in view["callers"]}
    assert set(rows) == {world.consumer, other}
    assert (rows[world.consumer]["calls"], rows[world.consumer]["refusals"]) == (4, 1)
    assert (rows[other]["calls"], rows[other]["refusals"]) == (2, 0)
    for row in rows.values():
        assert row["version"] == "v1"
        assert row["first_call"] <= row["last_call"]
    assert view["callers"][0]["consumer"] == other  # the latest caller first
    assert ok(every, 200)["version"] is None
    assert {r["consumer"]: r["calls"] for r in every.json()["callers"]} == {
        world.consumer: 4,
        other: 2,
    }


def test_the_callers_view_refuses_bad_input(make_world, upstream):
    world = catalog_world(make_world, upstream)
    with world.hub.admin() as admin:
        base = f"/admin/services/{world.service}"
        assert admin.get(f"{base}/callers", params={"days": 0}).status_code == 422
        assert admin.get(f"{base}/v1/callers", params={"days": "x"}).status_code == 422
        assert admin.get(f"{base}/v1/callers", params={"window": 3}).status_code == 422
        assert admin.get(f"{base}/v9/callers").status_code == 404
        assert admin.get("/admin/services/no-such/callers").status_code == 404
    with world.hub.client(world.key) as consumer:  # a consumer key is no management key
        assert consumer.get(f"{base}/v1/callers").status_code == 401


@pytest.mark.parametrize("days", [1, 3660])
def test_the_window_bounds_are_accepted(make_world, upstream, days):
    world = catalog_world(make_world, upstream)
    with world.hub.admin() as admin:
        answer = admin.get(f"/admin/services/{world.service}/v1/callers", params={"days": days})
    assert ok(answer, 200)["callers"] == []


def test_a_manifest_sets_the_dates_and_retires_only_with_force(hub, make_world, upstream):
    world = catalog_world(make_world, upstream)
    assert world.call("GET", "/citizen/012090001234", headers={"X-Purpose": "thong-ke"}).is_success
    with hub.admin() as admin:
        current = ok(admin.get(f"/admin/services/{world.service}/v1"), 200)
        spec = {k: v for k, v in current.items() if k not in ("id", "agency_code", "retired_at")}

        def apply(changes: dict[str, Any], **params: str) -> httpx.Response:
            doc = {"apiVersion": "lgsp.laichau.gov.vn/v1", "kind": "Manifest",
                   "services": [{**spec, **changes}]}  # fmt: skip
            answer: httpx.Response = admin.post("/admin/apply", json=doc, params=params)
            return answer

        dated = {"status": "deprecated", "sunset_at": "2027-01-31T00:00:00Z"}
        applied = ok(apply(dated), 200)
        (outcome,) = applied["objects"]
        assert outcome["changes"]["sunset_at"] == [None, "2027-01-31T00:00:00Z"]
        again = ok(apply(dated), 200)  # the deprecation date the hub set is kept
        assert again["objects"][0]["action"] == "unchanged", again

        retire = {**dated, "status": "retired"}
        problem(apply(retire), 409, "version-in-use")
        assert ok(admin.get(f"/admin/services/{world.service}/v1"), 200)["status"] == "deprecated"
        forced = ok(apply(retire, force="true"), 200)
        assert forced["objects"][0]["changes"]["forced_retirement"] == {"callers": [world.consumer]}
        assert ok(admin.get(f"/admin/services/{world.service}/v1"), 200)["status"] == "retired"
