"""Whatever a caller sends, the data plane answers below 500, and refusals are problem documents."""

from __future__ import annotations

import string

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import start_hub
from tests.integration.conftest import APPROVE, World, provision

SCHEMA = {
    "type": "object",
    "required": ["so_dinh_danh"],
    "properties": {
        "so_dinh_danh": {"type": "string", "pattern": "^[0-9]{12}$"},
        "ngay_sinh": {"type": "string", "format": "date"},
        "dia_chi": {"type": "object", "properties": {"ma_xa": {"type": "string"}}},
        "con": {"type": "array", "items": {"type": "integer", "maximum": 10}},
    },
}

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)
bodies = st.one_of(
    json_values.map(lambda v: httpx.Request("POST", "/", json=v).content),
    st.binary(max_size=300),
    st.just(b"[" * 5000),  # deeper than any parser allows
    st.just(b"[" * 1000 + b"]" * 1000),  # parses, but too deep to describe in an error
    st.just(b'{"so_dinh_danh": "012090001234", "con": ' + b"[" * 1000 + b"]" * 1000 + b"}"),
    st.just(b'{"so_dinh_danh": 123456789012345678901234567890}'),  # beyond 64 bits
    st.just(b'{"so_dinh_danh": "\\ud800"}'),  # a lone surrogate
)
content_types = st.sampled_from(
    ["application/json", "application/json; charset=utf-8", "application/problem+json",
     "text/plain", "", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x"]
)  # fmt: skip
segments = st.text(alphabet=string.ascii_letters + string.digits + "-._~%20é", max_size=12)
methods = st.sampled_from(["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"])


@pytest.fixture(scope="module")
def fuzz_world(database_urls, upstream):
    hubs = start_hub(database_urls("sqlite"))
    hub = next(hubs)
    world = provision(
        hub, base_url=upstream, personal_data=True, subject_pointer="/body/so_dinh_danh",
        routes=[{"method": "POST", "path": "/tra-cuu/{ma}", "upstream_path": "/echo/{ma}",
                 "request_schema": SCHEMA,
                 "params_schema": {"type": "object", "properties": {"n": {"type": "integer"}}}}],
        grant={"purposes": ["kiem-thu"]}, decision=APPROVE,
    )  # fmt: skip
    yield world
    hubs.close()


@settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    method=methods,
    segment=segments,
    query=st.dictionaries(segments, segments, max_size=3),
    body=bodies,
    content_type=content_types,
    purpose=st.sampled_from(["kiem-thu", "x" * 300, "khác", "kiem thu"]),
    request_id=st.text(max_size=200),
)
def test_no_input_reaches_a_5xx(fuzz_world: World, method, segment, query, body, content_type,
                               purpose, request_id):  # fmt: skip
    headers = {"X-API-Key": fuzz_world.key, "Content-Type": content_type, "X-Purpose": purpose}
    # Only what an HTTP client can send at all (httpx refuses the rest before it leaves).
    if request_id.isascii() and request_id.isprintable() and request_id == request_id.strip():
        headers["X-Request-Id"] = request_id
    with fuzz_world.hub.client() as client:
        answer = client.request(
            method, f"/api/{fuzz_world.service}/v1/tra-cuu/{segment}", params=query,
            content=body, headers={k: v.encode("utf-8") for k, v in headers.items()},
        )  # fmt: skip
    assert answer.status_code < 500, answer.text
    if answer.status_code >= 400:
        assert answer.headers["content-type"] == "application/problem+json"
        assert answer.json()["status"] == answer.status_code
