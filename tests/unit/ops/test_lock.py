"""Installs are reproducible: uv.lock matches pyproject.toml, and every install uses it."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.version import Version

ROOT = Path(__file__).resolve().parents[3]
# Every project with a lock: the hub, and the test tools that cannot share its environment.
PROJECTS = [ROOT, ROOT / "tests" / "tools" / "schemathesis"]


def _uv() -> str:
    """The uv scripts/setup.sh installed (pinned by hash), else one on PATH."""
    local = ROOT / ".tools" / "uv" / "bin" / "uv"
    found = str(local) if local.exists() else shutil.which("uv")
    assert found, "uv is missing: scripts/setup.sh installs it into .tools/uv"
    return found


def _pinned_uv() -> str:
    text = (ROOT / "scripts" / "uv-requirements.txt").read_text()
    match = re.search(r"^uv==(\S+)", text, re.MULTILINE)
    assert match, "scripts/uv-requirements.txt pins uv"
    return match.group(1)


@pytest.mark.parametrize("project", PROJECTS, ids=lambda p: str(p.relative_to(ROOT)) or ".")
def test_the_lock_matches_pyproject(project: Path) -> None:
    """Fails when a dependency was changed in pyproject.toml without `uv lock` (or the reverse)."""
    result = subprocess.run(
        [_uv(), "lock", "--check", "--offline"],
        cwd=project,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "UV_PYTHON_DOWNLOADS": "never"},
    )
    assert result.returncode == 0, (
        "pyproject.toml and uv.lock disagree: run `scripts/upgrade -P <package>` (or `uv lock`) "
        f"and commit uv.lock with the change\n{result.stderr}"
    )


@pytest.mark.parametrize("project", PROJECTS, ids=lambda p: str(p.relative_to(ROOT)) or ".")
def test_every_locked_file_has_a_hash(project: Path) -> None:
    lock = tomllib.loads((project / "uv.lock").read_text())
    missing = [
        package["name"]
        for package in lock["package"]
        if "registry" in package.get("source", {})
        for artifact in [package.get("sdist"), *package.get("wheels", [])]
        if artifact is not None and not str(artifact.get("hash", "")).startswith("sha256:")
    ]
    assert lock["package"] and not missing


def test_dependencies_keep_a_floor_and_a_major_cap() -> None:
    """For people who install the hub as a library: a range, never a pin, never open-ended."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    tools = tomllib.loads((PROJECTS[1] / "pyproject.toml").read_text())
    declared = [
        *project["project"]["dependencies"],
        *project["dependency-groups"]["dev"],
        *tools["project"]["dependencies"],
    ]
    loose = []
    for line in declared:
        requirement = Requirement(line)
        operators = {spec.operator for spec in requirement.specifier}
        if not {">=", "<"} <= operators:
            loose.append(line)
    assert not loose, f"give these a floor (>=) and a major cap (<): {loose}"


def test_the_image_installs_from_the_lock_with_the_same_uv() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert f"ghcr.io/astral-sh/uv:{_pinned_uv()} " in dockerfile
    installs = [line for line in dockerfile.splitlines() if line.startswith("RUN uv ")]
    assert installs and all("sync --locked --no-dev" in line for line in installs)
    assert "pip install" not in dockerfile
    assert "COPY simulators" not in dockerfile  # the simulated systems stay out of the image


def test_setup_installs_the_pinned_uv_then_the_lock() -> None:
    setup = (ROOT / "scripts" / "setup.sh").read_text()
    assert "--require-hashes" in setup and "-r scripts/uv-requirements.txt" in setup
    assert '"$UV" sync --locked' in setup
    test = (ROOT / "scripts" / "test").read_text()
    assert "sync --locked" in test and "--project tests/tools/schemathesis" in test
    assert Version(_pinned_uv())
