"""`lgsp serve --workers N`: shared port, a dead worker comes back, a taken port is refused."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys

import httpx
import pytest

from registry import keys
from tests.conftest import free_port
from tests.wait import wait_until


def _children(pid: int) -> set[int]:
    out = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True).stdout
    return {int(p) for p in out.split()}


def _workers(pid: int) -> set[int]:
    """The supervisor's worker processes (multiprocessing's resource tracker aside)."""
    found = set()
    for child in _children(pid):
        try:
            with open(f"/proc/{child}/cmdline", "rb") as cmdline:
                if b"resource_tracker" not in cmdline.read():
                    found.add(child)
        except FileNotFoundError:
            pass
    return found


def _ready(url: str) -> bool:
    try:
        return httpx.get(f"{url}/readyz", timeout=1).status_code == 200
    except httpx.TransportError:
        return False


@pytest.mark.slow
def test_workers_serve_restart_and_stop(tmp_path):
    port = free_port()
    env = {**os.environ, "LGSP_DATABASE_URL": f"sqlite:///{tmp_path / 'hub.db'}",
           "LGSP_BOOTSTRAP_ADMIN_KEY": keys.issue_key(pepper="x").key}  # fmt: skip
    supervisor = subprocess.Popen(
        [sys.executable, "-m", "gateway.cli", "serve", "--port", str(port), "--workers", "2"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"

    def alive() -> bool:
        """True while the supervisor runs; its exit fails the wait at once."""
        if supervisor.poll() is not None:
            assert supervisor.stderr is not None
            stderr = supervisor.stderr.read().decode(errors="replace")
            raise AssertionError(f"lgsp serve exited with {supervisor.returncode}:\n{stderr}")
        return True

    try:
        wait_until(
            lambda: alive() and _ready(url) and len(_workers(supervisor.pid)) == 2,
            timeout=30,
            interval=0.1,
            what="lgsp serve ready with its 2 workers",
        )
        first = _workers(supervisor.pid)

        victim = sorted(first)[0]
        os.kill(victim, signal.SIGKILL)
        wait_until(
            lambda: alive() and len(_workers(supervisor.pid) - {victim}) == 2,
            timeout=30,
            interval=0.1,
            what="a new worker in place of the killed one",
        )
        wait_until(
            lambda: alive() and _ready(url), timeout=30, interval=0.1, what="lgsp serve ready again"
        )
        # Both workers answer: fresh connections spread over the two sockets.
        assert all(httpx.get(f"{url}/healthz").status_code == 200 for _ in range(20))

        supervisor.send_signal(signal.SIGTERM)
        assert supervisor.wait(timeout=30) == 0
        assert _workers(supervisor.pid) == set()
    finally:
        if supervisor.poll() is None:
            os.killpg(supervisor.pid, signal.SIGKILL)
            supervisor.wait()
        if supervisor.stderr is not None:
            supervisor.stderr.close()


def test_a_taken_port_is_refused(tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = subprocess.run(
            [sys.executable, "-m", "gateway.cli", "serve", "--port", str(port), "--workers", "2"],
            env={**os.environ, "LGSP_DATABASE_URL": f"sqlite:///{tmp_path / 'x.db'}"},
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert result.returncode != 0
    assert f"cannot listen on 127.0.0.1:{port}" in result.stderr
