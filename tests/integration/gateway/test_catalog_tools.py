"""The catalogue's OpenAPI documents as tools use them: every demo service's document is valid
OpenAPI 3.1, and schemathesis, driven by a generated document with a consumer's key, finds no
5xx in the data plane (its own command line, in its own environment: tests/tools/schemathesis)."""

from __future__ import annotations

import io
import json
import os
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from openapi_spec_validator import OpenAPIV31SpecValidator

from gateway.cli.manifests import apply
from gateway.demo import DEMO_SECRETS, MANIFEST, SIMULATORS, _manifest_for
from tests.conftest import BACKENDS, RunningHub, free_port, start_hub
from tests.integration.conftest import World, ok
from tests.integration.gateway.test_catalog import catalog_world

ROOT = Path(__file__).parents[3]
SCHEMATHESIS = ROOT / ".tools" / "schemathesis" / "bin" / "schemathesis"
OPTIONS = [
    "--checks=not_a_server_error",
    "--phases=examples,coverage,fuzzing",
    "--max-examples=25",
    # The fuzzing phase runs until the time budget is spent (max-examples bounds the others).
    "--max-time=20",
    "--workers=1",
    "--seed=12",
    "--no-color",
    "--generation-database=none",
    "--request-timeout=10",
]


@pytest.fixture(scope="module", params=BACKENDS)
def demo_hub(
    request: pytest.FixtureRequest,
    database_urls: Callable[[str], str],
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[RunningHub]:
    """A hub of its own with the demo's bundled manifest applied (the simulators' ports are
    free ones nobody listens on: the documents do not need the providers)."""
    for running in start_hub(database_urls(request.param)):
        manifest = _manifest_for(
            {name: free_port() for name in SIMULATORS}, tmp_path_factory.mktemp("demo")
        )
        saved = {k: os.environ.get(k) for k in DEMO_SECRETS}
        os.environ.update(DEMO_SECRETS)
        try:
            out = io.StringIO()
            status = apply(
                hub_url=running.url, key=running.admin_key, path=manifest, dry_run=False, out=out
            )
        finally:
            for name, value in saved.items():
                if value is None:
                    os.environ.pop(name, None)
                else:
                    os.environ[name] = value
        assert status == 0, out.getvalue()
        yield running


def test_every_demo_service_has_a_valid_openapi_document(demo_hub: RunningHub) -> None:
    manifest = yaml.safe_load(MANIFEST.read_text("utf-8"))
    listed = {
        (s["name"], s["version"])
        for s in manifest["services"]
        if s.get("status", "draft") in ("published", "deprecated")
    }
    assert listed, "the demo publishes services"
    with demo_hub.admin() as admin:
        key = ok(admin.post("/admin/consumers/mot-cua-laichau/keys", json={"label": "catalog"}))
    with demo_hub.client(key["key"]) as client:
        items = client.get("/catalog").json()["items"]
        found = {(i["name"], v["version"]) for i in items for v in i["versions"]}
        assert found == listed
        for name, version in sorted(found):
            spec = client.get(f"/catalog/{name}/{version}/openapi.json").json()
            OpenAPIV31SpecValidator(spec).validate()
            assert spec["paths"], (name, version)
            personal = next(s for s in manifest["services"] if s["name"] == name)
            if personal.get("personal_data"):
                assert spec["components"]["parameters"]["XPurpose"]["required"] is True
        spec = client.get("/catalog/dan-cu/v1/openapi.json").json()
    granted = next(
        g for g in manifest["grants"]
        if g["consumer"] == "mot-cua-laichau" and g["service"] == "dan-cu"
    )  # fmt: skip
    assert spec["components"]["parameters"]["XPurpose"]["schema"]["enum"] == sorted(
        granted["purposes"]
    )


def run_schemathesis(
    spec: dict[str, Any], world: World, tmp_path: Path
) -> subprocess.CompletedProcess[str]:
    path = tmp_path / "openapi.json"
    path.write_text(json.dumps(spec), "utf-8")
    command = [str(SCHEMATHESIS), "run", str(path), "--url", spec["servers"][0]["url"]]
    command += ["--header", f"X-API-Key: {world.key}", *OPTIONS]
    return subprocess.run(
        command,
        capture_output=True,
        text=True,
        timeout=90,
        cwd=tmp_path,
    )


def test_schemathesis_finds_no_server_error(
    hub: RunningHub, make_world: Callable[..., World], upstream: str, tmp_path: Path
) -> None:
    world = catalog_world(make_world, upstream)
    with hub.client(world.key) as client:
        spec = client.get(f"/catalog/{world.service}/v1/openapi.json").json()
    done = run_schemathesis(spec, world, tmp_path)
    assert done.returncode == 0, done.stdout[-6000:] + done.stderr[-2000:]
    # It did drive the data plane: its calls are in the audit log.
    with hub.admin() as admin:
        view = ok(admin.get(f"/admin/services/{world.service}/v1/callers"), 200)
    (row,) = view["callers"]
    assert row["consumer"] == world.consumer and row["calls"] >= 20
