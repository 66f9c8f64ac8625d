"""Real upstream servers on loopback that misbehave on demand, for the connector tests.

A Starlette app under uvicorn in a thread (REST, an OAuth2 token endpoint, SOAP 1.1/1.2), an
asyncio TCP server in a thread answering canned bytes (truncated, not HTTP), and registry rows.
"""

from __future__ import annotations

import asyncio
import base64
import itertools
import threading
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl
from xml.etree import ElementTree as ET

import orjson
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route as StarletteRoute

from registry.crud.connectors import opened_row
from registry.models import Connector, ConnectorCreate
from tests.wait import wait_until

SOAP11 = "http://schemas.xmlsoap.org/soap/envelope/"
SOAP12 = "http://www.w3.org/2003/05/soap-envelope"
CLIENT_ID = "hub-client"
CLIENT_SECRET = "s3cr3t-client-value"
API_KEY = "k3y-value-never-logged"


@dataclass
class ProviderState:
    calls: defaultdict[str, int] = field(default_factory=lambda: defaultdict(int))
    requests: defaultdict[str, list[dict[str, Any]]] = field(
        default_factory=lambda: defaultdict(list)
    )
    token_requests: int = 0
    token_lifetime: int = 3600
    token_delay: float = 0.05
    valid_tokens: set[str] = field(default_factory=set)
    token_counter: itertools.count[int] = field(default_factory=itertools.count)


@dataclass
class Provider:
    base_url: str
    state: ProviderState


def _record(state: ProviderState, key: str, request: Request, body: bytes) -> int:
    state.calls[key] += 1
    state.requests[key].append(
        {
            "method": request.method,
            "path": request.url.path,
            "query": list(request.query_params.multi_items()),
            "headers": dict(request.headers),
            "body": body,
        }
    )
    return state.calls[key]


def build_app(state: ProviderState) -> Starlette:
    async def echo(request: Request) -> Response:
        body = await request.body()
        _record(state, "echo", request, body)
        return JSONResponse(
            {
                "method": request.method,
                "path": request.url.path,
                "raw_path": request.scope["raw_path"].decode(),
                "query": [list(p) for p in request.query_params.multi_items()],
                "headers": dict(request.headers),
                "body": orjson.loads(body) if body else None,
            },
            headers={"ETag": '"v1"', "Server": "provider/1.0", "Cache-Control": "no-store"},
        )

    async def flaky(request: Request) -> Response:
        """The first `n` calls for `key` answer `code`, then 200."""
        key, n, code = (request.path_params[k] for k in ("key", "n", "code"))
        count = _record(state, key, request, await request.body())
        if count <= int(n):
            headers = {}
            if "retry_after" in request.query_params:
                headers["Retry-After"] = request.query_params["retry_after"]
            return JSONResponse({"error": "busy", "call": count}, int(code), headers=headers)
        return JSONResponse({"ok": True, "calls": count})

    async def slow(request: Request) -> Response:
        count = _record(state, request.path_params["key"], request, b"")
        await asyncio.sleep(float(request.path_params["seconds"]))
        return JSONResponse({"calls": count})

    async def html(request: Request) -> Response:
        return Response("<html><body>Maintenance</body></html>", media_type="text/html")

    async def bad_json(request: Request) -> Response:
        return Response(b'{"ho_ten": "Nguy', media_type="application/json")

    async def huge(request: Request) -> Response:
        return Response(b"[" + b"1," * 6_000_000 + b"1]", media_type="application/json")

    async def token(request: Request) -> Response:
        state.token_requests += 1
        await asyncio.sleep(state.token_delay)
        form = dict(parse_qsl((await request.body()).decode()))
        expected = base64.b64encode(f"{CLIENT_ID}:{CLIENT_SECRET}".encode()).decode()
        if request.headers.get("authorization") != f"Basic {expected}":
            return JSONResponse({"error": "invalid_client"}, 401)
        if form.get("grant_type") != "client_credentials":
            return JSONResponse({"error": "unsupported_grant_type"}, 400)
        issued = f"tok-{next(state.token_counter)}"
        state.valid_tokens.add(issued)
        return JSONResponse(
            {
                "access_token": issued,
                "token_type": "Bearer",
                "expires_in": state.token_lifetime,
                "scope": form.get("scope", ""),
            }
        )

    async def protected(request: Request) -> Response:
        _record(state, "protected", request, b"")
        auth = request.headers.get("authorization", "")
        if not auth.startswith("Bearer ") or auth[7:] not in state.valid_tokens:
            return JSONResponse({"error": "invalid_token"}, 401)
        return JSONResponse({"token": auth[7:]})

    async def api_key(request: Request) -> Response:
        if request.headers.get("x-api-key") != API_KEY:
            return JSONResponse({"error": "bad key"}, 403)
        return JSONResponse({"ok": True})

    async def soap(request: Request) -> Response:
        body = await request.body()
        _record(state, "soap", request, body)
        root = ET.fromstring(body)
        ns = root.tag[1:].partition("}")[0]
        envelope_body = root.find(f"{{{ns}}}Body")
        assert envelope_body is not None, body
        operation = next(iter(envelope_body))
        op_ns, _, op_name = operation.tag[1:].partition("}")
        echoed = "".join(ET.tostring(child, encoding="unicode") for child in operation)
        extra = request.query_params.get("extra", "")
        media = "text/xml" if ns == SOAP11 else "application/soap+xml"
        xml = (
            f'<s:Envelope xmlns:s="{ns}"><s:Body>'
            f'<r:{op_name}Response xmlns:r="{op_ns}">{echoed}{extra}</r:{op_name}Response>'
            "</s:Body></s:Envelope>"
        )
        return Response(xml, media_type=f"{media}; charset=utf-8")

    async def soap_fault(request: Request) -> Response:
        version, code, detail, status_text = (
            request.path_params[k] for k in ("version", "code", "detail", "status")
        )
        detail_xml = f"<MaLoi>{detail}</MaLoi>" if detail != "-" else ""
        status = int(status_text)
        if version == "11":
            xml = (
                f'<soap:Envelope xmlns:soap="{SOAP11}"><soap:Body><soap:Fault>'
                f"<faultcode>soap:{code}</faultcode>"
                "<faultstring>Không tìm thấy công dân</faultstring>"
                f"<detail>{detail_xml}</detail>"
                "</soap:Fault></soap:Body></soap:Envelope>"
            )
            media = "text/xml"
        else:
            xml = (
                f'<env:Envelope xmlns:env="{SOAP12}"><env:Body><env:Fault>'
                f"<env:Code><env:Value>env:{code}</env:Value></env:Code>"
                '<env:Reason><env:Text xml:lang="vi">Không tìm thấy công dân</env:Text>'
                f"</env:Reason><env:Detail>{detail_xml}</env:Detail>"
                "</env:Fault></env:Body></env:Envelope>"
            )
            media = "application/soap+xml"
        return Response(xml, status, media_type=media)

    async def soap_raw(request: Request) -> Response:
        """Canned SOAP replies: a reply with repeated elements, XXE, billion laughs."""
        kind = request.path_params["kind"]
        return Response(SOAP_REPLIES[kind], media_type="text/xml")

    return Starlette(
        routes=[
            StarletteRoute("/echo/{rest:path}", echo, methods=["GET", "POST", "PUT", "DELETE"]),
            StarletteRoute("/flaky/{key}/{n}/{code}", flaky, methods=["GET", "POST"]),
            StarletteRoute("/slow/{key}/{seconds}", slow, methods=["GET", "POST"]),
            StarletteRoute("/html", html, methods=["GET", "POST"]),
            StarletteRoute("/bad-json", bad_json),
            StarletteRoute("/huge", huge),
            StarletteRoute("/oauth/token", token, methods=["POST"]),
            StarletteRoute("/protected", protected),
            StarletteRoute("/api-key", api_key),
            StarletteRoute("/soap", soap, methods=["POST"]),
            StarletteRoute(
                "/soap-fault/{version}/{code}/{detail}/{status}", soap_fault, methods=["POST"]
            ),
            StarletteRoute("/soap-raw/{kind}", soap_raw, methods=["POST"]),
        ]
    )


SOAP_REPLIES = {
    "list": (
        f'<soap:Envelope xmlns:soap="{SOAP11}" '
        'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"><soap:Body>'
        '<t:TraCuuResponse xmlns:t="urn:lgsp:dancu">'
        "<t:HoTen>Nguyễn Văn A</t:HoTen><t:Tuoi>42</t:Tuoi><t:DaKetHon>true</t:DaKetHon>"
        "<t:ThuNhap>12.5</t:ThuNhap><t:GhiChu xsi:nil='true'/>"
        "<t:ConCai><t:HoTen>B</t:HoTen></t:ConCai>"
        "<t:DiaChi><t:Dong>1 Lê Lợi</t:Dong><t:Dong>Huế</t:Dong></t:DiaChi>"
        "</t:TraCuuResponse></soap:Body></soap:Envelope>"
    ),
    "xxe": (
        '<?xml version="1.0"?><!DOCTYPE r [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>'
        f'<soap:Envelope xmlns:soap="{SOAP11}"><soap:Body><R>&xxe;</R></soap:Body>'
        "</soap:Envelope>"
    ),
    "billion": (
        '<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">'
        + "".join(
            f'<!ENTITY lol{i} "{("&lol" + (str(i - 1) if i > 1 else "") + ";") * 10}">'
            for i in range(1, 10)
        )
        + f']><soap:Envelope xmlns:soap="{SOAP11}"><soap:Body><R>&lol9;</R></soap:Body>'
        "</soap:Envelope>"
    ),
    "not-envelope": "<html><body>oops</body></html>",
}


class UvicornThread:
    """`port` 0: any free port; `options` go to uvicorn.Config (TLS: ssl_certfile, ...)."""

    def __init__(self, app: Starlette, *, port: int = 0, **options: Any) -> None:
        self.scheme = "https" if options.get("ssl_certfile") else "http"
        config = uvicorn.Config(
            app,
            host="127.0.0.1",
            port=port,
            log_level="critical",
            lifespan="off",
            ws="none",
            loop="asyncio",
            access_log=False,
            **options,
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> str:
        self.thread.start()
        wait_until(
            lambda: self.server.started,
            timeout=10,
            interval=0.01,
            what="the test provider to start",
        )
        port = self.server.servers[0].sockets[0].getsockname()[1]
        return f"{self.scheme}://127.0.0.1:{port}"

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=5)


# ---------------------------------------------------------------- raw bytes


RAW_REPLIES = {
    "/truncated": (
        b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 500\r\n\r\n"
        b'{"ho_ten": "Nguyen'
    ),
    "/not-http": b"SSH-2.0-OpenSSH_9.6\r\n\r\n",
    "/close": b"",
}


class RawThread:
    """An asyncio server in its own thread: reads a request head, writes canned bytes, closes."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.ready = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.port = 0

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            path = head.split(b" ", 2)[1].decode()
            writer.write(RAW_REPLIES.get(path, b"HTTP/1.1 404 Not Found\r\n\r\n"))
            await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        server = self.loop.run_until_complete(asyncio.start_server(self._handle, "127.0.0.1", 0))
        self.port = server.sockets[0].getsockname()[1]
        self.server = server
        self.ready.set()
        self.loop.run_forever()
        server.close()
        self.loop.run_until_complete(server.wait_closed())
        self.loop.close()

    def __enter__(self) -> str:
        self.thread.start()
        self.ready.wait(5)
        return f"http://127.0.0.1:{self.port}"

    def __exit__(self, *exc: object) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=5)


# ---------------------------------------------------------------- registry rows


FAST_RETRY = {"max_attempts": 3, "backoff_initial": 0.001, "backoff_max": 0.005, "max_delay": 5}


def connector_row(base_url: str, *, kind: str = "rest", **overrides: Any) -> Connector:
    """A Connector row as the hub builds connectors from (validated through ConnectorCreate)."""
    data: dict[str, Any] = {
        "name": "provider",
        "agency_code": "000.00.12.H12",
        "kind": kind,
        "base_url": base_url,
        "connect_timeout": 1.0,
        "read_timeout": 1.0,
        "retry": FAST_RETRY,
    }
    if kind == "soap":
        data["options"] = {"namespace": "urn:lgsp:dancu"}
    data.update(overrides)
    # As the hub builds connectors from the registry: secrets apart, opened.
    return opened_row(ConnectorCreate.model_validate(data))
