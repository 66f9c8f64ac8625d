"""The hub under test: started as `lgsp serve`, provisioned through its admin API, audited."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import sqlite3
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from bench import payloads, procs
from bench.nginx import UPSTREAM_PATH

SERVICE, VERSION, ROUTE = "dan-cu", "v1", "/cong-dan/tra-cuu"
CONSUMER, CONNECTOR = "bench-app", "bench-upstream"
API_PATH = f"/api/{SERVICE}/{VERSION}{ROUTE}"


class BenchError(RuntimeError):
    """The setup failed in a way the operator must see (the message says what and where)."""


@dataclass(frozen=True)
class Hub:
    process: subprocess.Popen[bytes]  # `lgsp serve`, the leader of the workers' process group
    url: str
    admin_key: str
    database_url: str
    log: Path

    @property
    def pid(self) -> int:
        return self.process.pid

    def check_alive(self) -> None:
        if self.process.poll() is not None or not _ready(self.url):
            raise BenchError(
                f"the hub stopped serving (exit status {self.process.poll()}):\n"
                f"{procs.tail(self.log)}"
            )


def _lgsp(venv: Path) -> str:
    return str(venv / "bin" / "lgsp")


def gen_key(venv: Path) -> str:
    done = subprocess.run([_lgsp(venv), "gen-key"], capture_output=True, text=True, check=True)
    return done.stdout.strip()


@contextlib.contextmanager
def postgresql(tmp: Path) -> Iterator[tuple[str, int]]:
    """A throw-away PostgreSQL server (pgserver's bundled binaries) and its pid; stopped on exit."""
    from pgserver.postgres_server import get_server

    data = tmp / "pgdata"
    server = get_server(data, cleanup_mode="stop")
    try:
        yield str(server.get_uri()), int(server.get_pid() or 0)
    finally:
        server.cleanup()
        shutil.rmtree(data, ignore_errors=True)


def _ready(url: str) -> bool:
    try:
        return httpx.get(f"{url}/readyz", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


@contextlib.contextmanager
def running(tmp: Path, *, venv: Path, database_url: str, workers: int) -> Iterator[Hub]:
    """`lgsp serve` on a free port until GET /readyz answers 200; stopped on exit."""
    admin_key = gen_key(venv)
    with _serve(
        tmp, venv=venv, database_url=database_url, workers=workers, admin_key=admin_key
    ) as hub:
        # The first worker up answers /readyz; give a failing sibling time to show itself.
        time.sleep(1)
        hub.check_alive()
        yield hub


@contextlib.contextmanager
def _serve(
    tmp: Path, *, venv: Path, database_url: str, workers: int, admin_key: str
) -> Iterator[Hub]:
    port = procs.free_port()
    env = {
        **os.environ,
        "LGSP_DATABASE_URL": database_url,
        "LGSP_BOOTSTRAP_ADMIN_KEY": admin_key,
        "LGSP_LOG_LEVEL": "warning",
    }
    argv = [_lgsp(venv), "serve", "--port", str(port), "--workers", str(workers)]
    log = tmp / f"hub-{workers}-workers.log"
    url = f"http://127.0.0.1:{port}"
    with procs.group(argv, log=log, env=env) as process:
        up = procs.wait_until(lambda: process.poll() is not None or _ready(url), timeout=60)
        if not up or process.poll() is not None:
            raise BenchError(f"the hub did not become ready on {url}:\n{procs.tail(log)}")
        yield Hub(process=process, url=url, admin_key=admin_key, database_url=database_url, log=log)


def _ok(answer: httpx.Response, status: int = 201) -> dict[str, Any]:
    if answer.status_code != status:
        raise BenchError(
            f"{answer.request.method} {answer.request.url.path} answered {answer.status_code}, "
            f"expected {status}:\n{answer.text[:2000]}"
        )
    result: dict[str, Any] = answer.json()
    return result


def provision(hub: Hub, *, upstream_url: str) -> str:
    """Agency, connector, published service, consumer, key and approved grant; the consumer key."""
    code = payloads.AGENCY_CODE
    with httpx.Client(base_url=hub.url, headers={"X-API-Key": hub.admin_key}, timeout=30) as admin:
        _ok(
            admin.post("/admin/agencies", json={"code": code, "name": "Sở Tài chính tỉnh Lai Châu"})
        )
        _ok(
            admin.post(
                "/admin/connectors",
                json={
                    "name": CONNECTOR,
                    "agency_code": code,
                    "kind": "rest",
                    "base_url": upstream_url,
                    "max_connections": 200,
                },
            )
        )
        contracts = {}
        for name, schema in (
            ("request_schema", payloads.REQUEST_SCHEMA),
            ("response_schema", payloads.RESPONSE_SCHEMA),
        ):
            subject = f"bench.{name.removesuffix('_schema')}"
            url = f"/admin/schemas/{subject}/versions"
            version = _ok(admin.post(url, json={"schema": schema}))["version"]
            contracts[name] = {"subject": subject, "version": version}
        _ok(
            admin.post(
                "/admin/services",
                json={
                    "name": SERVICE,
                    "version": VERSION,
                    "connector": CONNECTOR,
                    "title": "Tra cứu thông tin công dân (CSDL quốc gia về dân cư)",
                    "status": "published",
                    "personal_data": True,
                    "subject_pointer": "/body/so_dinh_danh",
                    "routes": [
                        {
                            "method": "POST",
                            "path": ROUTE,
                            "upstream_path": UPSTREAM_PATH,
                            "idempotent": True,
                            **contracts,
                        }
                    ],
                },
            )
        )
        _ok(
            admin.post(
                "/admin/consumers",
                json={"name": CONSUMER, "agency_code": code, "title": "Một cửa điện tử (bench)"},
            )
        )
        key = str(
            _ok(admin.post(f"/admin/consumers/{CONSUMER}/keys", json={"label": "bench"}))["key"]
        )
        grant = _ok(
            admin.post(
                "/admin/grants",
                json={
                    "consumer": CONSUMER,
                    "service": SERVICE,
                    "purposes": [payloads.PURPOSE],
                    "fields": payloads.GRANTED_FIELDS,
                },
            )
        )
        _ok(admin.post(f"/admin/grants/{grant['id']}/decision", json={"decision": "approve"}), 200)
    return key


LIMITED_CONSUMER = "bench-limited"
# Far above any load this machine makes: every call pays for the decision, none is refused.
FAR_ABOVE = {"requests": 1_000_000, "seconds": 1}


def provision_limited(hub: Hub) -> str:
    """A second consumer of the same service whose grant has a rate limit; its key."""
    with httpx.Client(base_url=hub.url, headers={"X-API-Key": hub.admin_key}, timeout=30) as admin:
        _ok(
            admin.post(
                "/admin/consumers",
                json={
                    "name": LIMITED_CONSUMER,
                    "agency_code": payloads.AGENCY_CODE,
                    "title": "Một cửa điện tử (bench, rate-limited grant)",
                },
            )
        )
        url = f"/admin/consumers/{LIMITED_CONSUMER}/keys"
        key = str(_ok(admin.post(url, json={"label": "bench"}))["key"])
        grant = _ok(
            admin.post(
                "/admin/grants",
                json={
                    "consumer": LIMITED_CONSUMER,
                    "service": SERVICE,
                    "purposes": [payloads.PURPOSE],
                    "fields": payloads.GRANTED_FIELDS,
                    "rate_limit": FAR_ABOVE,
                },
            )
        )
        _ok(admin.post(f"/admin/grants/{grant['id']}/decision", json={"decision": "approve"}), 200)
    return key


def consumer_headers(key: str) -> dict[str, str]:
    return {"X-API-Key": key, "X-Purpose": payloads.PURPOSE, "Content-Type": "application/json"}


def access_token(hub: Hub) -> str:
    """An access token of the bench consumer (an OAuth2 client, client_secret_basic), issued
    for the hub's default lifetime (600 s: longer than a bench run)."""
    with httpx.Client(base_url=hub.url, headers={"X-API-Key": hub.admin_key}, timeout=10) as admin:
        client = _ok(admin.post(f"/admin/consumers/{CONSUMER}/oauth-clients", json={}))
    with httpx.Client(base_url=hub.url, timeout=10) as consumer:
        answer = consumer.post(
            "/oauth2/token",
            data={"grant_type": "client_credentials"},
            auth=(client["client_id"], client["client_secret"]),
        )
    token: str = _ok(answer, 200)["access_token"]
    return token


def bearer_headers(token: str) -> dict[str, str]:
    return {
        "Authorization": f"Bearer {token}",
        "X-Purpose": payloads.PURPOSE,
        "Content-Type": "application/json",
    }


def check_exchange(hub: Hub, *, key: str, workers: int) -> dict[str, Any]:
    """One call by hand must answer 200 with exactly the granted fields, on every worker.

    Each worker loads the registry on its own (admin writes reach the others by polling), so the
    check repeats on fresh connections until every call in a row succeeds.
    """
    expected = {name: payloads.CITIZEN[name] for name in payloads.GRANTED_FIELDS}
    deadline = time.monotonic() + 15
    streak, answer = 0, None
    while streak < 10 * workers:
        with httpx.Client(base_url=hub.url, timeout=10) as client:
            answer = client.post(
                API_PATH, content=payloads.REQUEST_BYTES, headers=consumer_headers(key)
            )
        if answer.status_code == 200 and answer.json() == expected:
            streak += 1
            continue
        streak = 0
        if time.monotonic() > deadline:
            break
        time.sleep(0.2)
    if answer is None or streak == 0:
        shown = answer.text[:2000] if answer is not None else "no answer"
        status = answer.status_code if answer is not None else "-"
        raise BenchError(
            f"POST {API_PATH} did not answer 200 with the granted fields "
            f"{payloads.GRANTED_FIELDS} (got {status}):\n{shown}"
        )
    result: dict[str, Any] = answer.json()
    return result


def exchange_records(database_url: str) -> int:
    """How many data-plane calls the audit log holds (read straight from the database)."""
    # SQLAlchemy stores an enum by its member name ('EXCHANGE'); accept the value spelling too.
    query = "SELECT count(*) FROM exchange_record WHERE lower(CAST(kind AS TEXT)) = 'exchange'"
    if database_url.startswith("sqlite"):
        path = database_url.split("///", 1)[1]
        with contextlib.closing(sqlite3.connect(path, timeout=30)) as conn:
            return int(conn.execute(query).fetchone()[0])
    import psycopg

    url = database_url.replace("postgresql+psycopg://", "postgresql://", 1)
    with psycopg.connect(url) as conn:
        row = conn.execute(query).fetchone()
        return int(row[0]) if row else 0


def settled_records(database_url: str, *, quiet: float = 1.0, timeout: float = 30.0) -> int:
    """The record count once it has stopped moving for `quiet` seconds (group commit flushed)."""
    deadline = time.monotonic() + timeout
    last, since = exchange_records(database_url), time.monotonic()
    while time.monotonic() < deadline:
        time.sleep(0.2)
        now = exchange_records(database_url)
        if now != last:
            last, since = now, time.monotonic()
        elif time.monotonic() - since >= quiet:
            break
    return last


def describe(answer: dict[str, Any]) -> str:
    return json.dumps(answer, ensure_ascii=False)
