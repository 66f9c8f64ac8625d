"""Upstreams for the exchange tests: the population simulator and a provider that misbehaves."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from simulators import population
from simulators.server import run_in_thread
from tests.conftest import RunningHub, free_port
from tests.integration.dripping import DrippingServer

CALLS: dict[str, int] = {}
SEEN: list[dict[str, Any]] = []


async def echo(request: Request) -> Response:
    body = await request.body()
    seen = {
        "method": request.method,
        "path": request.url.path,
        "query": dict(request.query_params),
        "headers": dict(request.headers),
        "body": body.decode() if body else None,
    }
    SEEN.append(seen)
    return JSONResponse(seen)


async def status(request: Request) -> Response:
    code = int(request.path_params["code"])
    headers = {"Retry-After": "0"} if code in (429, 503) else {}
    return JSONResponse({"error": f"status {code}"}, status_code=code, headers=headers)


async def flaky(request: Request) -> Response:
    """Fails with 503 the first `fail` times for a given key, then answers."""
    key = request.path_params["key"]
    CALLS[key] = CALLS.get(key, 0) + 1
    if CALLS[key] <= int(request.query_params.get("fail", "2")):
        return JSONResponse({"error": "busy"}, status_code=503, headers={"Retry-After": "0"})
    return JSONResponse({"ok": True, "calls": CALLS[key]})


async def slow(request: Request) -> Response:
    await asyncio.sleep(float(request.query_params.get("s", "3")))
    return JSONResponse({"late": True})


async def garbage(_: Request) -> Response:
    return Response("<html>Internal error</html>", media_type="text/html")


async def bad_json(_: Request) -> Response:
    return Response(b'{"truncated": ', media_type="application/json")


async def citizen(_: Request) -> Response:
    return JSONResponse(
        {
            "so_dinh_danh": "012090001234",
            "ho_va_ten": "Lò Văn Minh",
            "dan_toc": "Thái",
            "dia_chi": {"ma_xa": "03388", "ten_xa": "Phường Đoàn Kết"},
            "so_dien_thoai": "0912345678",
        }
    )


async def deep(_: Request) -> Response:
    return Response(b'{"a": ' + b"[" * 100 + b"]" * 100 + b"}", media_type="application/json")


async def wrong_shape(_: Request) -> Response:
    return JSONResponse({"so_dinh_danh": 12345, "ho_va_ten": None})


def upstream_app() -> Starlette:
    return Starlette(
        routes=[
            Route("/echo/{rest:path}", echo, methods=["GET", "POST", "PUT", "DELETE", "PATCH"]),
            Route("/status/{code:int}", status, methods=["GET", "POST"]),
            Route("/flaky/{key}", flaky, methods=["GET", "POST"]),
            Route("/slow", slow, methods=["GET", "POST"]),
            Route("/garbage", garbage, methods=["GET", "POST"]),
            Route("/bad-json", bad_json, methods=["GET", "POST"]),
            Route("/citizen/{id}", citizen, methods=["GET"]),
            Route("/wrong-shape", wrong_shape, methods=["GET"]),
            Route("/deep", deep, methods=["GET"]),
        ]
    )


@pytest.fixture(scope="session")
def upstream() -> Iterator[str]:
    with run_in_thread(upstream_app()) as url:
        yield url


@pytest.fixture(scope="session")
def dripping() -> Iterator[DrippingServer]:
    """A provider that sends its answers one byte at a time (see tests/integration/dripping.py)."""
    with DrippingServer() as server:
        yield server


@pytest.fixture(scope="session")
def population_url() -> Iterator[str]:
    with run_in_thread(population.create_app()) as url:
        yield url


@pytest.fixture(scope="session")
def closed_port_url() -> str:
    """A loopback port nobody listens on: connections are refused."""
    return f"http://127.0.0.1:{free_port()}"


@dataclass
class World:
    """One provider, service, consumer and grant made for a test through the admin API."""

    hub: RunningHub
    agency: str
    connector: str
    service: str
    consumer: str
    key: str
    grant_id: int | None

    def call(
        self, method: str, path: str, *, key: str | None = None, **kwargs: Any
    ) -> httpx.Response:
        with self.hub.client(self.key if key is None else key) as client:
            return client.request(method, f"/api/{self.service}/v1{path}", **kwargs)

    def records(self, **filters: Any) -> list[dict[str, Any]]:
        return audit_records(self.hub, service=self.service, **filters)


def auditor_key(hub: RunningHub) -> str:
    cached = hub.shared_keys.get("auditor")
    if cached:
        return cached
    with hub.admin() as admin:
        answer = admin.post(
            "/admin/principals", json={"name": f"auditor-{secrets.token_hex(3)}", "role": "auditor"}
        )
        assert answer.status_code == 201, answer.text
    key: str = answer.json()["key"]
    hub.shared_keys["auditor"] = key
    return key


def audit_records(hub: RunningHub, **filters: Any) -> list[dict[str, Any]]:
    with hub.client(auditor_key(hub)) as client:
        answer = client.get(
            "/audit/exchanges", params={k: v for k, v in filters.items() if v is not None}
        )
    assert answer.status_code == 200, answer.text
    return list(answer.json()["items"])


def random_agency() -> str:
    """An agency code nobody else in the session uses (its space is large enough: ~2.6e10)."""
    letter = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"[secrets.randbelow(26)]
    return (
        f"{secrets.randbelow(1000):03d}.{secrets.randbelow(100):02d}."
        f"{secrets.randbelow(100):02d}.{letter}{secrets.randbelow(100):02d}"
    )


def ok(answer: httpx.Response, status: int = 201) -> dict[str, Any]:
    assert answer.status_code == status, answer.text
    return dict(answer.json())


CONTRACTS = ("params_schema", "request_schema", "response_schema")


def register_contracts(admin: httpx.Client, routes: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Routes with their inline JSON Schemas registered as subjects and named by reference,
    as an integrator publishes contracts before the service that uses them."""
    out = []
    for route in routes:
        route = dict(route)
        for name in CONTRACTS:
            schema = route.get(name)
            if isinstance(schema, dict | bool) and not (
                isinstance(schema, dict) and set(schema) == {"subject", "version"}
            ):
                subject = f"test.{secrets.token_hex(4)}.{name}"
                found = ok(
                    admin.post(f"/admin/schemas/{subject}/versions", json={"schema": schema})
                )
                route[name] = {"subject": subject, "version": found["version"]}
        out.append(route)
    return out


def provision(
    hub: RunningHub,
    *,
    base_url: str,
    routes: list[dict[str, Any]],
    kind: str = "rest",
    options: dict[str, Any] | None = None,
    auth: dict[str, Any] | None = None,
    personal_data: bool = False,
    subject_pointer: str | None = None,
    grant: dict[str, Any] | None = None,
    decision: dict[str, Any] | None = None,
    connector_extra: dict[str, Any] | None = None,
) -> World:
    """Agency, connector, published service, consumer with a key, and a grant, via the admin API."""

    def unique(prefix: str) -> str:
        return f"{prefix}-{secrets.token_hex(3)}"

    agency, connector, service, consumer = (
        random_agency(),
        unique("conn"),
        unique("svc"),
        unique("app"),
    )
    with hub.admin() as admin:
        ok(admin.post("/admin/agencies", json={"code": agency, "name": "Sở thử nghiệm"}))
        ok(
            admin.post(
                "/admin/connectors",
                json={
                    "name": connector,
                    "agency_code": agency,
                    "kind": kind,
                    "base_url": base_url,
                    "options": options or {},
                    "auth": auth or {"type": "none"},
                    "connect_timeout": 1,
                    "read_timeout": 1,
                    "retry": {"max_attempts": 3, "backoff_initial": 0.01, "backoff_max": 0.05},
                    **(connector_extra or {}),
                },
            )
        )
        ok(
            admin.post(
                "/admin/services",
                json={
                    "name": service,
                    "version": "v1",
                    "connector": connector,
                    "title": "Dịch vụ thử",
                    "status": "published",
                    "personal_data": personal_data,
                    "subject_pointer": subject_pointer,
                    "routes": register_contracts(admin, routes),
                },
            )
        )
        ok(
            admin.post(
                "/admin/consumers",
                json={
                    "name": consumer,
                    "agency_code": agency,
                    "title": "Ứng dụng thử",
                },
            )
        )
        key = ok(admin.post(f"/admin/consumers/{consumer}/keys", json={"label": "test"}))["key"]
        grant_id = None
        if grant is not None:
            grant_id = ok(
                admin.post(
                    "/admin/grants",
                    json={
                        "consumer": consumer,
                        "service": service,
                        **grant,
                    },
                )
            )["id"]
            if decision is not None:
                ok(admin.post(f"/admin/grants/{grant_id}/decision", json=decision), 200)
    return World(hub, agency, connector, service, consumer, key, grant_id)


@pytest.fixture
def make_world(hub: RunningHub) -> Callable[..., World]:
    def make(**kwargs: Any) -> World:
        return provision(hub, **kwargs)

    return make


APPROVE = {"decision": "approve"}
