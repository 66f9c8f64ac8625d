"""SIGKILL the hub mid-load: every answer a client received has its committed audit record."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from collections.abc import Callable

import httpx
import pytest
from sqlalchemy import text

from gateway.db import make_engine
from gateway.settings import Settings
from registry import keys
from tests.conftest import BACKENDS, RunningHub, free_port
from tests.integration.conftest import APPROVE, provision
from tests.wait import wait_until


def _start(database_url: str, admin_key: str, port: int) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "LGSP_DATABASE_URL": database_url,
        "LGSP_BOOTSTRAP_ADMIN_KEY": admin_key,
        "LGSP_REGISTRY_POLL_SECONDS": "0.2",
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "gateway.cli", "serve", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )

    def ready() -> bool:
        if process.poll() is not None:  # fails the wait at once
            raise RuntimeError(process.stderr.read().decode() if process.stderr else "hub died")
        try:
            return httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=1).status_code == 200
        except httpx.TransportError:
            return False

    try:
        wait_until(ready, timeout=30, interval=0.1, what="the hub process to answer /readyz")
    except BaseException:
        process.kill()
        raise
    return process


@pytest.mark.slow
@pytest.mark.parametrize("backend", BACKENDS)
def test_sigkill_loses_no_answered_record(backend, database_urls: Callable[[str], str], upstream):
    url = database_urls(backend)
    admin_key = keys.issue_key(pepper="unused").key
    port = free_port()
    process = _start(url, admin_key, port)
    try:
        hub = RunningHub(
            url=f"http://127.0.0.1:{port}",
            admin_key=admin_key,
            settings=Settings(database_url=url),
            hub=None,  # type: ignore[arg-type]  # in another process: reached over HTTP only
        )
        world = provision(
            hub,
            base_url=upstream,
            routes=[{"method": "POST", "path": "/echo/{n}", "upstream_path": "/echo/{n}"}],
            grant={},
            decision=APPROVE,
        )
        answered: list[str] = []
        lock = threading.Lock()
        stop = threading.Event()

        def load(worker: int) -> None:
            with httpx.Client(
                base_url=hub.url, headers={"X-API-Key": world.key}, timeout=5
            ) as client:
                n = 0
                while not stop.is_set():
                    rid = f"crash-{worker}-{n}"
                    n += 1
                    try:
                        answer = client.post(
                            f"/api/{world.service}/v1/echo/{n}",
                            json={"n": n},
                            headers={"X-Request-Id": rid},
                        )
                    except httpx.TransportError:
                        return  # the hub is gone
                    if answer.status_code == 200:
                        with lock:
                            answered.append(rid)

        threads = [threading.Thread(target=load, args=(w,)) for w in range(8)]
        for thread in threads:
            thread.start()
        wait_until(
            lambda: len(answered) >= 300,
            timeout=20,
            what="300 answered exchanges (the load going) before the kill",
        )
        os.killpg(process.pid, signal.SIGKILL)  # mid-load, no chance to flush anything
        process.wait(timeout=10)
        stop.set()
        for thread in threads:
            thread.join(timeout=10)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
        if process.stderr:
            process.stderr.close()

    engine = make_engine(url)
    try:
        with engine.connect() as connection:
            recorded = {
                row[0]
                for row in connection.execute(
                    text("SELECT request_id FROM exchange_record WHERE request_id LIKE 'crash-%'")
                )
            }
    finally:
        engine.dispose()
    missing = set(answered) - recorded
    assert not missing, (
        f"{len(missing)} answered exchanges have no record, e.g. {sorted(missing)[:5]}"
    )
