"""run_in_thread: a real uvicorn server that starts on a free port and stops cleanly."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from simulators.server import run_in_thread


async def hello(request: Request) -> Response:
    return PlainTextResponse("xin chào")


APP = Starlette(routes=[Route("/", hello)])


def test_serves_then_frees_the_port() -> None:
    with run_in_thread(APP) as url:
        assert url.startswith("http://127.0.0.1:")
        assert httpx.get(url).text == "xin chào"
        port = int(url.rsplit(":", 1)[1])
    with (
        pytest.raises(ConnectionRefusedError),
        socket.create_connection(("127.0.0.1", port), timeout=1),
    ):
        pass


def test_two_servers_get_different_ports() -> None:
    with run_in_thread(APP) as first, run_in_thread(APP) as second:
        assert first != second
        assert httpx.get(second).status_code == 200


def test_stops_while_a_client_keeps_a_connection_open() -> None:
    with run_in_thread(APP) as url, httpx.Client() as client:
        assert client.get(url).status_code == 200
    # reaching here means the server shut down despite the idle keep-alive connection


@asynccontextmanager
async def broken_lifespan(app: Starlette) -> AsyncIterator[None]:
    raise RuntimeError("boom")
    yield


def test_startup_failure_is_reported() -> None:
    app = Starlette(lifespan=broken_lifespan)
    with pytest.raises(RuntimeError, match="did not start"), run_in_thread(app):
        pass
