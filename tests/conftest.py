"""Real parts for the tests: PostgreSQL from pgserver, hubs and simulators on loopback."""

from __future__ import annotations

import secrets
import shutil
import socket
import tempfile
import warnings
from collections.abc import Callable, Generator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from gateway.app import Hub
from gateway.settings import Settings
from registry import keys
from simulators.server import run_in_thread

BACKENDS = ["sqlite", "postgresql"]


def free_port() -> int:
    """A loopback port nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """One real PostgreSQL server for the whole session (pgserver's bundled binaries)."""
    data = Path(tempfile.mkdtemp(prefix="lgsp-pg-"))
    with warnings.catch_warnings():
        # platformdirs (under pgserver) warns on machines without XDG_RUNTIME_DIR, as CI's.
        warnings.filterwarnings("ignore", message="XDG_RUNTIME_DIR is not set")
        from pgserver.postgres_server import get_server

        server = get_server(data, cleanup_mode="stop")
    try:
        yield server.get_uri()
    finally:
        server.cleanup()
        shutil.rmtree(data, ignore_errors=True)


def _fresh_postgres_database(base_url: str) -> str:
    import psycopg

    name = f"lgsp_{secrets.token_hex(4)}"
    with psycopg.connect(base_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    head, _, query = base_url.partition("?")
    head = head.rsplit("/", 1)[0] + "/" + name
    return head + ("?" + query if query else "")


@pytest.fixture(scope="session")
def database_urls(
    tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest
) -> Callable[[str], str]:
    """A new, empty database on the given backend each time it is called."""

    def make(backend: str) -> str:
        if backend == "sqlite":
            return f"sqlite:///{tmp_path_factory.mktemp('db') / 'lgsp.db'}"
        return _fresh_postgres_database(request.getfixturevalue("postgres_url"))

    return make


@dataclass
class RunningHub:
    url: str
    admin_key: str
    settings: Settings
    hub: Hub
    # Keys of principals the tests on this hub share (an auditor, ...), made once, by use.
    shared_keys: dict[str, str] = field(default_factory=dict)

    def client(self, key: str | None = None, **kwargs: Any) -> httpx.Client:
        headers = {"X-API-Key": key} if key else {}
        return httpx.Client(base_url=self.url, headers=headers, timeout=30, **kwargs)

    def admin(self) -> httpx.Client:
        return self.client(self.admin_key)


def start_hub(database_url: str, **overrides: Any) -> Generator[RunningHub, None, None]:
    admin_key = keys.issue_key(pepper="unused").key  # any well-formed key becomes the bootstrap key
    if "audit_key_file" not in overrides:  # a key of its own, generated on start
        overrides["audit_key_file"] = Path(tempfile.mkdtemp(prefix="lgsp-key-")) / "audit.key"
    settings = Settings(
        database_url=database_url,
        bootstrap_admin_key=admin_key,
        **{"registry_poll_seconds": 0.2, **overrides},
    )
    hub = Hub(settings)
    with run_in_thread(hub) as url:
        yield RunningHub(url=url, admin_key=admin_key, settings=settings, hub=hub)


@pytest.fixture(scope="session", params=BACKENDS)
def hub(
    request: pytest.FixtureRequest, database_urls: Callable[[str], str]
) -> Iterator[RunningHub]:
    """A hub on loopback, once per backend; tests make their own uniquely named objects."""
    yield from start_hub(database_urls(request.param))


@pytest.fixture
def unique() -> Callable[[str], str]:
    """Unique slugs so tests sharing a hub never collide."""

    def make(prefix: str) -> str:
        return f"{prefix}-{secrets.token_hex(3)}"

    return make
