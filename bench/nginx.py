"""nginx as the benchmark's upstream (a fixed citizen record) and as a plain reverse proxy to it."""

from __future__ import annotations

import contextlib
import shutil
import socket
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from bench import procs

UPSTREAM_PATH = "/citizen"

_CONFIG = """\
worker_processes {workers};
pid {tmp}/nginx.pid;
error_log {tmp}/error.log warn;

events {{
    worker_connections 4096;
}}

http {{
    access_log off;
    client_body_temp_path {tmp}/client_body;
    proxy_temp_path {tmp}/proxy;
    fastcgi_temp_path {tmp}/fastcgi;
    uwsgi_temp_path {tmp}/uwsgi;
    scgi_temp_path {tmp}/scgi;
    keepalive_requests 1000000;
    keepalive_timeout 120s;

    upstream citizen_registry {{
        server 127.0.0.1:{upstream_port};
        keepalive 128;
    }}

    # The provider: answers every GET or POST of {path} with the same 1 KB citizen record.
    server {{
        listen 127.0.0.1:{upstream_port} backlog=4096;
        location = {path} {{
            default_type application/json;
            return 200 '{record}';
        }}
    }}

    # The yardstick: a reverse proxy doing nothing but forwarding, over kept-alive connections.
    server {{
        listen 127.0.0.1:{proxy_port} backlog=4096;
        location / {{
            proxy_pass http://citizen_registry;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
        }}
    }}
}}
"""


@dataclass(frozen=True)
class Nginx:
    pid: int
    upstream_url: str  # the provider's base URL
    proxy_url: str  # the reverse proxy's base URL


def render(*, tmp: Path, upstream_port: int, proxy_port: int, record: bytes, workers: str) -> str:
    text = record.decode()
    # A single-quoted nginx string: no quote, backslash or variable may appear in it.
    if any(c in text for c in "'\\$"):
        raise ValueError("the record must not contain ', \\ or $ to be served by `return`")
    return _CONFIG.format(
        tmp=tmp,
        workers=workers,
        upstream_port=upstream_port,
        proxy_port=proxy_port,
        path=UPSTREAM_PATH,
        record=text,
    )


def _listening(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


@contextlib.contextmanager
def running(tmp: Path, *, record: bytes, workers: str = "auto") -> Iterator[Nginx]:
    """nginx in the foreground with its config, pid and logs in `tmp`; stopped on exit."""
    binary = shutil.which("nginx") or "/usr/sbin/nginx"
    tmp.mkdir(parents=True, exist_ok=True)
    upstream_port, proxy_port = procs.free_port(), procs.free_port()
    conf = tmp / "nginx.conf"
    conf.write_text(
        render(
            tmp=tmp,
            upstream_port=upstream_port,
            proxy_port=proxy_port,
            record=record,
            workers=workers,
        )
    )
    argv = [binary, "-p", str(tmp), "-e", str(tmp / "error.log"), "-c", str(conf)]
    check = subprocess.run([*argv, "-t"], capture_output=True, text=True, check=False)
    if check.returncode != 0:
        raise RuntimeError(f"nginx refused its configuration:\n{check.stderr}")
    log = tmp / "stdout.log"
    with procs.group([*argv, "-g", "daemon off;"], log=log) as process:
        up = procs.wait_until(
            lambda: (
                process.poll() is not None or (_listening(upstream_port) and _listening(proxy_port))
            ),
            timeout=10,
        )
        if not up or process.poll() is not None:
            raise RuntimeError(
                f"nginx did not start:\n{procs.tail(log)}\n{procs.tail(tmp / 'error.log')}"
            )
        yield Nginx(
            pid=process.pid,
            upstream_url=f"http://127.0.0.1:{upstream_port}",
            proxy_url=f"http://127.0.0.1:{proxy_port}",
        )
