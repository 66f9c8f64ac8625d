"""The `lgsp` commands a newcomer types: each simulator on its own, and a bootstrap key."""

from __future__ import annotations

import subprocess
import sys

import httpx
import pytest

from registry import keys
from tests.conftest import free_port
from tests.wait import wait_until


@pytest.mark.parametrize("name", ["population", "dossier", "civil-status", "portal", "documents"])
def test_each_simulator_runs_on_its_own(name):
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "gateway.cli", "simulate", name, "--port", str(port)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip

    def answer() -> httpx.Response | None:
        try:
            return httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1)
        except httpx.TransportError:
            assert process.poll() is None, f"lgsp simulate {name} exited"  # fails the wait at once
            return None

    try:
        health = wait_until(
            answer, timeout=30, interval=0.1, what=f"lgsp simulate {name} to answer /healthz"
        )
        assert health.status_code == 200
    finally:
        process.terminate()
        process.wait(timeout=30)


def test_gen_key_prints_a_usable_bootstrap_key():
    out = subprocess.run([sys.executable, "-m", "gateway.cli", "gen-key"], capture_output=True,
                         text=True, timeout=60, check=True).stdout.strip()  # fmt: skip
    assert keys.parse_key(out) is not None
