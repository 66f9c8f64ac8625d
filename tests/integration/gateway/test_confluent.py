"""confluent-kafka's own SchemaRegistryClient and JSON serializer, unchanged, against the hub."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from confluent_kafka.schema_registry import (
    Schema,
    SchemaReference,
    SchemaRegistryClient,
    SchemaRegistryError,
)
from confluent_kafka.schema_registry.json_schema import JSONDeserializer, JSONSerializer
from confluent_kafka.serialization import MessageField, SerializationContext, SerializationError

from tests.conftest import RunningHub

STATUS: dict[str, Any] = {
    "$schema": "http://json-schema.org/draft-07/schema#",
    "title": "CapNhatTienDoHoSoMC",
    "type": "object",
    "properties": {
        "MaHoSo": {"type": "string", "minLength": 1},
        "TrangThaiHoSo": {"type": "integer", "minimum": 1, "maximum": 10},
    },
    "required": ["MaHoSo", "TrangThaiHoSo"],
}


@pytest.fixture
def client(hub: RunningHub) -> Iterator[SchemaRegistryClient]:
    # The hub takes a management key as the Basic password (the user name is not checked).
    client = SchemaRegistryClient({"url": hub.url, "basic.auth.user.info": f"lgsp:{hub.admin_key}"})
    yield client
    client.close()


def subject(unique: Callable[[str], str]) -> str:
    return f"{unique('ho-so.trang-thai')}-value"


def test_register_read_and_evolve(
    client: SchemaRegistryClient, unique: Callable[[str], str]
) -> None:
    name = subject(unique)
    schema_id = client.register_schema(name, Schema(json.dumps(STATUS), "JSON"))
    assert client.register_schema(name, Schema(json.dumps(STATUS), "JSON")) == schema_id
    fetched = client.get_schema(schema_id)
    assert fetched.schema_str is not None
    assert (fetched.schema_type, json.loads(fetched.schema_str)) == ("JSON", STATUS)
    latest = client.get_latest_version(name)
    assert (latest.version, latest.schema_id) == (1, schema_id)
    assert client.lookup_schema(name, Schema(json.dumps(STATUS), "JSON")).version == 1
    assert name in client.get_subjects()
    assert client.get_versions(name) == [1]

    # BACKWARD (the default): an extra optional property in an open model is refused.
    noted = {**STATUS, "properties": {**STATUS["properties"], "GhiChu": {"type": "string"}}}
    candidate = Schema(json.dumps(noted), "JSON")
    assert client.test_compatibility(name, candidate) is False
    with pytest.raises(SchemaRegistryError) as refused:
        client.register_schema(name, candidate)
    assert (refused.value.http_status_code, refused.value.error_code) == (409, 409)
    assert "GhiChu" in refused.value.error_message

    # confluent-kafka annotates this as the level (str); it returns the registry's body.
    changed: object = client.set_compatibility(name, "NONE")
    assert changed == {"compatibility": "NONE"}
    assert client.get_compatibility(name) == "NONE"
    second = client.register_schema(name, candidate)
    assert second != schema_id and client.get_versions(name) == [1, 2]
    assert client.get_version(name, 2).schema_id == second

    assert client.delete_version(name, 1) == 1
    assert client.get_versions(name) == [2]
    assert client.delete_subject(name) == [2]
    assert name not in client.get_subjects()


def test_errors_carry_confluent_codes(
    client: SchemaRegistryClient, unique: Callable[[str], str]
) -> None:
    with pytest.raises(SchemaRegistryError) as missing:
        client.get_latest_version("khong-co-chu-de")
    assert missing.value.error_code == 40401
    with pytest.raises(SchemaRegistryError) as bad:
        client.register_schema(subject(unique), Schema('{"type": "objekt"}', "JSON"))
    assert (bad.value.http_status_code, bad.value.error_code) == (422, 42201)
    with pytest.raises(SchemaRegistryError) as avro:
        client.register_schema(subject(unique), Schema('{"type": "record"}', "AVRO"))
    assert avro.value.http_status_code == 422
    with pytest.raises(SchemaRegistryError) as unknown_id:
        client.get_schema(987654321)
    assert unknown_id.value.error_code == 40403


def test_an_unauthenticated_client_is_refused(hub: RunningHub) -> None:
    with SchemaRegistryClient({"url": hub.url}) as anonymous:
        with pytest.raises(SchemaRegistryError) as refused:
            anonymous.get_subjects()
    assert refused.value.http_status_code == 401


def test_references_between_subjects(
    client: SchemaRegistryClient, unique: Callable[[str], str]
) -> None:
    code = f"{unique('ma-ho-so')}"
    client.register_schema(code, Schema('{"type": "string", "pattern": "^[0-9.-]+$"}', "JSON"))
    envelope = {
        "type": "object",
        "properties": {"MaHoSo": {"$ref": "ma-ho-so.json"}},
        "required": ["MaHoSo"],
    }
    refs = [SchemaReference("ma-ho-so.json", code, 1)]
    name = subject(unique)
    client.register_schema(name, Schema(json.dumps(envelope), "JSON", refs))
    back = client.get_latest_version(name)
    assert back.schema.references is not None
    assert [(r.name, r.subject, r.version) for r in back.schema.references] == [
        ("ma-ho-so.json", code, 1)
    ]
    assert client.get_referenced_by(code, 1) == [back.schema_id]


def test_json_serializer_round_trip(
    client: SchemaRegistryClient, hub: RunningHub, unique: Callable[[str], str]
) -> None:
    topic = unique("ho-so.trang-thai")
    serializer = JSONSerializer(json.dumps(STATUS), client)
    context = SerializationContext(topic, MessageField.VALUE)
    message = {"MaHoSo": "000.00.12.H12-251123-0001", "TrangThaiHoSo": 4}
    data = serializer(message, context)
    assert data is not None and data[0] == 0  # Confluent's wire format: magic byte, then the id
    schema_id = int.from_bytes(data[1:5], "big")
    with hub.admin() as admin:
        registered = admin.get(f"/subjects/{topic}-value/versions/latest").json()
    assert registered["id"] == schema_id
    assert JSONDeserializer(None, schema_registry_client=client)(data, context) == message

    with pytest.raises(SerializationError):
        serializer({"MaHoSo": "x", "TrangThaiHoSo": 11}, context)


def test_the_confluent_surface_speaks_its_media_type(hub: RunningHub) -> None:
    with httpx.Client(base_url=hub.url, headers={"X-API-Key": hub.admin_key}) as http:
        answer = http.get("/schemas/types")
        assert answer.json() == ["JSON"]
        assert answer.headers["content-type"] == "application/vnd.schemaregistry.v1+json"
        config = http.get("/config").json()
        levels = {f"{a}{b}" for a in ("BACKWARD", "FORWARD", "FULL") for b in ("", "_TRANSITIVE")}
        assert config["compatibilityLevel"] in levels | {"NONE"}
        bad = http.put("/config/x", json={"compatibility": "SIDEWAYS"})
        assert (bad.status_code, bad.json()["error_code"]) == (422, 42203)
        permanent = http.delete("/subjects/x?permanent=true")
        assert permanent.status_code == 422
