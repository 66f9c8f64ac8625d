"""The national public-service portal (DVCQG): receives dossier synchronisation and progress."""

from __future__ import annotations

import hmac
import secrets
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from simulators.formats import format_timestamp, is_timestamp, now_in_vietnam
from simulators.web import (
    HEALTH_ROUTE,
    Problem,
    RequestLog,
    Validation,
    json_object,
    non_empty_string,
    problem_handler,
)

SYNC = "DongBoHoSoMC"
PROGRESS = "CapNhatTienDoHoSoMC"
_ENVELOPE_KEYS = {"session", "madonvi", "service", "isUpdating", "data"}


def _status(value: object) -> int | None:
    """TrangThaiHoSo as an int 1..10; senders use numbers or numeric strings."""
    if isinstance(value, bool):
        return None
    if isinstance(value, str) and value.isdigit():
        value = int(value)
    return value if isinstance(value, int) and 1 <= value <= 10 else None


def _check_item(item: object, pointer: str, service: str, check: Validation) -> None:
    if not isinstance(item, dict):
        check.add(pointer, "must be a dossier object")
        return
    if not non_empty_string(item.get("MaHoSo"), max_length=100):
        check.add(f"{pointer}/MaHoSo", "required: the dossier code")
    status_field = "TrangThai" if service == PROGRESS and "TrangThai" in item else "TrangThaiHoSo"
    if _status(item.get(status_field)) is None:
        check.add(f"{pointer}/{status_field}", "must be a status code from 1 to 10")
    if service == SYNC:
        if not non_empty_string(item.get("MaTTHC"), max_length=50):
            check.add(f"{pointer}/MaTTHC", "required: the procedure code")
        owner = item.get("ChuHoSo")
        if not (non_empty_string(owner) or (isinstance(owner, dict) and owner)):
            check.add(f"{pointer}/ChuHoSo", "required: the applicant (name or object)")
        for name in ("NgayTiepNhan", "NgayHenTra"):
            if not is_timestamp(item.get(name)):
                check.add(f"{pointer}/{name}", "must be a time as yyyyMMddHHmmss")
    elif "ThoiDiemXuLy" in item and not is_timestamp(item["ThoiDiemXuLy"]):
        check.add(f"{pointer}/ThoiDiemXuLy", "must be a time as yyyyMMddHHmmss")


def _items(body: dict[str, Any], service: str) -> list[dict[str, Any]]:
    """The dossiers of a call: `data` as a list (observed practice) or the body as one dossier."""
    check = Validation()
    if isinstance(body.get("data"), list):
        items: list[Any] = body["data"]
        if not items:
            check.add("/data", "must hold at least one dossier")
        for index, item in enumerate(items):
            _check_item(item, f"/data/{index}", service, check)
    else:
        items = [{k: v for k, v in body.items() if k not in _ENVELOPE_KEYS}]
        _check_item(items[0], "", service, check)
    check.raise_if_any()
    return items


def create_app(*, username: str = "laichau-mc", password: str = "matkhau-dvcqg") -> Starlette:
    """The portal; a session from POST /api/token goes in `Authorization: Bearer` or `session`."""
    sessions: set[str] = set()
    received: list[dict[str, Any]] = []
    log = RequestLog()

    async def token(request: Request) -> Response:
        """Open a session for the configured account."""
        body = await json_object(request)
        given_user = str(body.get("username", "")).encode()
        given_password = str(body.get("password", "")).encode()
        if not (
            hmac.compare_digest(given_user, username.encode())
            & hmac.compare_digest(given_password, password.encode())
        ):
            return JSONResponse(
                {"error_code": -1, "message": "Sai tên đăng nhập hoặc mật khẩu"}, 401
            )
        session = secrets.token_urlsafe(24)
        sessions.add(session)
        return JSONResponse({"error_code": 0, "session": session})

    def authorise(request: Request, body: dict[str, Any]) -> None:
        scheme, _, bearer = request.headers.get("authorization", "").partition(" ")
        session = bearer.strip() if scheme.lower() == "bearer" else body.get("session")
        if not isinstance(session, str) or session not in sessions:
            raise Problem(401, "Unauthorized", "a session from /api/token is required")

    def receiver(service: str) -> Callable[[Request], Awaitable[Response]]:
        async def receive(request: Request) -> Response:
            log.record_request(request, service=service)
            body = await json_object(request)
            authorise(request, body)
            items = _items(body, service)
            at = format_timestamp(now_in_vietnam())
            received.extend({"service": service, "received_at": at, "item": i} for i in items)
            return JSONResponse({"error_code": 0, "message": "Thành công", "count": len(items)})

        receive.__doc__ = f"Receive {service} from a province's dossier system."
        return receive

    async def list_received(request: Request) -> Response:
        return JSONResponse(received)

    async def clear_received(request: Request) -> Response:
        received.clear()
        return Response(status_code=204)

    routes = [
        Route("/api/token", token, methods=["POST"]),
        Route(f"/api/{SYNC}", receiver(SYNC), methods=["POST"]),
        Route(f"/api/{PROGRESS}", receiver(PROGRESS), methods=["POST"]),
        Route("/_sim/received", list_received, methods=["GET"]),
        Route("/_sim/received", clear_received, methods=["DELETE"]),
        HEALTH_ROUTE,
        *log.routes(),
    ]
    return Starlette(routes=routes, exception_handlers={Problem: problem_handler})
