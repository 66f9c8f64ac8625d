"""`lgsp serve`: the hub in one or several worker processes, each with its own listening socket.

With several workers, each binds the port with SO_REUSEPORT and the kernel spreads incoming
connections across them evenly. (Workers sharing one listening socket, as uvicorn's own
supervisor does, let whichever event loop wakes first accept a whole burst of connections: in
bench/ one worker then carried nearly every connection while the other idled.) A worker that
dies is started again; SIGINT or SIGTERM stops them all, each finishing its requests.
"""

from __future__ import annotations

import logging
import multiprocessing
import signal
import socket
import time
from multiprocessing.process import BaseProcess
from types import FrameType

import uvicorn

log = logging.getLogger("lgsp.serve")

RESTART_PAUSE = 1.0


def _socket(host: str, port: int, *, shared: bool) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if shared:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((host, port))
    sock.set_inheritable(True)
    return sock


def _run(host: str, port: int, log_level: str, shared: bool) -> None:
    """One worker: its own socket, one event loop, the whole hub."""
    sock = _socket(host, port, shared=shared)
    config = uvicorn.Config(
        "gateway.app:create_app",
        factory=True,
        loop="uvloop",
        http="httptools",
        lifespan="on",
        access_log=False,
        proxy_headers=False,  # the hub does not act on X-Forwarded-*: skip the middleware
        log_level=log_level,
        timeout_graceful_shutdown=10,
    )
    uvicorn.Server(config).run(sockets=[sock])


def ensure_free(host: str, port: int, *, command: str = "lgsp serve", hint: str = "") -> None:
    """Refuse a port another program holds (with SO_REUSEPORT we would silently share it)."""
    try:
        _socket(host, port, shared=False).close()
    except OSError as exc:
        raise SystemExit(
            f"{command}: cannot listen on {host}:{port}: {exc.strerror}"
            + (f"; {hint}" if hint else "")
        ) from None


def serve(*, host: str, port: int, workers: int, log_level: str = "warning") -> None:
    ensure_free(host, port)
    if workers <= 1:
        _run(host, port, log_level, shared=False)
        return
    context = multiprocessing.get_context("spawn")
    stopping = False

    def start(index: int) -> BaseProcess:
        process = context.Process(
            target=_run, args=(host, port, log_level, True), name=f"lgsp-worker-{index}"
        )
        process.start()
        return process

    def stop(signum: int, _: FrameType | None) -> None:
        nonlocal stopping
        stopping = True
        for process in processes:
            if process.is_alive() and process.pid is not None:
                process.terminate()  # SIGTERM: uvicorn finishes what it is serving

    processes = [start(i) for i in range(workers)]
    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    while not stopping:
        time.sleep(0.2)
        for index, process in enumerate(processes):
            if not process.is_alive() and not stopping:
                log.error("worker %s exited with %s; starting it again", index, process.exitcode)
                time.sleep(RESTART_PAUSE)
                processes[index] = start(index)
    for process in processes:
        process.join()
