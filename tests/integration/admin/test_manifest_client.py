"""gateway.cli.manifests (`lgsp apply` / `lgsp export`) against a live hub."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
import yaml

from gateway.cli import manifests as manifest_client
from tests.integration.admin.conftest import Registry, ok
from tests.integration.admin.test_manifest import manifest


def run_apply(reg: Registry, path: Path, *, dry_run: bool = False) -> tuple[int, str]:
    out = io.StringIO()
    code = manifest_client.apply(
        hub_url=reg.hub.url, key=reg.hub.admin_key, path=path, dry_run=dry_run, out=out
    )
    return code, out.getvalue()


def test_apply_with_an_environment_secret(
    reg: Registry, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    doc = manifest(reg)
    connector = doc["connectors"][0]["name"]
    service = doc["services"][0]["name"]
    doc["connectors"][0]["auth"]["secret"] = {"env": "POPDB_PASSWORD"}
    path = tmp_path / "manifest.yaml"
    path.write_text(yaml.safe_dump(doc, allow_unicode=True), encoding="utf-8")

    monkeypatch.delenv("POPDB_PASSWORD", raising=False)
    code, text = run_apply(reg, path)
    assert code == 2 and "POPDB_PASSWORD" in text and "/connectors/0/auth/secret" in text

    monkeypatch.setenv("POPDB_PASSWORD", "from-the-environment")
    code, text = run_apply(reg, path, dry_run=True)
    assert code == 0 and f"+ service {service}/v1 (create)" in text and "dry run" in text
    code, text = run_apply(reg, path)
    assert code == 0 and f"+ connector {connector} (create)" in text
    assert "5 create, 0 update, 0 unchanged (applied" in text
    code, text = run_apply(reg, path)
    assert code == 0 and f"= connector {connector} (unchanged)" in text
    assert "from-the-environment" not in text

    doc["connectors"][0]["base_url"] = "http://b.local"
    path.write_text(yaml.safe_dump(doc), encoding="utf-8")
    code, text = run_apply(reg, path)
    assert f"~ connector {connector}: base_url http://127.0.0.1:9 -> http://b.local" in text
    assert ok(reg.client.get(f"/admin/connectors/{connector}"))["base_url"] == "http://b.local"


def test_refusals_are_printed_with_pointers(reg: Registry, tmp_path: Path) -> None:
    doc = manifest(reg)
    doc["services"][0]["routes"][0]["path"] = "relative"
    doc["connectors"][0]["base_url"] = "ftp://x"
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(doc), encoding="utf-8")
    code, text = run_apply(reg, path)
    assert code == 1 and "(422)" in text
    assert "  /connectors/0/base_url: " in text

    out = io.StringIO()
    assert manifest_client.apply(hub_url=reg.hub.url, key="bad", path=path, dry_run=False,
                                 out=out) == 1  # fmt: skip
    assert "(401)" in out.getvalue()
    broken = tmp_path / "broken.yaml"
    broken.write_text("kind: [unclosed", encoding="utf-8")
    assert run_apply(reg, broken)[0] == 2
    assert run_apply(reg, tmp_path / "missing.yaml")[0] == 2


def test_export_writes_yaml_that_applies_unchanged(
    reg: Registry, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    agency = reg.agency()
    connector = reg.connector(agency, auth={"type": "api_key", "secret": "k-123"})["name"]
    reg.service(connector, status="published")
    integrator = reg.principal("integrator", agency)
    out = io.StringIO()
    assert manifest_client.export(hub_url=reg.hub.url, key=integrator, out=out) == 0
    exported = yaml.safe_load(out.getvalue())
    variable = exported["connectors"][0]["auth"]["secret"]["env"]
    assert "k-123" not in out.getvalue()
    path = tmp_path / "export.yaml"
    path.write_text(out.getvalue(), encoding="utf-8")
    monkeypatch.setenv(variable, "k-123")
    sink = io.StringIO()
    code = manifest_client.apply(
        hub_url=reg.hub.url, key=integrator, path=path, dry_run=False, out=sink
    )
    assert code == 0, sink.getvalue()
    assert "0 create, 0 update, 3 unchanged" in sink.getvalue()


def test_deadlines_round_trip_through_export_and_apply(reg: Registry, tmp_path: Path) -> None:
    agency = reg.agency()
    retry = {"max_attempts": 2, "max_delay": 6}
    name = reg.connector(agency, attempt_deadline=3, retry=retry)["name"]
    integrator = reg.principal("integrator", agency)
    out = io.StringIO()
    assert manifest_client.export(hub_url=reg.hub.url, key=integrator, out=out) == 0
    doc = yaml.safe_load(out.getvalue())
    (exported,) = doc["connectors"]
    assert (exported["attempt_deadline"], exported["retry"]) == (3, retry)

    path = tmp_path / "export.yaml"
    path.write_text(out.getvalue(), encoding="utf-8")
    sink = io.StringIO()
    code = manifest_client.apply(
        hub_url=reg.hub.url, key=integrator, path=path, dry_run=False, out=sink
    )
    assert code == 0, sink.getvalue()
    assert "0 create, 0 update, 2 unchanged" in sink.getvalue()

    # A manifest written before deadlines existed has none: the connector takes the default.
    del exported["attempt_deadline"]
    path.write_text(yaml.safe_dump(doc, allow_unicode=True), encoding="utf-8")
    code, text = run_apply(reg, path)
    assert code == 0 and f"~ connector {name}: attempt_deadline 3.0 -> (none)" in text
    assert ok(reg.client.get(f"/admin/connectors/{name}"))["attempt_deadline"] is None
