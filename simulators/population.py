"""The national population database (CSDLQG về dân cư): SOAP 1.1/1.2 at POST /ws/dan-cu.

It also subscribes to the province's birth registrations: the hub pushes each message of the
`civil.birth-registered` topic to POST /webhooks/khai-sinh (Standard Webhooks), and the child's
record is created with the personal identification number the civil-status system assigned, so
a lookup through the hub finds the newborn at once.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import unicodedata
from collections.abc import Mapping, Sequence
from typing import Any
from xml.etree.ElementTree import Element

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from simulators import citizens
from simulators.communes import COMMUNES, PROVINCE_CODE
from simulators.formats import format_date, format_timestamp, now_in_vietnam, parse_date
from simulators.personal_id import FEMALE, MALE, is_valid_personal_id, is_well_formed
from simulators.soap import (
    SoapFault,
    SoapVersion,
    child,
    child_text,
    envelope,
    fault_element,
    local_name,
    namespace_of,
    parse_operation,
    sender_fault,
    version_for,
)
from simulators.web import HEALTH_ROUTE, Problem, RequestLog, Validation, problem_handler
from simulators.webhooks import Delivery, WebhookLog, WebhookReceiver

NAMESPACE = "urn:vn:gov:csdlqgvdc:dancu:1.0"
PREFIX = "dc"
PATH = "/ws/dan-cu"
WEBHOOK_PATH = "/webhooks/khai-sinh"
# The signing secret of the demo's push subscription (DEMO_POPULATION_WEBHOOK_SECRET).
DEMO_WEBHOOK_SECRET = "whsec_bGdzcC1kZW1vLWRhbi1jdS13ZWJob29r"
# A birth registration names no ethnic group; the mother's is taken, else this one.
DEFAULT_ETHNIC_GROUP = "Kinh"

# MaLoi: the error codes carried in a fault's detail.
CITIZEN_NOT_FOUND = "CD_KHONG_TON_TAI"
INVALID_DATA = "DU_LIEU_KHONG_HOP_LE"
OFFICER_NOT_ALLOWED = "CB_KHONG_CO_QUYEN"
UNSUPPORTED_OPERATION = "THAO_TAC_KHONG_HO_TRO"
MISSING_CLIENT = "THIEU_X_ROAD_CLIENT"
MISMATCH = "KHONG_KHOP"

LOOKUP = "TraCuuThongTinCongDan"
VERIFY = "XacThucThongTinCongDan"


def _q(name: str) -> str:
    return f"{{{NAMESPACE}}}{name}"


def _required(operation: Element, *names: str) -> dict[str, str]:
    values = {name: child_text(operation, name, NAMESPACE) for name in names}
    missing = [name for name, value in values.items() if value is None]
    if missing:
        raise sender_fault(INVALID_DATA, f"Thiếu trường bắt buộc: {', '.join(missing)}")
    return {name: value for name, value in values.items() if value is not None}


def _authorise_officer(ma_can_bo: str) -> None:
    officer = citizens.find_officer(ma_can_bo)
    if officer is None or not officer.co_quyen_dan_cu:
        raise sender_fault(OFFICER_NOT_ALLOWED, "Cán bộ không có quyền khai thác dữ liệu dân cư")


Registered = Mapping[str, citizens.Citizen]  # citizens recorded since start (newborns)


def _citizen(so_dinh_danh: str, registered: Registered) -> citizens.Citizen:
    if not is_well_formed(so_dinh_danh):
        raise sender_fault(INVALID_DATA, "SoDinhDanh phải gồm đúng 12 chữ số")
    found = citizens.find(so_dinh_danh) or registered.get(so_dinh_danh)
    if found is None:
        raise sender_fault(CITIZEN_NOT_FOUND, "Không tìm thấy công dân với số định danh đã cho")
    return found


def _same_name(left: str, right: str) -> bool:
    def canonical(name: str) -> str:
        return " ".join(unicodedata.normalize("NFC", name).casefold().split())

    return canonical(left) == canonical(right)


def lookup(operation: Element, registered: Registered | None = None) -> Element:
    """TraCuuThongTinCongDan: the citizen's record."""
    fields = _required(operation, "MaYeuCau", "MaCanBo", "SoDinhDanh")
    _authorise_officer(fields["MaCanBo"])
    person = _citizen(fields["SoDinhDanh"], registered or {})
    answer = Element(_q(f"{LOOKUP}Response"))
    child(answer, _q("MaYeuCau"), fields["MaYeuCau"])
    record = child(answer, _q("CongDan"))
    child(record, _q("SoDinhDanh"), person.so_dinh_danh)
    child(record, _q("HoVaTen"), person.ho_va_ten)
    child(record, _q("GioiTinh"), str(person.gioi_tinh))
    child(record, _q("NgaySinh"), format_date(person.ngay_sinh))
    child(record, _q("DanToc"), person.dan_toc)
    child(record, _q("QuocTich"), person.quoc_tich)
    home = child(record, _q("NoiThuongTru"))
    child(home, _q("MaTinh"), person.noi_thuong_tru.ma_tinh)
    child(home, _q("MaXa"), person.noi_thuong_tru.ma_xa)
    child(home, _q("TenXa"), person.noi_thuong_tru.ten_xa)
    return answer


def verify(operation: Element, registered: Registered | None = None) -> Element:
    """XacThucThongTinCongDan: yes or no, never the record."""
    fields = _required(operation, "MaYeuCau", "MaCanBo", "SoDinhDanh", "HoVaTen", "NgaySinh")
    _authorise_officer(fields["MaCanBo"])
    born = parse_date(fields["NgaySinh"])
    if born is None:
        raise sender_fault(INVALID_DATA, "NgaySinh phải có dạng yyyyMMdd")
    person = _citizen(fields["SoDinhDanh"], registered or {})
    matches = person.ngay_sinh == born and _same_name(person.ho_va_ten, fields["HoVaTen"])
    answer = Element(_q(f"{VERIFY}Response"))
    child(answer, _q("MaYeuCau"), fields["MaYeuCau"])
    child(answer, _q("KetQua"), "true" if matches else "false")
    if not matches:
        child(answer, _q("LyDo"), MISMATCH)
    return answer


OPERATIONS = {LOOKUP: lookup, VERIFY: verify}


def _newborn(value: Any, registered: Registered) -> citizens.Citizen:
    """The record of a child from its birth registration (ho-tich.khai-sinh), or a 422."""
    if not isinstance(value, dict):
        raise Problem(422, "Validation failed", "the message must be a birth registration")
    check = Validation()
    number, sex, name = value.get("so_dinh_danh"), value.get("gioi_tinh"), value.get("ho_va_ten")
    born = parse_date(value.get("ngay_sinh"))
    commune = value.get("noi_sinh_ma_xa")
    if not isinstance(name, str) or not name.strip():
        check.add("/ho_va_ten", "required: the child's full name")
    if sex not in (MALE, FEMALE) or isinstance(sex, bool):
        check.add("/gioi_tinh", "must be 1 (nam) or 2 (nữ)")
    if born is None:
        check.add("/ngay_sinh", "must be a date as yyyyMMdd")
    if commune not in COMMUNES:
        check.add("/noi_sinh_ma_xa", "must be the code of one of the 38 communes of Lai Châu")
    if not isinstance(number, str) or not is_well_formed(number):
        check.add("/so_dinh_danh", "must be a 12-digit personal identification number")
    elif (
        born is not None
        and sex in (MALE, FEMALE)
        and not is_valid_personal_id(number, sex=sex, birth_year=born.year)
    ):
        check.add("/so_dinh_danh", "does not agree with the child's sex and birth year")
    check.raise_if_any()
    # Checked above; the asserts tell the type checker.
    assert isinstance(number, str)
    assert isinstance(name, str)
    assert isinstance(commune, str)
    assert isinstance(sex, int)
    assert born is not None
    mother_number = value.get("me_so_dinh_danh")
    mother = (
        citizens.find(mother_number) or registered.get(mother_number)
        if isinstance(mother_number, str)
        else None
    )
    # A newborn is registered as resident where the mother lives, else where it was born.
    home = (
        mother.noi_thuong_tru
        if mother is not None
        else citizens.Address(PROVINCE_CODE, commune, COMMUNES[commune].full_name)
    )
    return citizens.Citizen(
        so_dinh_danh=number,
        ho_va_ten=name.strip(),
        gioi_tinh=sex,
        ngay_sinh=born,
        noi_thuong_tru=home,
        dan_toc=mother.dan_toc if mother is not None else DEFAULT_ETHNIC_GROUP,
    )


def _basic_credentials(header: str | None) -> tuple[str, str] | None:
    scheme, _, encoded = (header or "").partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        username, sep, password = base64.b64decode(encoded, validate=True).decode().partition(":")
    except (binascii.Error, UnicodeDecodeError):
        return None
    return (username, password) if sep else None


def create_app(
    *,
    username: str | None = "lgsp-laichau",
    password: str | None = "matkhau-demo",
    webhook_secrets: Sequence[str] = (DEMO_WEBHOOK_SECRET,),
) -> Starlette:
    """The population database; basic auth is required on SOAP unless username is None; pushes
    from the hub are verified with `webhook_secrets`."""
    log = RequestLog()
    registered: dict[str, citizens.Citizen] = {}  # newborns recorded since start
    births: list[dict[str, Any]] = []
    webhooks = WebhookLog()
    pushes = WebhookReceiver(webhook_secrets, endpoint=WEBHOOK_PATH, log=webhooks)

    def authorised(request: Request) -> bool:
        if username is None:
            return True
        given = _basic_credentials(request.headers.get("authorization"))
        expected = f"{username}:{password or ''}".encode()
        return given is not None and hmac.compare_digest(
            f"{given[0]}:{given[1]}".encode(), expected
        )

    async def dan_cu(request: Request) -> Response:
        """SOAP endpoint of the population database."""
        if not authorised(request):
            return PlainTextResponse(
                "Unauthorized", 401, headers={"WWW-Authenticate": 'Basic realm="CSDLQG dan cu"'}
            )
        version = version_for(request.headers.get("content-type"))
        if version is None:
            return PlainTextResponse("Content-Type must be text/xml or application/soap+xml", 415)
        entry: dict[str, str | None] = {
            "soap_version": version.name,
            "soap_action": request.headers.get("soapaction") or _action_parameter(request),
            "x_road_client": request.headers.get("x-road-client"),
            "x_request_id": request.headers.get("x-request-id"),
            "operation": None,
            "ma_yeu_cau": None,
            "ma_loi": None,
        }
        try:
            operation = parse_operation(await request.body(), version, bad_input=INVALID_DATA)
            entry["operation"] = local_name(operation.tag)
            entry["ma_yeu_cau"] = child_text(operation, "MaYeuCau", NAMESPACE)
            answer = _dispatch(operation, client=entry["x_road_client"], registered=registered)
        except SoapFault as fault:
            entry["ma_loi"] = fault.ma_loi
            log.record(**entry)
            return _soap(version, fault_element(version, fault, detail_namespace=NAMESPACE), 500)
        log.record(**entry)
        return _soap(version, answer, 200)

    def record_birth(delivery: Delivery) -> dict[str, Any]:
        child = _newborn(delivery.value, registered)
        number = child.so_dinh_danh
        if citizens.find(number) is not None or number in registered:
            return {"SoDinhDanh": number, "created": False}  # known already: nothing to add
        registered[number] = child
        births.append(
            {
                "so_dang_ky": delivery.value.get("so_dang_ky"),
                "so_dinh_danh": number,
                "ho_va_ten": child.ho_va_ten,
                "ngay_sinh": format_date(child.ngay_sinh),
                "noi_thuong_tru": child.noi_thuong_tru.ma_xa,
                "webhook_id": delivery.webhook_id,
                "recorded_at": format_timestamp(now_in_vietnam()),
            }
        )
        return {"SoDinhDanh": number, "created": True}

    async def birth_webhook(request: Request) -> Response:
        """Receive one birth registration pushed by the hub (topic civil.birth-registered)."""
        return await pushes.receive(request, record_birth)

    async def list_births(request: Request) -> Response:
        """Citizens created from birth registrations since start."""
        return JSONResponse(births)

    routes = [
        Route(PATH, dan_cu, methods=["POST"]),
        Route(WEBHOOK_PATH, birth_webhook, methods=["POST"]),
        Route("/_sim/khai-sinh", list_births, methods=["GET"]),
        HEALTH_ROUTE,
        *log.routes(),
        *webhooks.routes(),
    ]
    return Starlette(routes=routes, exception_handlers={Problem: problem_handler})


def _action_parameter(request: Request) -> str | None:
    """SOAP 1.2 names the action as a Content-Type parameter instead of a SOAPAction header."""
    for parameter in request.headers.get("content-type", "").split(";")[1:]:
        key, _, value = parameter.strip().partition("=")
        if key.lower() == "action":
            return value.strip('"')
    return None


def _dispatch(operation: Element, *, client: str | None, registered: Registered) -> Element:
    if not client:
        raise sender_fault(MISSING_CLIENT, "Thiếu tiêu đề X-Road-Client định danh hệ thống gọi")
    handler = OPERATIONS.get(local_name(operation.tag))
    if namespace_of(operation.tag) != NAMESPACE or handler is None:
        raise sender_fault(UNSUPPORTED_OPERATION, f"Thao tác không được hỗ trợ: {operation.tag}")
    return handler(operation, registered)


def _soap(version: SoapVersion, payload: Element, status: int) -> Response:
    body = envelope(version, payload, namespaces={PREFIX: NAMESPACE})
    media_type = f"{version.media_type}; charset=utf-8"
    return Response(body, status_code=status, headers={"content-type": media_type})


__all__ = ["NAMESPACE", "create_app"]
