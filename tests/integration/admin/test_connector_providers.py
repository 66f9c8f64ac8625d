"""/admin/connectors: health checks, breaker, base URLs and mutual TLS settings; the TLS key is
write-only; GET /admin/connectors/{name}/health against a real provider."""

from __future__ import annotations

import json
import secrets
from typing import Any

import pytest
import trustme

from tests.integration.admin.conftest import UPSTREAM, Base, Registry, ok, problem
from tests.integration.connectors.connector_upstreams import (
    ProviderState,
    UvicornThread,
    build_app,
)
from tests.integration.sealed import connector_tls_key
from tests.wait import wait_until

CA = trustme.CA()
CLIENT = CA.issue_cert("hub.lgsp.local")
CERT = CLIENT.cert_chain_pems[0].bytes().decode()
KEY = CLIENT.private_key_pem.bytes().decode()
OTHER_KEY = CA.issue_cert("other.lgsp.local").private_key_pem.bytes().decode()
CA_PEM = CA.cert_pem.bytes().decode()


def stored_key(reg: Registry, name: str) -> str | None:
    """The stored key, opened (it must be sealed)."""
    return connector_tls_key(reg.hub.hub.runtime.engine, name)


@pytest.mark.parametrize(
    ("fields", "pointer"),
    [
        ({"base_urls": []}, "/base_urls"),
        ({"base_urls": ["ftp://x"]}, "/base_urls/0"),
        ({"base_urls": ["http://b.local"]}, "/base_urls/0"),  # base_url must come first
        ({"base_urls": [UPSTREAM, UPSTREAM]}, "/base_urls"),
        ({"failover": "random"}, "/failover"),
        ({"health": {"interval": 0}}, "/health/interval"),
        ({"health": {"timeout": -1}}, "/health/timeout"),
        ({"health": {"interval": 1, "timeout": 2}}, "/health/timeout"),
        ({"health": {"healthy_threshold": 0}}, "/health/healthy_threshold"),
        ({"health": {"unhealthy_threshold": -3}}, "/health/unhealthy_threshold"),
        ({"breaker": {"failures": 0}}, "/breaker/failures"),
        ({"breaker": {"window": 0}}, "/breaker/window"),
        ({"breaker": {"cool_down": -1}}, "/breaker/cool_down"),
        ({"tls": {"client_cert": "not a pem", "client_key": KEY}}, "/tls/client_cert"),
        ({"tls": {"client_cert": CERT}}, "/tls/client_key"),
        ({"tls": {"client_key": KEY}}, "/tls/client_cert"),
        ({"tls": {"client_cert": CERT, "client_key": "-----BEGIN PRIVATE KEY-----\nAAAA\n"}},
         "/tls/client_key"),
        ({"tls": {"client_cert": CERT, "client_key": OTHER_KEY}}, "/tls/client_key"),
        ({"tls": {"ca_bundle": "-----BEGIN CERTIFICATE-----\nnope\n-----END CERTIFICATE-----"}},
         "/tls/ca_bundle"),
        ({"tls": {"verify": False}}, "/tls/verify"),
        ({"health_path": "health"}, "/health_path"),
        ({"health_path": "/health?full=1"}, "/health_path"),
    ],
)  # fmt: skip
def test_provider_settings_rules(
    reg: Registry, base: Base, fields: dict[str, object], pointer: str
) -> None:
    body = {"name": reg.unique("conn"), "agency_code": base.agency, "kind": "rest",
            "base_url": UPSTREAM, **fields}  # fmt: skip
    doc = problem(reg.client.post("/admin/connectors", json=body), 422, pointer)
    assert KEY not in json.dumps(doc) and OTHER_KEY not in json.dumps(doc)


def test_defaults_and_several_base_urls(reg: Registry, base: Base) -> None:
    created = reg.connector(base.agency)
    assert created["base_urls"] == [UPSTREAM] and created["failover"] == "in_order"
    assert created["health"]["interval"] > 0 and created["breaker"]["enabled"] is True
    assert created["tls"] is None

    # Only base_urls: base_url is its first.
    urls = ["http://a.local", "http://b.local"]
    body = {"name": reg.unique("conn"), "agency_code": base.agency, "kind": "rest",
            "base_urls": urls, "failover": "round_robin"}  # fmt: skip
    listed = ok(reg.client.post("/admin/connectors", json=body), 201)
    assert (listed["base_url"], listed["base_urls"], listed["failover"]) == (
        "http://a.local", urls, "round_robin"
    )  # fmt: skip
    # A new base_url replaces the first; the others stay.
    name = listed["name"]
    moved = ok(reg.client.patch(f"/admin/connectors/{name}", json={"base_url": "http://c.local"}))
    assert moved["base_urls"] == ["http://c.local", "http://b.local"]
    exported = ok(reg.client.get("/admin/export"))
    mine = [c for c in exported["connectors"] if c["name"] == name]
    assert mine[0]["base_urls"] == ["http://c.local", "http://b.local"]


def test_the_tls_key_is_write_only(reg: Registry, base: Base) -> None:
    tls = {"client_cert": CERT, "client_key": KEY, "ca_bundle": CA_PEM}
    created = reg.connector(base.agency, tls=tls)
    name = created["name"]
    assert created["tls"] == {"client_cert": CERT, "ca_bundle": CA_PEM, "client_key_set": True}
    assert stored_key(reg, name) == KEY

    rid = secrets.token_hex(8)
    ok(reg.client.patch(f"/admin/connectors/{name}", json={"read_timeout": 3},
                        headers={"X-Request-Id": rid}))  # fmt: skip
    assert stored_key(reg, name) == KEY  # no tls in a PATCH keeps the key
    other = CA.issue_cert("hub2.lgsp.local")
    rotated = {"client_cert": other.cert_chain_pems[0].bytes().decode(),
               "client_key": other.private_key_pem.bytes().decode()}  # fmt: skip
    rid = secrets.token_hex(8)
    ok(reg.client.patch(f"/admin/connectors/{name}", json={"tls": rotated},
                        headers={"X-Request-Id": rid}))  # fmt: skip
    assert stored_key(reg, name) == rotated["client_key"]
    (record,) = reg.changes(request_id=rid)
    assert record["details"]["changes"]["tls.client_key"] == ["(hidden)", "(changed)"]

    seen = [
        reg.client.get(f"/admin/connectors/{name}").text,
        reg.client.get("/admin/connectors").text,
        reg.client.get("/admin/export").text,
        json.dumps(reg.changes()),
    ]
    for text in seen:
        assert "PRIVATE KEY" not in text

    cleared = ok(reg.client.patch(f"/admin/connectors/{name}", json={"tls": None}))
    assert cleared["tls"] is None and stored_key(reg, name) is None


@pytest.mark.parametrize(
    "limits", [{}, {"max_in_flight": 2, "max_waiting": 1}], ids=["unlimited", "max_in_flight"]
)
def test_the_health_of_a_provider_in_the_admin_api_and_readyz(
    reg: Registry, base: Base, limits: dict[str, int]
) -> None:
    """Also for a connector held to a number of calls at once (the data plane wraps it)."""
    with UvicornThread(build_app(ProviderState())) as provider:
        health = {"interval": 0.2, "timeout": 0.2, "healthy_threshold": 1,
                  "unhealthy_threshold": 1}  # fmt: skip
        name = reg.connector(
            base.agency, base_url=provider + "/echo", health_path="/health", health=health,
            **limits,
        )["name"]  # fmt: skip

        def healthy() -> dict[str, object] | None:
            answer = ok(reg.client.get(f"/admin/connectors/{name}/health"))
            return answer if answer["state"] == "healthy" else None

        report = wait_until(healthy, timeout=15, what=f"{name} to be healthy")
        assert report["checked"] is True
        assert report["breaker"] == {"state": "closed", "recent_failures": 0, "opened": 0,
                                     "retry_after": None}  # fmt: skip
        history = report["history"]
        assert isinstance(history, list) and history[-1]["ok"] is True
        ready = ok(reg.client.get("/readyz"))
        assert ready["status"] == "ready"
        assert ready["connectors"][name]["state"] == "healthy"
        assert ready["connectors"][name]["breaker"] == "closed"

    # The provider is gone: the connector turns unhealthy, the hub stays ready.
    def unhealthy() -> dict[str, Any] | None:
        answer = ok(reg.client.get("/readyz"))
        return answer if answer["connectors"][name]["state"] == "unhealthy" else None

    ready = wait_until(unhealthy, timeout=15, what=f"{name} to be unhealthy")
    assert ready["status"] == "ready" and ready["connectors"][name]["last_error"]

    unchecked = reg.connector(base.agency)["name"]
    answer = ok(reg.client.get(f"/admin/connectors/{unchecked}/health"))
    assert (answer["checked"], answer["state"], answer["history"]) == (False, "unknown", [])
    problem(reg.client.get("/admin/connectors/no-such-connector/health"), 404)
