"""The provincial dossier system (một cửa điện tử): REST/JSON; verifies applicants via the hub.

With a hub configured it also takes part in the asynchronous flows: every status change of a
dossier is published to `dossier.status` (a CapNhatTienDoHoSoMC item, for the national portal),
and, given a group subscription to `civil.birth-registered`, a background reader records each
birth registration and attaches it to the parent's open birth-registration dossier, which is
then processed (status 9), a change published like any other.
"""

from __future__ import annotations

import hmac
import uuid
from collections.abc import AsyncIterator, Sequence
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from simulators.communes import COMMUNES
from simulators.formats import add_working_days, format_timestamp, now_in_vietnam, parse_date
from simulators.group_reader import GroupReader
from simulators.personal_id import is_well_formed
from simulators.publisher import Publisher
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
NEWLY_REGISTERED, RECEIVED, NOT_RECEIVED, PROCESSED = 1, 2, 3, 9
STATUSES = range(1, 11)
# Still waiting for something: newly registered, received, in progress, supplement or fee asked.
OPEN_STATUSES = frozenset({1, 2, 4, 5, 6})
STATUS_TOPIC = "dossier.status"
BIRTH_PROCEDURES = ("1.001193",)  # Đăng ký khai sinh (mã TTHC)
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
    status_topic: str = STATUS_TOPIC,
    birth_subscription: str | None = None,
    birth_procedures: Sequence[str] = BIRTH_PROCEDURES,
    publish_retry_max: float = 5.0,
) -> Starlette:
    """The dossier system; with `hub_url` set it verifies every applicant through the hub and
    publishes status changes to `status_topic`; with `birth_subscription` too, it reads birth
    registrations from that group subscription."""
    store = _Store()
    log = RequestLog()
    hub = (
        _HubSettings(hub_url, hub_api_key, purpose, verify_service, officer_id) if hub_url else None
    )
    clients: list[httpx.AsyncClient] = []
    births: dict[str, dict[str, Any]] = {}  # so_dang_ky -> what the reader made of it
    publisher = (
        Publisher(hub_url=hub_url, api_key=hub_api_key, retry_max=publish_retry_max)
        if hub_url
        else None
    )

    def status_changed(dossier: dict[str, Any], **note: str | None) -> None:
        """Announce the dossier's current status (a CapNhatTienDoHoSoMC item)."""
        if publisher is None:
            return
        update = {
            "MaHoSo": dossier["MaHoSo"],
            "TrangThaiHoSo": dossier["TrangThaiHoSo"],
            "ThoiDiemXuLy": dossier["NgayCapNhat"],
        }
        update.update({k: v for k, v in note.items() if v is not None})
        publisher.publish(status_topic, update)

    def on_birth(message: dict[str, Any]) -> None:
        """A birth registration from civil.birth-registered: recorded once, attached to the
        parent's open birth-registration dossier, which is then processed."""
        value = message.get("value")
        code = value.get("so_dang_ky") if isinstance(value, dict) else None
        if not isinstance(value, dict) or not isinstance(code, str):
            return  # the hub checks the contract; nothing usable here, nothing to keep
        if code in births:
            return  # read again after a restart or a replay: handled already
        parents = {value.get("me_so_dinh_danh"), value.get("cha_so_dinh_danh")} - {None}
        attached: list[str] = []
        for dossier in store.dossiers.values():
            if (
                dossier["MaTTHC"] in birth_procedures
                and dossier["ChuHoSo"]["SoDinhDanh"] in parents
                and dossier["TrangThaiHoSo"] in OPEN_STATUSES
            ):
                dossier["GiayKhaiSinh"] = {
                    "SoDangKy": code,
                    "HoVaTen": value.get("ho_va_ten"),
                    "SoDinhDanh": value.get("so_dinh_danh"),
                    "NgayDangKy": value.get("ngay_dang_ky"),
                }
                dossier["TrangThaiHoSo"] = PROCESSED
                dossier["NgayCapNhat"] = format_timestamp(now_in_vietnam())
                status_changed(dossier, NoiDungXuLy=f"Đã đăng ký khai sinh, số {code}")
                attached.append(dossier["MaHoSo"])
        births[code] = {
            "so_dang_ky": code,
            "ho_va_ten": value.get("ho_va_ten"),
            "so_dinh_danh": value.get("so_dinh_danh"),
            "message_id": message.get("id"),
            "partition": message.get("partition"),
            "offset": message.get("offset"),
            "received_at": format_timestamp(now_in_vietnam()),
            "attached_to": attached,
        }

    reader = (
        GroupReader(
            hub_url=hub_url, api_key=hub_api_key, subscription=birth_subscription, handle=on_birth
        )
        if hub_url and birth_subscription
        else None
    )

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
        status_changed(
            dossier,
            NoiDungXuLy="Tiếp nhận hồ sơ"
            if status != NOT_RECEIVED
            else "Không tiếp nhận: thông tin chủ hồ sơ không khớp CSDL quốc gia về dân cư",
        )
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
        check = Validation()
        if not is_int_in(body.get("TrangThaiHoSo"), STATUSES.start, STATUSES.stop - 1):
            check.add("/TrangThaiHoSo", "must be a status code from 1 to 10")
        if "NguoiXuLy" in body and not non_empty_string(body["NguoiXuLy"], max_length=100):
            check.add("/NguoiXuLy", "must be the officer's name (at most 100 characters)")
        if "NoiDungXuLy" in body and not isinstance(body["NoiDungXuLy"], str):
            check.add("/NoiDungXuLy", "must be a string")
        check.raise_if_any()
        dossier["TrangThaiHoSo"] = body["TrangThaiHoSo"]
        dossier["NgayCapNhat"] = format_timestamp(now_in_vietnam())
        status_changed(
            dossier, NguoiXuLy=body.get("NguoiXuLy"), NoiDungXuLy=body.get("NoiDungXuLy")
        )
        return JSONResponse(dossier)

    async def list_births(request: Request) -> Response:
        """Birth registrations read from the hub, and the dossiers they were attached to."""
        return JSONResponse(list(births.values()))

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        async with AsyncExitStack() as stack:
            clients.append(await stack.enter_async_context(httpx.AsyncClient(timeout=HUB_TIMEOUT)))
            for worker in (publisher, reader):
                if worker is not None:
                    await stack.enter_async_context(worker.running())
            yield
            clients.clear()

    routes = [
        Route("/api/ho-so", submit, methods=["POST"]),
        Route("/api/ho-so", search, methods=["GET"]),
        Route("/api/ho-so/{code}", read, methods=["GET"]),
        Route("/api/ho-so/{code}/trang-thai", update_status, methods=["PUT"]),
        Route("/_sim/khai-sinh", list_births, methods=["GET"]),
        HEALTH_ROUTE,
        *log.routes(),
        *(publisher.routes() if publisher else []),
        *(reader.routes() if reader else []),
    ]
    return Starlette(
        routes=routes, lifespan=lifespan, exception_handlers={Problem: problem_handler}
    )
