"""`lgsp apply` / `lgsp export` with a connector's provider settings: several base URLs, health,
breaker and mutual TLS with its key from the environment."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
import yaml

from gateway.cli import manifests as manifest_client
from tests.integration.admin.conftest import Registry, ok
from tests.integration.admin.test_connector_providers import CA_PEM, CERT, KEY
from tests.integration.admin.test_manifest_client import run_apply
from tests.integration.sealed import connector_tls_key


def test_a_connector_with_failover_health_and_mutual_tls_round_trips(
    reg: Registry, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    agency = reg.agency()
    name = reg.unique("ndxp")
    doc = {
        "apiVersion": "lgsp.laichau.gov.vn/v1",
        "kind": "Manifest",
        "connectors": [
            {
                "name": name,
                "agency_code": agency,
                "kind": "rest",
                "base_urls": ["https://ndxp-1.gov.local", "https://ndxp-2.gov.local"],
                "failover": "round_robin",
                "health_path": "/health",
                "health": {"interval": 15, "timeout": 3, "unhealthy_threshold": 2},
                "breaker": {"failures": 10, "window": 60, "cool_down": 20},
                "tls": {"client_cert": CERT, "client_key": {"env": "NDXP_TLS_KEY"},
                        "ca_bundle": CA_PEM},
            }
        ],
    }  # fmt: skip
    path = tmp_path / "manifest.yaml"
    path.write_text(yaml.safe_dump(doc), encoding="utf-8")

    monkeypatch.delenv("NDXP_TLS_KEY", raising=False)
    code, text = run_apply(reg, path)
    assert code == 2 and "/connectors/0/tls/client_key" in text

    monkeypatch.setenv("NDXP_TLS_KEY", KEY)
    code, text = run_apply(reg, path)
    assert code == 0 and f"+ connector {name} (create)" in text, text
    created = ok(reg.client.get(f"/admin/connectors/{name}"))
    assert created["base_url"] == "https://ndxp-1.gov.local"
    assert created["tls"]["client_key_set"] is True and created["health"]["timeout"] == 3
    code, text = run_apply(reg, path)
    assert f"= connector {name} (unchanged)" in text, text

    # The export holds no key; applied as it is, it changes nothing and keeps the stored key.
    out = io.StringIO()
    assert manifest_client.export(hub_url=reg.hub.url, key=reg.hub.admin_key, out=out) == 0
    exported = yaml.safe_load(out.getvalue())
    (mine,) = [c for c in exported["connectors"] if c["name"] == name]
    assert "client_key" not in mine["tls"] and "PRIVATE KEY" not in out.getvalue()
    path.write_text(yaml.safe_dump({**exported, "connectors": [mine]}), encoding="utf-8")
    code, text = run_apply(reg, path)
    assert code == 0 and f"= connector {name} (unchanged)" in text, text
    assert connector_tls_key(reg.hub.hub.runtime.engine, name) == KEY
