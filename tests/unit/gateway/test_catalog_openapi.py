"""The OpenAPI generator on its own: contracts become components whose $refs still resolve."""

from __future__ import annotations

from typing import Any, cast

from openapi_spec_validator import OpenAPIV31SpecValidator

from connectors.base import Connector
from gateway.catalog.openapi import service_document
from gateway.runtime.snapshot import CompiledRoute, ServiceEntry, compile_path
from registry.models import Route
from registry.types import ServiceStatus
from schemas.cache import Compiled

TREE: dict[str, Any] = {  # recursive: the registry cannot inline it, its $refs stay
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "$id": "https://example.test/tree.json",
    "type": "object",
    "properties": {
        "name": {"type": "string"},
        "children": {"type": "array", "items": {"$ref": "#"}},
        "owner": {"$ref": "#/$defs/owner"},
        "elsewhere": {"$ref": "https://example.test/other.json", "description": "kept"},
    },
    "$defs": {"owner": {"type": "object", "properties": {"code": {"type": "string"}}}},
}


def compiled(subject: str, schema: Any) -> Compiled:
    return Compiled(
        id=1, subject=subject, version=3, validator=cast(Any, None), schema=schema,
        deprecated=False,
    )  # fmt: skip


def service(*routes: CompiledRoute, personal_data: bool = False) -> ServiceEntry:
    return ServiceEntry(
        name="cay",
        version="v2",
        status=ServiceStatus.PUBLISHED,
        agency_code="000.00.12.H12",
        personal_data=personal_data,
        connector=cast(Connector, None),
        routes=routes,
        title="Cây",
    )


def route(method: str, path: str, **contracts: Compiled) -> CompiledRoute:
    model = Route.model_validate({"method": method, "path": path})
    return CompiledRoute(
        route=model, label=f"{method} {path}", pattern=compile_path(path),
        params=contracts.get("params"), request=contracts.get("request"),
        response=contracts.get("response"), contract_warning=None, subject_pointer=None,
    )  # fmt: skip


def test_a_recursive_contract_becomes_a_component_whose_refs_resolve() -> None:
    doc = service_document(
        service(route("GET", "/cay/{ma}", response=compiled("test.tree", TREE))),
        hub_url="http://hub.test/",
        purposes=[],
    )
    OpenAPIV31SpecValidator(doc).validate()
    tree = doc["components"]["schemas"]["test.tree.v3"]
    assert "$id" not in tree and "$schema" not in tree
    assert tree["properties"]["children"]["items"] == {"$ref": "#/components/schemas/test.tree.v3"}
    assert tree["properties"]["owner"] == {"$ref": "#/components/schemas/test.tree.v3/$defs/owner"}
    assert tree["properties"]["elsewhere"] == {"description": "kept"}  # unresolvable: loosened
    assert doc["servers"] == [{"url": "http://hub.test/api/cay/v2"}]
    get = doc["paths"]["/cay/{ma}"]["get"]
    assert [p for p in get["parameters"] if p.get("in") == "path"] == [
        {"name": "ma", "in": "path", "required": True, "schema": {"type": "string"}}
    ]
    assert "requestBody" not in get and "422" not in get["responses"]


def test_query_parameters_come_from_the_params_contract() -> None:
    params = compiled(
        "test.params",
        {
            "type": "object",
            "required": ["ma", "tu_ngay"],
            "properties": {
                "ma": {"type": "string", "minLength": 2},
                "tu_ngay": {"type": "string", "format": "date"},
                "trang": {"type": "string", "pattern": "^[0-9]+$"},
            },
        },
    )
    doc = service_document(
        service(route("GET", "/cay/{ma}", params=params), route("DELETE", "/cay/{ma}")),
        hub_url="http://hub.test",
        purposes=["b", "a"],
    )
    OpenAPIV31SpecValidator(doc).validate()
    item = doc["paths"]["/cay/{ma}"]
    assert set(item) == {"get", "delete"}
    get = item["get"]
    declared = {
        (p["name"], p["in"], p["required"]) for p in item["get"]["parameters"] if "name" in p
    }
    assert declared == {("ma", "path", True), ("tu_ngay", "query", True), ("trang", "query", False)}
    (path,) = [p for p in get["parameters"] if p.get("in") == "path"]
    assert path["schema"] == {"type": "string", "minLength": 2}
    assert get["operationId"] != item["delete"]["operationId"]
    purpose = doc["components"]["parameters"]["XPurpose"]
    assert purpose["schema"]["enum"] == ["b", "a"] and purpose["required"] is False
