"""The hub under the messaging benchmark: `lgsp serve` with a broker, and a push channel to the
receiver provisioned through the admin API (agency, schema, producer and subscriber, topic,
connector, push subscription)."""

from __future__ import annotations

import contextlib
import os
import sqlite3
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import orjson

from bench import events, hub, procs
from bench.hub import BenchError, Hub
from bench.payloads import AGENCY_CODE

TOPIC = "bench.dossier-status"
SUBJECT = "bench.dossier-status"
PRODUCER, SUBSCRIBER = "bench-dossier", "bench-portal"
CONNECTOR, SUBSCRIPTION = "bench-receiver", "bench-portal-push"
PUBLISH_PATH = f"/topics/{TOPIC}/messages"


@dataclass(frozen=True)
class Channel:
    hub: Hub
    producer_key: str

    @property
    def publish_url(self) -> str:
        return self.hub.url + PUBLISH_PATH

    def headers(self) -> dict[str, str]:
        return {"X-API-Key": self.producer_key, "Content-Type": "application/json"}


def _ready(url: str) -> bool:
    try:
        return httpx.get(f"{url}/readyz", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


@contextlib.contextmanager
def running(
    tmp: Path,
    *,
    venv: Path,
    database_url: str,
    workers: int,
    broker: str,
    kafka_bootstrap: str | None,
    settings: dict[str, str],
    label: str,
    profile: Path | None = None,
) -> Iterator[Hub]:
    """`lgsp serve --workers N` on a free port with the given broker, until /readyz answers;
    with `profile`, the same workers under cProfile (bench/profiled_hub.py) writing there."""
    port = procs.free_port()
    admin_key = hub.gen_key(venv)
    env = {
        **os.environ,
        "LGSP_DATABASE_URL": database_url,
        "LGSP_BOOTSTRAP_ADMIN_KEY": admin_key,
        "LGSP_LOG_LEVEL": "warning",
        "LGSP_BROKER": broker,
        **({"LGSP_KAFKA_BOOTSTRAP": kafka_bootstrap} if kafka_bootstrap else {}),
        **settings,
    }
    argv = [str(venv / "bin" / "lgsp"), "serve", "--port", str(port), "--workers", str(workers)]
    if profile is not None:
        profile.mkdir(parents=True, exist_ok=True)
        argv = [str(venv / "bin" / "python"), "-m", "bench.profiled_hub", "--port", str(port),
                "--workers", str(workers), "--out", str(profile)]  # fmt: skip
    log = tmp / f"hub-{label}.log"
    url = f"http://127.0.0.1:{port}"
    with procs.group(argv, log=log, env=env) as process:
        up = procs.wait_until(lambda: process.poll() is not None or _ready(url), timeout=60)
        if not up or process.poll() is not None:
            raise BenchError(f"the hub did not become ready on {url}:\n{procs.tail(log)}")
        running = Hub(
            process=process, url=url, admin_key=admin_key, database_url=database_url, log=log
        )
        time.sleep(1)  # the first worker up answers /readyz; let a failing sibling show itself
        running.check_alive()
        yield running


def _ok(answer: httpx.Response, status: int = 201) -> dict[str, Any]:
    if answer.status_code != status:
        raise BenchError(
            f"{answer.request.method} {answer.request.url.path} answered {answer.status_code}, "
            f"expected {status}:\n{answer.text[:2000]}"
        )
    result: dict[str, Any] = answer.json()
    return result


def provision(running: Hub, *, receiver_url: str, partitions: int) -> Channel:
    """The topic and its push subscription to the receiver; the producer's key."""
    headers = {"X-API-Key": running.admin_key}
    with httpx.Client(base_url=running.url, headers=headers, timeout=30) as admin:
        _ok(
            admin.post(
                "/admin/agencies", json={"code": AGENCY_CODE, "name": "Sở Tài chính tỉnh Lai Châu"}
            )
        )
        schema = {"schema": events.SCHEMA}
        version = _ok(admin.post(f"/admin/schemas/{SUBJECT}/versions", json=schema))
        keys = {}
        for name, title in (
            (PRODUCER, "Hệ thống thông tin giải quyết thủ tục hành chính (bench)"),
            (SUBSCRIBER, "Cổng Dịch vụ công quốc gia (bench)"),
        ):
            _ok(
                admin.post(
                    "/admin/consumers",
                    json={"name": name, "agency_code": AGENCY_CODE, "title": title},
                )
            )
            keys[name] = str(
                _ok(admin.post(f"/admin/consumers/{name}/keys", json={"label": "bench"}))["key"]
            )
        _ok(
            admin.post(
                "/admin/topics",
                json={
                    "name": TOPIC,
                    "agency_code": AGENCY_CODE,
                    "title": "Trạng thái hồ sơ (bench)",
                    "schema": {"subject": SUBJECT, "version": version["version"]},
                    "key_pointer": "/MaHoSo",
                    "partitions": partitions,
                    "publishers": [PRODUCER],
                    "subscribers": [SUBSCRIBER],
                },
            )
        )
        _ok(
            admin.post(
                "/admin/connectors",
                json={
                    "name": CONNECTOR,
                    "agency_code": AGENCY_CODE,
                    "kind": "rest",
                    "base_url": receiver_url,
                    "max_connections": 200,
                },
            )
        )
        _ok(
            admin.post(
                "/admin/subscriptions",
                json={
                    "name": SUBSCRIPTION,
                    "topic": TOPIC,
                    "consumer": SUBSCRIBER,
                    "delivery": "push",
                    "connector": CONNECTOR,
                    "path": "/hook",
                    "retry": {"delays": [0.5, 2.0], "max_attempts": 10, "timeout": 10},
                },
            )
        )
    return Channel(hub=running, producer_key=keys[PRODUCER])


def check_publish(channel: Channel, *, workers: int) -> int:
    """Single publishes on fresh connections until 10 per worker in a row answer 202 (each
    worker loads the registry on its own); how many messages were accepted."""
    deadline = time.monotonic() + 30
    streak = accepted = 0
    answer: httpx.Response | None = None
    while streak < 10 * workers:
        with httpx.Client(timeout=10) as client:
            answer = client.post(
                channel.publish_url,
                content=orjson.dumps({"value": events.value(accepted, time.time_ns())}),
                headers=channel.headers(),
            )
        if answer.status_code == 202:
            streak += 1
            accepted += 1
            continue
        streak = 0
        if time.monotonic() > deadline:
            raise BenchError(
                f"POST {PUBLISH_PATH} did not answer 202 (got {answer.status_code}):\n"
                f"{answer.text[:2000]}"
            )
        time.sleep(0.2)
    return accepted


def delivery_records(database_url: str) -> int:
    """Delivery attempts the audit log holds as answered 2xx (read straight from the database)."""
    query = (
        "SELECT count(*) FROM exchange_record WHERE lower(CAST(kind AS TEXT)) = 'delivery' "
        "AND hub_status >= 200 AND hub_status < 300"
    )
    if database_url.startswith("sqlite"):
        path = database_url.split("///", 1)[1]
        with contextlib.closing(sqlite3.connect(path, timeout=30)) as conn:
            return int(conn.execute(query).fetchone()[0])
    import psycopg

    url = database_url.replace("postgresql+psycopg://", "postgresql://", 1)
    with psycopg.connect(url) as conn:
        row = conn.execute(query).fetchone()
        return int(row[0]) if row else 0


def settled_delivery_records(
    database_url: str, *, quiet: float = 1.0, timeout: float = 30.0
) -> int:
    """The count once it has stopped moving for `quiet` seconds (a push is recorded after the
    receiver has answered it, so the last records may still be on their way)."""
    deadline = time.monotonic() + timeout
    last, since = delivery_records(database_url), time.monotonic()
    while time.monotonic() < deadline:
        time.sleep(0.2)
        now = delivery_records(database_url)
        if now != last:
            last, since = now, time.monotonic()
        elif time.monotonic() - since >= quiet:
            break
    return last
