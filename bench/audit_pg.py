"""The audit benchmark's PostgreSQL: pgserver's binaries, its data kept under /tmp between runs.

Generating 10^7 records takes minutes, so the cluster lives in a cache dir outside the repo
(`LGSP_BENCH_AUDIT_DIR`, default /tmp/lgsp-bench-audit) and is started again by later runs;
each scale has its own database (`audit_<records>`). The server is stopped when the benchmark
exits; `python -m bench.audit_data --drop` removes the cache.

Settings (ALTER SYSTEM, once): 1 GB of shared buffers and room for WAL so a bulk load is not a
string of checkpoints. Durability is the default one: fsync and synchronous_commit stay on, so a
commit the writer waits for is on disk.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg

CACHE = Path(os.environ.get("LGSP_BENCH_AUDIT_DIR", "/tmp/lgsp-bench-audit"))
SETTINGS = {
    "shared_buffers": "1GB",
    "effective_cache_size": "8GB",
    "maintenance_work_mem": "1GB",
    "work_mem": "32MB",
    "max_wal_size": "16GB",
    "checkpoint_timeout": "30min",
    "max_connections": "200",
}


def _server(data: Path) -> object:
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="XDG_RUNTIME_DIR is not set")
        from pgserver.postgres_server import get_server

        return get_server(data, cleanup_mode="stop")


def _configured(url: str) -> bool:
    with psycopg.connect(url, autocommit=True) as conn:
        row = conn.execute("SHOW shared_buffers").fetchone()
    return row is not None and row[0] == SETTINGS["shared_buffers"]


class Cluster:
    """The running server: its base URL (database `postgres`), pid and data dir."""

    def __init__(self, data: Path) -> None:
        self.data = data
        self._server: Any = _server(data)
        if not _configured(self.base):
            with psycopg.connect(self.base, autocommit=True) as conn:
                for name, value in SETTINGS.items():
                    conn.execute(f"ALTER SYSTEM SET {name} = '{value}'")
            self.restart()

    @property
    def base(self) -> str:
        return str(self._server.get_uri())

    @property
    def pid(self) -> int:
        return int(self._server.get_pid() or 0)

    def restart(self) -> None:
        """Stop and start the server: its shared buffers start empty."""
        self._server.cleanup()
        self._server = _server(self.data)

    def stop(self) -> None:
        self._server.cleanup()


@contextlib.contextmanager
def running() -> Iterator[Cluster]:
    """The cached cluster, started (and configured on first use); stopped on exit."""
    data = CACHE / "pgdata"
    data.parent.mkdir(parents=True, exist_ok=True)
    cluster = Cluster(data)
    try:
        yield cluster
    finally:
        cluster.stop()


def database_url(base: str, name: str) -> str:
    head, _, query = base.partition("?")
    head = head.rsplit("/", 1)[0] + "/" + name
    return head + ("?" + query if query else "")


def exists(base: str, name: str) -> bool:
    with psycopg.connect(base, autocommit=True) as conn:
        return (
            conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone()
            is not None
        )


def create(base: str, name: str, *, replace: bool = False) -> str:
    with psycopg.connect(base, autocommit=True) as conn:
        if replace:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
    return database_url(base, name)


def drop_cache() -> None:
    shutil.rmtree(CACHE, ignore_errors=True)


def evict(url: str, data: Path) -> int:
    """Drop the database's files from the OS page cache (posix_fadvise DONTNEED: only these
    files, the rest of the machine keeps its cache); the bytes evicted. Shared buffers are
    emptied by restarting the server, not here."""
    with psycopg.connect(url, autocommit=True) as conn:
        oid = conn.execute(
            "SELECT oid FROM pg_database WHERE datname = current_database()"
        ).fetchone()
    assert oid is not None
    total = 0
    for path in (data / "base" / str(oid[0])).iterdir():
        with contextlib.suppress(OSError):
            fd = os.open(path, os.O_RDONLY)
            try:
                total += os.fstat(fd).st_size
                os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
            finally:
                os.close(fd)
    return total
