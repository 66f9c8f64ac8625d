"""/docs and /redoc work offline (every asset comes from the hub) and the OpenAPI document says
how to send a key, so that "Try it out" can call the management and topic APIs."""

from __future__ import annotations

import re

import pytest
from openapi_spec_validator import OpenAPIV31SpecValidator

from tests.conftest import RunningHub

ASSET = re.compile(r"""(?:src|href)=["']([^"']+)["']|url:\s*["']([^"']+)["']""")


@pytest.mark.parametrize("page", ["/docs", "/redoc"])
def test_documentation_pages_need_no_other_host(hub: RunningHub, page: str) -> None:
    with hub.client() as client:
        answer = client.get(page)
        assert answer.status_code == 200
        assets = [a or b for a, b in ASSET.findall(answer.text)]
        assert assets, "the page loads its scripts"
        for asset in assets:
            assert asset.startswith("/"), f"{page} loads {asset} from another host"
            fetched = client.get(asset)
            assert fetched.status_code == 200, asset
            assert fetched.content, asset


def test_the_openapi_document_declares_how_keys_are_sent(hub: RunningHub) -> None:
    with hub.client() as client:
        spec = client.get("/openapi.json").json()
    schemes = spec["components"]["securitySchemes"]
    assert schemes["ManagementKey"] == {
        "type": "apiKey",
        "in": "header",
        "name": "X-API-Key",
        "description": schemes["ManagementKey"]["description"],
    }
    assert schemes["ManagementBearer"]["scheme"] == "bearer"
    assert schemes["SchemaRegistryBasic"]["scheme"] == "basic"
    assert schemes["ConsumerKey"]["name"] == "X-API-Key"
    token_url = schemes["ConsumerToken"]["flows"]["clientCredentials"]["tokenUrl"]
    assert token_url == "/oauth2/token"

    def security(path: str, method: str) -> list[str]:
        return sorted(k for s in spec["paths"][path][method].get("security", []) for k in s)

    management = ["ManagementBearer", "ManagementKey", "SchemaRegistryBasic"]
    assert security("/admin/agencies", "post") == management
    assert security("/audit/exchanges", "get") == management
    assert security("/subjects", "get") == management
    assert security("/topics/{topic}/messages", "post") == ["ConsumerKey", "ConsumerToken"]
    assert security("/healthz", "get") == []


def test_the_openapi_document_is_valid_and_secures_the_new_routes(hub: RunningHub) -> None:
    """The admin and audit OpenAPI validates as OpenAPI 3.1; the callers view takes a management
    key, the catalogue a consumer key or token."""
    with hub.client() as client:
        spec = client.get("/openapi.json").json()
    OpenAPIV31SpecValidator(spec).validate()

    def security(path: str, method: str) -> list[str]:
        return sorted(k for s in spec["paths"][path][method].get("security", []) for k in s)

    management = ["ManagementBearer", "ManagementKey", "SchemaRegistryBasic"]
    assert security("/admin/services/{name}/{version}/callers", "get") == management
    assert security("/admin/services/{name}/callers", "get") == management
    for path in ("/catalog", "/catalog/{name}/{version}", "/catalog/{name}/{version}/openapi.json"):
        assert security(path, "get") == ["ConsumerKey", "ConsumerToken"], path
