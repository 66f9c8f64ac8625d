"""Helpers for the admin API tests: unique objects made through the API, principals by role."""

from __future__ import annotations

import secrets
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from tests.conftest import RunningHub
from tests.integration.conftest import auditor_key, random_agency

UPSTREAM = "http://127.0.0.1:9"  # never called: these tests manage the registry only
ROUTE = {"method": "GET", "path": "/cong-dan/{so_dinh_danh}"}


def ok(answer: httpx.Response, status: int = 200) -> Any:
    assert answer.status_code == status, answer.text
    return answer.json() if answer.content else None


def problem(answer: httpx.Response, status: int, pointer: str | None = None) -> dict[str, Any]:
    """Assert a problem document with `status` and, if given, an error at `pointer`."""
    assert answer.status_code == status, answer.text
    assert answer.headers["content-type"].startswith("application/problem+json")
    doc: dict[str, Any] = answer.json()
    assert doc["status"] == status
    if pointer is not None:
        pointers = [e["pointer"] for e in doc.get("errors", [])]
        assert pointer in pointers, doc
    return doc


@dataclass
class Registry:
    """Makes registry objects for one test through the admin API."""

    hub: RunningHub
    client: httpx.Client
    unique: Callable[[str], str]

    def agency(self) -> str:
        code = random_agency()
        ok(self.client.post("/admin/agencies", json={"code": code, "name": "Sở thử"}), 201)
        return code

    def connector(self, agency: str | None = None, **fields: Any) -> dict[str, Any]:
        body = {
            "name": self.unique("conn"),
            "agency_code": agency or self.agency(),
            "kind": "rest",
            "base_url": UPSTREAM,
            **fields,
        }
        return dict(ok(self.client.post("/admin/connectors", json=body), 201))

    def service(self, connector: str | None = None, **fields: Any) -> dict[str, Any]:
        body = {
            "name": self.unique("svc"),
            "version": "v1",
            "connector": connector or self.connector()["name"],
            "title": "Tra cứu công dân",
            "routes": [ROUTE],
            **fields,
        }
        return dict(ok(self.client.post("/admin/services", json=body), 201))

    def consumer(self, agency: str | None = None) -> dict[str, Any]:
        body = {"name": self.unique("app"), "agency_code": agency or self.agency(), "title": "App"}
        return dict(ok(self.client.post("/admin/consumers", json=body), 201))

    def principal(self, role: str, agency: str | None = None) -> str:
        body = {"name": self.unique(role), "role": role, "agency_code": agency}
        return str(ok(self.client.post("/admin/principals", json=body), 201)["key"])

    def as_key(self, key: str) -> httpx.Client:
        return self.hub.client(key)

    def changes(self, **filters: Any) -> list[dict[str, Any]]:
        """Registry-change audit records, newest first (read with an auditor key)."""
        with self.hub.client(auditor_key(self.hub)) as auditor:
            answer = auditor.get(
                "/audit/exchanges", params={"kind": "registry_change", "limit": 1000, **filters}
            )
        return list(ok(answer)["items"])


@pytest.fixture
def reg(hub: RunningHub, unique: Callable[[str], str]) -> Iterator[Registry]:
    with hub.admin() as client:
        yield Registry(hub, client, unique)


@dataclass(frozen=True)
class Base:
    """Objects shared by a module's tests that only read them (rule checks)."""

    agency: str
    connector: str
    soap_connector: str
    consumer: str
    service: str


@pytest.fixture(scope="module")
def base(hub: RunningHub) -> Base:
    def name(prefix: str) -> str:
        return f"{prefix}-{secrets.token_hex(3)}"

    with hub.admin() as client:
        reg = Registry(hub, client, name)
        agency = reg.agency()
        connector = reg.connector(agency)["name"]
        soap = reg.connector(agency, kind="soap", options={"namespace": "urn:x"})["name"]
        return Base(agency, connector, soap, reg.consumer(agency)["name"],
                    reg.service(connector)["name"])  # fmt: skip
