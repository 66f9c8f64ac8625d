"""The schema registry's admin API: versions, references, states, rules and verdicts."""

from __future__ import annotations

import json
from typing import Any

import jsonschema
import pytest

from tests.integration.admin.conftest import ROUTE, Registry, ok, problem

PERSON: dict[str, Any] = {
    "type": "object",
    "properties": {
        "so_dinh_danh": {"type": "string", "format": "vn-personal-id"},
        "ho_va_ten": {"type": "string", "maxLength": 100},
    },
    "required": ["so_dinh_danh"],
}


def register(reg: Registry, subject: str, schema: Any, status: int = 201, **extra: Any) -> Any:
    body = {"schema": schema, **extra}
    return ok(reg.client.post(f"/admin/schemas/{subject}/versions", json=body), status)


def test_versions_are_numbered_immutable_and_deduplicated(reg: Registry) -> None:
    subject = reg.unique("cong-dan")
    first = register(reg, subject, PERSON)
    assert (first["version"], first["state"]) == (1, "active")
    # The same content again (keys in another order) is the same version, answered 200.
    again = register(reg, subject, dict(reversed(list(PERSON.items()))), 200)
    assert (again["version"], again["id"]) == (1, first["id"])
    # Another subject holding the same content shares its global id, as Confluent's do.
    other = register(reg, reg.unique("ban-sao"), PERSON)
    assert (other["version"], other["id"]) == (1, first["id"])
    longer_name = {"type": "string", "maxLength": 200}  # a widening: BACKWARD compatible
    wider = {**PERSON, "properties": {**PERSON["properties"], "ho_va_ten": longer_name}}
    second = register(reg, subject, wider)
    assert second["version"] == 2 and second["id"] != first["id"]
    listed = ok(reg.client.get(f"/admin/schemas/{subject}/versions"))
    assert [v["version"] for v in listed] == [1, 2]
    latest = ok(reg.client.get(f"/admin/schemas/{subject}/versions/latest"))
    assert latest["schema"] == wider
    assert ok(reg.client.get(f"/admin/schemas/{subject}/versions/1/schema")) == PERSON
    created = [c for c in reg.changes() if c["object_type"] == "schema"]
    assert f"{subject}/2" in {c["object_key"] for c in created}


@pytest.mark.parametrize(
    ("schema", "pointer", "words"),
    [
        ({"type": "objekt"}, "/schema/type", "not a valid JSON Schema"),
        ({"$schema": "https://example.org/draft-99"}, "/schema/$schema", "unknown draft"),
        ({"properties": {"a": {"$ref": "#/$defs/missing"}}}, "/schema/properties/a/$ref",
         "unresolved reference"),
        ({"properties": {"a": {"$ref": "other.json"}}}, "/schema/properties/a/$ref",
         "declared references"),
        ({"$defs": {"a": {"$ref": "#/$defs/b"}, "b": {"allOf": [{"$ref": "#/$defs/a"}]}},
          "$ref": "#/$defs/a"}, "/schema/$defs/a/$ref", "reference cycle"),
        ({"minLength": -1}, "/schema/minLength", "not a valid JSON Schema"),
        ("not a schema", "/schema", "JSON object"),
    ],
)  # fmt: skip
def test_bad_schemas_are_refused_with_the_pointer(
    reg: Registry, schema: Any, pointer: str, words: str
) -> None:
    doc = problem(
        reg.client.post(f"/admin/schemas/{reg.unique('x')}/versions", json={"schema": schema}),
        422,
        pointer,
    )
    assert words in str(doc)


@pytest.mark.parametrize(
    ("url", "body", "pointer"),
    [
        ("/admin/schemas/{s}/versions", {}, "/schema"),
        ("/admin/schemas/{s}/versions", {"schema": {}, "colour": 1}, "/colour"),
        ("/admin/schemas/{s}/versions",
         {"schema": {}, "references": [{"name": "a.json", "subject": "nope", "version": 1}]},
         "/references/0"),
        ("/admin/schemas/{s}/versions",
         {"schema": {}, "references": [{"name": "a.json", "subject": "x", "version": 0}]},
         "/references/0/version"),
        ("/admin/schemas/{s}/config", {"compatibility": "SIDEWAYS"}, "/compatibility"),
        ("/admin/schemas/{s}/compatibility", {"schema": {}, "policy": "LAX"}, "/policy"),
    ],
)  # fmt: skip
def test_bad_input_is_a_422_with_the_pointer(
    reg: Registry, url: str, body: dict[str, Any], pointer: str
) -> None:
    method = reg.client.put if url.endswith("/config") else reg.client.post
    problem(method(url.format(s=reg.unique("x")), json=body), 422, pointer)


def test_unknown_subject_and_version_are_404(reg: Registry) -> None:
    problem(reg.client.get("/admin/schemas/khong-co/versions"), 404)
    subject = reg.unique("s")
    register(reg, subject, PERSON)
    problem(reg.client.get(f"/admin/schemas/{subject}/versions/7"), 404)
    problem(reg.client.get(f"/admin/schemas/{subject}/versions/bay"), 422)


def test_references_resolve_between_registered_schemas(reg: Registry) -> None:
    person = reg.unique("cong-dan")
    register(reg, person, PERSON)
    ref = [{"name": "cong-dan.json", "subject": person, "version": 1}]
    envelope = {
        "type": "object",
        "properties": {"chu_ho_so": {"$ref": "cong-dan.json"}},
        "required": ["chu_ho_so"],
    }
    dossier = reg.unique("ho-so")
    found = register(reg, dossier, envelope, references=ref)
    assert found["references"] == ref
    used = ok(reg.client.get(f"/admin/schemas/{person}/versions/1/referencedby"))
    assert used == {"services": [], "topics": [], "schemas": [f"{dossier}/1"]}
    # A referenced version cannot be deleted.
    doc = problem(reg.client.delete(f"/admin/schemas/{person}/versions/1"), 409)
    assert f"{dossier}/1" in doc["detail"]


def test_deprecated_is_served_with_a_warning_and_deleted_is_hidden(reg: Registry) -> None:
    subject = reg.unique("s")
    register(reg, subject, PERSON)
    url = f"/admin/schemas/{subject}/versions/1"
    assert ok(reg.client.patch(url, json={"state": "deprecated"}))["state"] == "deprecated"
    answer = reg.client.get(url)
    assert answer.status_code == 200 and answer.headers["deprecation"] == "true"
    assert "deprecated" in answer.headers["warning"]
    ok(reg.client.patch(url, json={"state": "active"}))
    assert "deprecation" not in reg.client.get(url).headers
    ok(reg.client.delete(url))
    problem(reg.client.get(url), 404)
    assert ok(reg.client.get(url, params={"deleted": "true"}))["state"] == "deleted"
    problem(reg.client.get(f"/admin/schemas/{subject}/versions"), 404)
    assert subject not in {s["subject"] for s in ok(reg.client.get("/admin/schemas"))}
    # A deleted version cannot come back, and its content registers as a new version.
    problem(reg.client.patch(url, json={"state": "active"}), 409)
    assert register(reg, subject, PERSON)["version"] == 2
    kinds = {(c["action"], c["object_key"]) for c in reg.changes() if c["object_type"] == "schema"}
    assert {("deprecate", f"{subject}/1"), ("delete", f"{subject}/1")} <= kinds


def test_services_name_versions_and_hold_them(reg: Registry) -> None:
    subject = reg.unique("s")
    register(reg, subject, PERSON)
    contract = {"subject": subject, "version": 1}
    service = reg.service(routes=[{**ROUTE, "response_schema": contract}])
    used = ok(reg.client.get(f"/admin/schemas/{subject}/versions/1"))["used_by"]
    assert used["services"] == [f"{service['name']}/v1"]
    doc = problem(reg.client.delete(f"/admin/schemas/{subject}/versions/1"), 409)
    assert service["name"] in doc["detail"]
    problem(reg.client.delete(f"/admin/schemas/{subject}"), 409)
    # A deleted version is refused to new services.
    other = reg.unique("s")
    register(reg, other, PERSON)
    ok(reg.client.delete(f"/admin/schemas/{other}/versions/1"))
    body = {"routes": [{**ROUTE, "request_schema": {"subject": other, "version": 1}}]}
    doc = problem(
        reg.client.post(
            "/admin/services",
            json={"name": reg.unique("svc"), "version": "v1", "title": "t",
                  "connector": reg.connector()["name"], **body},
        ),
        422,
        "/routes/0/request_schema",
    )  # fmt: skip
    assert "deleted" in doc["detail"]


def test_incompatible_versions_are_refused_with_each_break(reg: Registry) -> None:
    subject = reg.unique("s")
    register(reg, subject, PERSON)
    stricter = {**PERSON, "required": ["so_dinh_danh", "ho_va_ten"]}
    doc = problem(
        reg.client.post(f"/admin/schemas/{subject}/versions", json={"schema": stricter}), 409
    )
    assert doc["verdict"]["outcome"] == "INCOMPATIBLE"
    (found,) = doc["verdict"]["breaks"]
    example = found["counterexample"]
    jsonschema.validate(example, PERSON)  # the old version accepts it ...
    assert not jsonschema.Draft202012Validator(stricter).is_valid(example)  # ... the new refuses
    assert found["pointer"] in {"/required", "/required/1"}
    # Relaxing the rule lets it through; NONE checks nothing.
    ok(reg.client.put(f"/admin/schemas/{subject}/config", json={"compatibility": "NONE"}))
    assert register(reg, subject, stricter)["version"] == 2


def test_compatibility_check_registers_nothing(reg: Registry) -> None:
    subject = reg.unique("s")
    register(reg, subject, PERSON)
    narrower = {
        **PERSON,
        "properties": {**PERSON["properties"], "ho_va_ten": {"type": "string", "maxLength": 50}},
    }
    url = f"/admin/schemas/{subject}/compatibility"
    verdict = ok(reg.client.post(url, json={"schema": narrower}))
    assert (verdict["outcome"], verdict["level"]) == ("INCOMPATIBLE", "BACKWARD")
    assert verdict["breaks"][0]["pointer"] == "/properties/ho_va_ten/maxLength"
    forward = ok(reg.client.post(url, json={"schema": narrower, "level": "FORWARD"}))
    assert forward["outcome"] == "COMPATIBLE"
    assert [v["version"] for v in ok(reg.client.get(f"/admin/schemas/{subject}/versions"))] == [1]
    changes = ok(reg.client.post(f"/admin/schemas/{subject}/diff", json={"schema": narrower}))
    assert changes["version"] == 1 and changes["changes"]


def test_config_is_per_subject_over_a_global_default(reg: Registry) -> None:
    subject = reg.unique("s")
    url = f"/admin/schemas/{subject}/config"
    default = ok(reg.client.get("/admin/schema-config"))
    assert ok(reg.client.get(url))["inherited"] is True
    ok(reg.client.put(url, json={"compatibility": "FULL_TRANSITIVE", "policy": "ROBUST"}))
    own = ok(reg.client.get(url))
    assert (own["compatibility"], own["policy"], own["inherited"]) == (
        "FULL_TRANSITIVE", "ROBUST", False,
    )  # fmt: skip
    ok(reg.client.delete(url))
    back = ok(reg.client.get(url))
    assert (back["compatibility"], back["policy"], back["inherited"]) == (
        default["compatibility"], default["policy"], True,
    )  # fmt: skip


def test_integrators_evolve_only_their_agencys_subjects(reg: Registry) -> None:
    ours, theirs = reg.agency(), reg.agency()
    mine = reg.unique("cua-toi")
    with reg.as_key(reg.principal("integrator", ours)) as client:
        ok(client.post(f"/admin/schemas/{mine}/versions", json={"schema": PERSON}), 201)
        ok(client.put(f"/admin/schemas/{mine}/config", json={"compatibility": "FULL"}))
        problem(client.put("/admin/schema-config", json={"compatibility": "NONE"}), 403)
    with reg.as_key(reg.principal("integrator", theirs)) as client:
        ok(client.get(f"/admin/schemas/{mine}/versions/1"))  # reading is open to every key
        problem(client.post(f"/admin/schemas/{mine}/versions", json={"schema": {}}), 403)
        problem(client.delete(f"/admin/schemas/{mine}/versions/1"), 403)
    with reg.as_key(reg.principal("auditor")) as client:
        problem(client.post(f"/admin/schemas/{reg.unique('x')}/versions", json={"schema": {}}), 403)


def test_deeply_nested_schemas_are_refused_cleanly(reg: Registry) -> None:
    """Nesting is measured before any recursive code sees the document: 4xx, never a crash."""
    for depth, status in ((100, 422), (3_000, 400), (100_000, 400)):
        body = b'{"schema": ' + b'{"items":' * depth + b"{}" + b"}" * depth + b"}"
        answer = reg.client.post(
            f"/admin/schemas/{reg.unique('sau')}/versions",
            content=body,
            headers={"Content-Type": "application/json"},
        )
        assert answer.status_code == status, answer.text
        assert "nests more than" in answer.json()["detail"]
        inner = '{"items":' * depth + "{}" + "}" * depth
        confluent = reg.client.post(
            f"/subjects/{reg.unique('sau')}/versions", json={"schema": inner}
        )
        assert confluent.status_code == 422, confluent.text
        assert confluent.json()["error_code"] == 42201


CHAIN = {
    "$defs": {f"a{i}": {"$ref": f"#/$defs/a{i + 1}"} for i in range(1500)},
    "$ref": "#/$defs/a0",
}


@pytest.mark.parametrize(
    ("body", "words"),
    [
        (b'{"schema": {"$schema": []}}', "unknown draft"),
        (b'{"schema": {"properties": {"a": {"$ref": "http://[::1"}}}}', "not a valid URI"),
        (b'{"schema": {"$id": "http://[::1"}}', "not a valid URI"),
        (b'{"schema": {"description": "\\ud800"}}', "lone surrogate"),
        (json.dumps({"schema": CHAIN}).encode(), "too long to check"),
    ],
)
def test_hostile_schemas_are_422_on_both_surfaces(reg: Registry, body: bytes, words: str) -> None:
    headers = {"Content-Type": "application/json"}
    answer = reg.client.post(f"/admin/schemas/{reg.unique('x')}/versions", content=body,
                             headers=headers)  # fmt: skip
    assert answer.status_code == 422, answer.text
    assert words in answer.text
    schema = json.loads(body)["schema"]
    confluent = reg.client.post(
        f"/subjects/{reg.unique('x')}/versions",
        content=json.dumps({"schema": json.dumps(schema)}).encode(),
        headers=headers,
    )
    assert confluent.status_code == 422, confluent.text
