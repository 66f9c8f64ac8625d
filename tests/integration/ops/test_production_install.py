"""The production install, as the Docker image makes it: from uv.lock, without the test tools and
without the simulated systems, it serves, and nothing in the hub reaches for the simulators."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
from pathlib import Path

import httpx
import pytest

from tests.conftest import free_port
from tests.unit.ops.test_lock import ROOT, _uv
from tests.wait import wait_until

# What the Dockerfile copies into the image, and nothing else.
IMAGE_SOURCES = ["pyproject.toml", "uv.lock", "README.md", "schemas", "registry", "audit",
                 "connectors", "messaging", "gateway"]  # fmt: skip


@pytest.fixture(scope="module")
def production(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the image's sources installed as the Dockerfile installs them; its venv."""
    source = tmp_path_factory.mktemp("image") / "src"
    source.mkdir()
    for name in IMAGE_SOURCES:
        path = ROOT / name
        if path.is_dir():
            shutil.copytree(path, source / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(path, source / name)
    venv = source.parent / "venv"
    subprocess.run(
        [_uv(), "sync", "--locked", "--no-dev", "--no-editable", "--quiet"],
        cwd=source,
        env={**os.environ, "UV_PROJECT_ENVIRONMENT": str(venv), "UV_PYTHON_DOWNLOADS": "never"},
        check=True,
        timeout=300,
    )
    shutil.rmtree(source)  # the installed hub must not lean on the sources it was built from
    return venv


def test_it_has_no_test_tools_and_no_simulators(production: Path) -> None:
    python = str(production / "bin" / "python")
    for module in ("pytest", "hypothesis", "mypy", "simulators"):
        found = subprocess.run(
            [python, "-c", f"import importlib.util as u; print(u.find_spec({module!r}) is None)"],
            capture_output=True,
            text=True,
            timeout=60,
            cwd="/",
        )
        assert found.stdout.strip() == "True", f"{module} is installed in the production venv"


def test_it_serves_and_says_the_demo_is_not_there(production: Path, tmp_path: Path) -> None:
    port = free_port()
    env = {
        "PATH": f"{production / 'bin'}:/usr/bin:/bin",
        "LGSP_DATABASE_URL": f"sqlite:///{tmp_path / 'hub.db'}",
        "HOME": str(tmp_path),
    }
    log = tmp_path / "serve.log"
    with log.open("wb") as output:
        server = subprocess.Popen(
            [str(production / "bin" / "lgsp"), "serve", "--port", str(port)],
            env=env,
            cwd=tmp_path,
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:

        def ready() -> bool:
            assert server.poll() is None, log.read_text()
            try:
                return httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=2).status_code == 200
            except httpx.TransportError:
                return False

        wait_until(ready, timeout=60, what="the production install to answer /readyz")
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=30)

    demo = subprocess.run(
        [str(production / "bin" / "lgsp"), "demo"],
        env=env, cwd=tmp_path, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert demo.returncode == 2
    assert "simulated systems" in demo.stderr
    assert "Traceback" not in demo.stderr
