"""Bad input to the schema registry and to validation: 10,000 generated schemas and documents,
never a 5xx, never a stack trace (hypothesis, through real HTTP)."""

from __future__ import annotations

import json
import string
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import RunningHub, start_hub
from tests.integration.conftest import APPROVE, World, provision

pytestmark = pytest.mark.slow

KEYWORDS = [
    "type", "properties", "required", "additionalProperties", "items", "prefixItems", "enum",
    "const", "minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "multipleOf",
    "minLength", "maxLength", "pattern", "format", "minItems", "maxItems", "uniqueItems",
    "allOf", "anyOf", "oneOf", "not", "if", "then", "else", "$ref", "$defs", "definitions",
    "$id", "$schema", "$anchor", "$dynamicRef", "$dynamicAnchor", "dependentRequired",
    "dependentSchemas", "patternProperties", "propertyNames", "contains", "minContains",
    "default", "x-vn-personal-id", "unevaluatedProperties", "minProperties",
]  # fmt: skip
TYPES = ["string", "integer", "number", "object", "array", "boolean", "null", "strng"]
FORMATS = [
    "vn-personal-id", "vn-tax-code", "vn-commune-code", "vn-phone", "vn-agency-code",
    "vn-id-card-9", "yyyyMMdd", "yyyyMMddHHmmss", "date", "email", "uuid", "regex", "unknown",
]  # fmt: skip
PATTERNS = ["^[0-9]{12}$", "[", "\\p{L}+", "(?<=a)b", "a{2,1}", "^\\d+$", "(a|b)*c", "\\w"]
REFS = ["#", "#/$defs/a", "#/definitions/a", "#/$defs/missing", "other.json",
        "http://127.0.0.1:9/x.json", "#anchor", "#/properties/a"]  # fmt: skip
DRAFTS = ["https://json-schema.org/draft/2020-12/schema", "http://json-schema.org/draft-07/schema#",
          "https://json-schema.org/draft/2019-09/schema", "draft-99"]  # fmt: skip

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=8),
)
documents = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner, max_size=4)
    ),
    max_leaves=12,
)


def keyword_value(key: str, schema: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    if key == "type":
        return st.sampled_from(TYPES) | st.lists(st.sampled_from(TYPES), max_size=3)
    if key == "format":
        return st.sampled_from(FORMATS)
    if key == "pattern":
        return st.sampled_from(PATTERNS)
    if key in ("$ref", "$dynamicRef"):
        return st.sampled_from(REFS)
    if key == "$schema":
        return st.sampled_from(DRAFTS)
    if key in ("properties", "$defs", "definitions", "patternProperties", "dependentSchemas"):
        names = st.sampled_from(["a", "b", "so_dinh_danh", "ngay_sinh", "^x"])
        return st.dictionaries(names, schema, max_size=3)
    if key in ("allOf", "anyOf", "oneOf", "prefixItems"):
        return st.lists(schema, max_size=3)
    if key in ("items", "not", "if", "then", "else", "additionalProperties", "contains",
               "propertyNames", "unevaluatedProperties"):  # fmt: skip
        return schema
    if key == "required":
        return st.lists(st.sampled_from(["a", "b", "so_dinh_danh", "a"]), max_size=3)
    if key == "x-vn-personal-id":
        return st.fixed_dictionaries({"id": st.just("so_dinh_danh")}) | documents
    if key in ("minimum", "maximum", "multipleOf", "minLength", "maxLength", "minItems"):
        return st.integers(min_value=-3, max_value=20) | st.floats(-1e3, 1e3) | scalars
    return documents


def schemas() -> st.SearchStrategy[Any]:
    def build(inner: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
        return st.lists(st.sampled_from(KEYWORDS), max_size=5, unique=True).flatmap(
            lambda keys: st.fixed_dictionaries({k: keyword_value(k, inner) for k in keys})
        )

    return st.recursive(st.booleans() | st.just({}), build, max_leaves=10)


@pytest.fixture(scope="module")
def fuzz_hub(database_urls: Any) -> Iterator[RunningHub]:
    yield from start_hub(database_urls("sqlite"))


@pytest.fixture(scope="module")
def admin(fuzz_hub: RunningHub) -> Iterator[httpx.Client]:
    with fuzz_hub.admin() as client:
        yield client


def no_server_error(answer: httpx.Response) -> None:
    assert answer.status_code < 500, answer.text
    assert "Traceback" not in answer.text
    if answer.status_code >= 400:
        body = answer.json()
        assert body.get("detail") or body.get("message"), body


SCHEMA_EXAMPLES = 1700  # x 3 requests, plus the documents below: 10,000 in all


@settings(
    max_examples=SCHEMA_EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(schema=schemas(), candidate=schemas())
def test_generated_schemas_get_clear_answers(
    admin: httpx.Client, schema: Any, candidate: Any
) -> None:
    subject = "fuzz.one"
    registered = admin.post(f"/admin/schemas/{subject}/versions", json={"schema": schema})
    no_server_error(registered)
    checked = admin.post(f"/admin/schemas/{subject}/compatibility", json={"schema": candidate})
    no_server_error(checked)
    if checked.status_code == 200:
        assert checked.json()["outcome"] in {"COMPATIBLE", "INCOMPATIBLE", "UNDECIDED"}
    confluent = admin.post(
        "/subjects/fuzz.two/versions", json={"schema": json.dumps(candidate), "schemaType": "JSON"}
    )
    no_server_error(confluent)


RICH = {
    "type": "object",
    "required": ["so_dinh_danh"],
    "x-vn-personal-id": {"id": "so_dinh_danh", "birth_date": "ngay_sinh", "sex": "gioi_tinh"},
    "properties": {
        "so_dinh_danh": {"type": "string", "format": "vn-personal-id"},
        "ngay_sinh": {"type": "string", "format": "yyyyMMdd"},
        "gioi_tinh": {"enum": [1, 2]},
        "ma_so_thue": {"type": "string", "format": "vn-tax-code"},
        "dien_thoai": {"type": "string", "format": "vn-phone"},
        "ma_xa": {"type": "string", "format": "vn-commune-code"},
        "so_tien": {"type": "number", "multipleOf": 0.01, "maximum": 1e12},
        "giay_to": {"type": "array", "items": {"type": "string", "pattern": "^[A-Z0-9]+$"}},
    },
}
FIELDS = {
    "so_dinh_danh": st.text(string.digits, min_size=10, max_size=13) | scalars,
    "ngay_sinh": st.text(string.digits, min_size=7, max_size=9) | scalars,
    "gioi_tinh": st.integers(0, 3) | scalars,
    "ma_so_thue": st.text(string.digits + "-", min_size=9, max_size=14),
    "dien_thoai": st.text(string.digits + "+", max_size=13),
    "ma_xa": st.text(string.digits, min_size=5, max_size=5),
    "so_tien": st.floats(allow_nan=False, allow_infinity=False) | st.integers(),
    "giay_to": documents,
}


@pytest.fixture(scope="module")
def rich_world(fuzz_hub: RunningHub, admin: httpx.Client, upstream: str) -> World:
    version = admin.post("/admin/schemas/fuzz.rich/versions", json={"schema": RICH})
    assert version.status_code == 201, version.text
    route = {"method": "POST", "path": "/kiem-tra", "upstream_path": "/echo/kiem-tra",
             "request_schema": {"subject": "fuzz.rich", "version": 1}}  # fmt: skip
    return provision(fuzz_hub, base_url=upstream, routes=[route], grant={"purposes": ["fuzz"]},
                     decision=APPROVE)  # fmt: skip


@pytest.fixture(scope="module")
def consumer(fuzz_hub: RunningHub, rich_world: World) -> Iterator[httpx.Client]:
    with fuzz_hub.client(rich_world.key) as client:
        yield client


@settings(
    max_examples=10_000 - 3 * SCHEMA_EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    document=st.fixed_dictionaries({}, optional=FIELDS) | documents,
)
def test_generated_documents_are_validated_never_crash(
    consumer: httpx.Client, rich_world: World, document: Any
) -> None:
    body = json.dumps(document).encode()  # `null` too, sent as a body
    answer = consumer.post(
        f"/api/{rich_world.service}/v1/kiem-tra",
        content=body,
        headers={"Content-Type": "application/json"},
    )
    assert answer.status_code in (200, 422), answer.text
    if answer.status_code == 422:
        errors = answer.json()["errors"]
        assert errors and all(e["pointer"].startswith("/body") and e["message"] for e in errors)
