"""docker-compose.yml is valid for Debian's docker-compose, and refuses to start without secrets."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
SECRETS = {
    "POSTGRES_PASSWORD": "p" * 20,
    "LGSP_KEY_PEPPER": "k" * 40,
    "LGSP_SUBJECT_HMAC_KEY": "s" * 40,
    "LGSP_BOOTSTRAP_ADMIN_KEY": "lgsp_abcdefghijkl." + "x" * 43,
    "LGSP_AUDIT_KEY_PATH": "/etc/lgsp/audit-signing.key",
    "LGSP_SECRETS_KEY_DIR": "/etc/lgsp/secrets",
}


def _compose(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    binary = shutil.which("docker-compose")
    assert binary, "docker-compose is installed by scripts/setup.sh"
    return subprocess.run(
        [binary, "-f", str(ROOT / "docker-compose.yml"), "config", "-q"],
        env={"PATH": "/usr/bin:/bin", **env},
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
    )


def test_compose_file_is_valid():
    result = _compose(SECRETS)
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize("missing", sorted(SECRETS))
def test_compose_refuses_missing_secrets(missing):
    result = _compose({k: v for k, v in SECRETS.items() if k != missing})
    assert result.returncode != 0
    assert missing in result.stderr


def test_compose_runs_the_hub_on_kafka():
    """The hub's settings point at the compose file's Kafka, which it waits for."""
    import yaml

    spec = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    hub = spec["services"]["hub"]
    assert hub["environment"]["LGSP_BROKER"] == "kafka"
    host, _, port = hub["environment"]["LGSP_KAFKA_BOOTSTRAP"].partition(":")
    kafka = spec["services"][host]
    assert f"PLAINTEXT://{host}:{port}" in kafka["environment"]["KAFKA_ADVERTISED_LISTENERS"]
    assert hub["depends_on"][host]["condition"] == "service_healthy"
