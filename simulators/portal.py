"""The national public-service portal (DVCQG): receives dossier synchronisation and progress.

Two ways in: the province's dossier system calls DongBoHoSoMC / CapNhatTienDoHoSoMC with a
session (the API of the portal), or the hub pushes each message of the `dossier.status` topic
(a CapNhatTienDoHoSoMC item) to POST /webhooks/trang-thai-ho-so, signed with Standard Webhooks.
Either way the portal keeps every dossier's status history (GET /_sim/ho-so/{code}).
"""

from __future__ import annotations

import hmac
import secrets
from collections.abc import Awaitable, Callable, Sequence
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
from simulators.webhooks import Delivery, WebhookLog, WebhookReceiver

SYNC = "DongBoHoSoMC"
PROGRESS = "CapNhatTienDoHoSoMC"
_ENVELOPE_KEYS = {"session", "madonvi", "service", "isUpdating", "data"}
WEBHOOK_PATH = "/webhooks/trang-thai-ho-so"
# The signing secret of the demo's push subscription (DEMO_PORTAL_WEBHOOK_SECRET in the demo).
DEMO_WEBHOOK_SECRET = "whsec_bGdzcC1kZW1vLXBvcnRhbC13ZWJob29r"


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


def create_app(
    *,
    username: str = "laichau-mc",
    password: str = "matkhau-dvcqg",
    webhook_secrets: Sequence[str] = (DEMO_WEBHOOK_SECRET,),
) -> Starlette:
    """The portal; a session from POST /api/token goes in `Authorization: Bearer` or `session`;
    pushes from the hub are verified with `webhook_secrets` instead."""
    sessions: set[str] = set()
    received: list[dict[str, Any]] = []
    history: dict[str, list[dict[str, Any]]] = {}  # MaHoSo -> status changes, in arrival order
    log = RequestLog()
    webhooks = WebhookLog()
    pushes = WebhookReceiver(webhook_secrets, endpoint=WEBHOOK_PATH, log=webhooks)

    def keep(service: str, items: list[dict[str, Any]], **via: Any) -> None:
        at = format_timestamp(now_in_vietnam())
        for item in items:
            received.append({"service": service, "received_at": at, "item": item, **via})
            status = _status(item.get("TrangThaiHoSo", item.get("TrangThai")))
            history.setdefault(str(item["MaHoSo"]), []).append(
                {
                    "TrangThaiHoSo": status,
                    "ThoiDiemXuLy": item.get("ThoiDiemXuLy"),
                    "NoiDungXuLy": item.get("NoiDungXuLy"),
                    "service": service,
                    "received_at": at,
                    **via,
                }
            )

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
            keep(service, items)
            return JSONResponse({"error_code": 0, "message": "Thành công", "count": len(items)})

        receive.__doc__ = f"Receive {service} from a province's dossier system."
        return receive

    def apply_status(delivery: Delivery) -> dict[str, Any]:
        check = Validation()
        _check_item(delivery.value, "", PROGRESS, check)
        check.raise_if_any()
        keep(PROGRESS, [delivery.value], webhook_id=delivery.webhook_id)
        return {"error_code": 0, "message": "Thành công", "MaHoSo": delivery.value["MaHoSo"]}

    async def status_webhook(request: Request) -> Response:
        """Receive one dossier status change pushed by the hub (topic dossier.status)."""
        return await pushes.receive(request, apply_status)

    async def list_received(request: Request) -> Response:
        return JSONResponse(received)

    async def clear_received(request: Request) -> Response:
        received.clear()
        history.clear()
        return Response(status_code=204)

    def summary(code: str) -> dict[str, Any]:
        changes = history[code]
        return {"MaHoSo": code, "TrangThaiHoSo": changes[-1]["TrangThaiHoSo"], "LichSu": changes}

    async def list_dossiers(request: Request) -> Response:
        """Every dossier the portal heard of, with its current status and history."""
        return JSONResponse([summary(code) for code in history])

    async def read_dossier(request: Request) -> Response:
        """One dossier's current status and history (lịch sử trạng thái)."""
        code = request.path_params["code"]
        if code not in history:
            raise Problem(404, "Not found", f"the portal has heard nothing of dossier {code}")
        return JSONResponse(summary(code))

    routes = [
        Route("/api/token", token, methods=["POST"]),
        Route(f"/api/{SYNC}", receiver(SYNC), methods=["POST"]),
        Route(f"/api/{PROGRESS}", receiver(PROGRESS), methods=["POST"]),
        Route(WEBHOOK_PATH, status_webhook, methods=["POST"]),
        Route("/_sim/received", list_received, methods=["GET"]),
        Route("/_sim/received", clear_received, methods=["DELETE"]),
        Route("/_sim/ho-so", list_dossiers, methods=["GET"]),
        Route("/_sim/ho-so/{code}", read_dossier, methods=["GET"]),
        HEALTH_ROUTE,
        *log.routes(),
        *webhooks.routes(),
    ]
    return Starlette(routes=routes, exception_handlers={Problem: problem_handler})
