"""The provincial dossier system (một cửa điện tử): REST/JSON; verifies applicants via the hub."""

from __future__ import annotations

import hmac
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from simulators.communes import COMMUNES
from simulators.formats import add_working_days, format_timestamp, now_in_vietnam, parse_date
from simulators.personal_id import is_well_formed
from simulators.web import (
    HEALTH_ROUTE,
    Problem,
    RequestLog,
    Validation,
    is_int_in,
    json_object,
    non_empty_string,
    personal_id_query,
    problem_handler,
)

# TrangThaiHoSo, as used with the national portal.
NEWLY_REGISTERED, RECEIVED, NOT_RECEIVED = 1, 2, 3
STATUSES = range(1, 11)
WORKING_DAYS_TO_RESULT = 5
HUB_TIMEOUT = 10.0


@dataclass
class _Store:
    dossiers: dict[str, dict[str, Any]] = field(default_factory=dict)
    serials: dict[str, int] = field(default_factory=dict)  # per yyMMdd

    def next_code(self, prefix: str, day: str) -> str:
        self.serials[day] = self.serials.get(day, 0) + 1
        return f"{prefix}-{day}-{self.serials[day]:04d}"


def _validate_application(body: dict[str, Any]) -> None:
    check = Validation()
    if not non_empty_string(body.get("MaTTHC"), max_length=50):
        check.add("/MaTTHC", "required: the procedure code")
    if "MaLinhVuc" in body and not non_empty_string(body["MaLinhVuc"], max_length=50):
        check.add("/MaLinhVuc", "must be a non-empty string")
    if not is_int_in(body.get("KenhNop"), 1, 3):
        check.add("/KenhNop", "must be 1 (in person), 2 (online) or 3 (by post)")
    if body.get("MaXa") not in COMMUNES:
        check.add("/MaXa", "must be the 5-digit code of one of the 38 communes of Lai Châu")
    if "TrichYeu" in body and not isinstance(body["TrichYeu"], str):
        check.add("/TrichYeu", "must be a string")
    applicant = body.get("ChuHoSo")
    if not isinstance(applicant, dict):
        check.add("/ChuHoSo", "required: an object with HoVaTen, SoDinhDanh and NgaySinh")
    else:
        if not non_empty_string(applicant.get("HoVaTen"), max_length=100):
            check.add("/ChuHoSo/HoVaTen", "required: the applicant's full name")
        number = applicant.get("SoDinhDanh")
        if not isinstance(number, str) or not is_well_formed(number):
            check.add("/ChuHoSo/SoDinhDanh", "must be a 12-digit personal identification number")
        if parse_date(applicant.get("NgaySinh")) is None:
            check.add("/ChuHoSo/NgaySinh", "must be a date as yyyyMMdd")
    check.raise_if_any()


@dataclass(frozen=True)
class _HubSettings:
    url: str
    api_key: str | None
    purpose: str
    verify_service: str
    officer_id: str  # MaCanBo: the officer receiving dossiers, on whose behalf the hub is asked


async def _verify_through_hub(
    client: httpx.AsyncClient, hub: _HubSettings, applicant: dict[str, Any]
) -> dict[str, Any]:
    """Ask the hub whether the applicant's number, name and birth date match; 502 on failure."""
    request_id = str(uuid.uuid4())
    headers = {"X-Purpose": hub.purpose, "X-Request-Id": request_id}
    if hub.api_key is not None:
        headers["X-API-Key"] = hub.api_key
    payload = {
        "so_dinh_danh": applicant["SoDinhDanh"],
        "ho_va_ten": applicant["HoVaTen"],
        "ngay_sinh": applicant["NgaySinh"],
        "ma_can_bo": hub.officer_id,
    }
    url = f"{hub.url.rstrip('/')}/api/{hub.verify_service}/cong-dan/xac-thuc"
    try:
        answer = await client.post(url, json=payload, headers=headers)
    except httpx.HTTPError as exc:
        raise Problem(502, "Hub unreachable", f"the hub at {hub.url} failed: {exc!r}") from exc
    try:
        body = answer.json()
    except ValueError:
        body = None
    if answer.status_code != 200:
        said = body.get("title") or body.get("detail") if isinstance(body, dict) else None
        raise Problem(
            502,
            "Hub refused verification",
            f"the hub answered {answer.status_code} to the citizen verification"
            + (f": {said}" if said else ""),
        )
    if not isinstance(body, dict) or not isinstance(body.get("ket_qua"), bool):
        raise Problem(502, "Hub answer unexpected", "the hub's answer has no boolean ket_qua")
    result: dict[str, Any] = {"KetQua": body["ket_qua"], "MaYeuCau": request_id}
    if body.get("ly_do") is not None:
        result["LyDo"] = body["ly_do"]
    return result


def create_app(
    *,
    hub_url: str | None = None,
    hub_api_key: str | None = None,
    purpose: str = "xac-thuc-ho-so",
    verify_service: str = "dan-cu/v1",
    api_key: str | None = "dossier-demo-key",
    prefix: str = "H12.99",
    officer_id: str = "012185000101",
) -> Starlette:
    """The dossier system; with `hub_url` set it verifies every applicant through the hub."""
    store = _Store()
    log = RequestLog()
    hub = (
        _HubSettings(hub_url, hub_api_key, purpose, verify_service, officer_id) if hub_url else None
    )
    clients: list[httpx.AsyncClient] = []

    def authorise(request: Request) -> None:
        log.record_request(request)
        given = request.headers.get("x-api-key", "")
        if api_key is not None and not hmac.compare_digest(given.encode(), api_key.encode()):
            raise Problem(401, "Unauthorized", "a valid X-API-Key header is required")

    def stored(code: str) -> dict[str, Any]:
        if code not in store.dossiers:
            raise Problem(404, "Not found", f"no dossier {code}")
        return store.dossiers[code]

    async def submit(request: Request) -> Response:
        """Submit an application (nộp hồ sơ)."""
        authorise(request)
        body = await json_object(request)
        _validate_application(body)
        verification = await _verify_through_hub(clients[0], hub, body["ChuHoSo"]) if hub else None
        if verification is None:
            status = NEWLY_REGISTERED
        else:
            status = RECEIVED if verification["KetQua"] else NOT_RECEIVED
        now = now_in_vietnam()
        code = store.next_code(prefix, now.strftime("%y%m%d"))
        applicant = body["ChuHoSo"]
        dossier = {
            "MaHoSo": code,
            "MaTTHC": body["MaTTHC"],
            "MaLinhVuc": body.get("MaLinhVuc"),
            "KenhNop": body["KenhNop"],
            "MaXa": body["MaXa"],
            "TenXa": COMMUNES[body["MaXa"]].full_name,
            "ChuHoSo": {k: applicant[k] for k in ("HoVaTen", "SoDinhDanh", "NgaySinh")},
            "TrichYeu": body.get("TrichYeu"),
            "TrangThaiHoSo": status,
            "NgayTiepNhan": format_timestamp(now),
            "NgayHenTra": format_timestamp(add_working_days(now, WORKING_DAYS_TO_RESULT)),
            "NgayCapNhat": format_timestamp(now),
            "XacThucDanCu": verification,
        }
        store.dossiers[code] = dossier
        return JSONResponse(dossier, status_code=201)

    async def read(request: Request) -> Response:
        """One dossier by its code."""
        authorise(request)
        return JSONResponse(stored(request.path_params["code"]))

    async def search(request: Request) -> Response:
        """Dossiers, optionally of one applicant (so_dinh_danh)."""
        authorise(request)
        number = personal_id_query(request)
        items = [
            d
            for d in store.dossiers.values()
            if number is None or d["ChuHoSo"]["SoDinhDanh"] == number
        ]
        return JSONResponse({"items": items, "total": len(items)})

    async def update_status(request: Request) -> Response:
        """Change a dossier's status (TrangThaiHoSo 1..10)."""
        authorise(request)
        dossier = stored(request.path_params["code"])
        body = await json_object(request)
        if not is_int_in(body.get("TrangThaiHoSo"), STATUSES.start, STATUSES.stop - 1):
            check = Validation()
            check.add("/TrangThaiHoSo", "must be a status code from 1 to 10")
            check.raise_if_any()
        dossier["TrangThaiHoSo"] = body["TrangThaiHoSo"]
        dossier["NgayCapNhat"] = format_timestamp(now_in_vietnam())
        return JSONResponse(dossier)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        async with httpx.AsyncClient(timeout=HUB_TIMEOUT) as client:
            clients.append(client)
            yield
            clients.clear()

    routes = [
        Route("/api/ho-so", submit, methods=["POST"]),
        Route("/api/ho-so", search, methods=["GET"]),
        Route("/api/ho-so/{code}", read, methods=["GET"]),
        Route("/api/ho-so/{code}/trang-thai", update_status, methods=["PUT"]),
        HEALTH_ROUTE,
        *log.routes(),
    ]
    return Starlette(
        routes=routes, lifespan=lifespan, exception_handlers={Problem: problem_handler}
    )
