"""The national population database (CSDLQG về dân cư): SOAP 1.1/1.2 at POST /ws/dan-cu."""

from __future__ import annotations

import base64
import binascii
import hmac
import unicodedata
from xml.etree.ElementTree import Element

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from simulators import citizens
from simulators.formats import format_date, parse_date
from simulators.personal_id import is_well_formed
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
from simulators.web import HEALTH_ROUTE, RequestLog

NAMESPACE = "urn:vn:gov:csdlqgvdc:dancu:1.0"
PREFIX = "dc"
PATH = "/ws/dan-cu"

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


def _citizen(so_dinh_danh: str) -> citizens.Citizen:
    if not is_well_formed(so_dinh_danh):
        raise sender_fault(INVALID_DATA, "SoDinhDanh phải gồm đúng 12 chữ số")
    found = citizens.find(so_dinh_danh)
    if found is None:
        raise sender_fault(CITIZEN_NOT_FOUND, "Không tìm thấy công dân với số định danh đã cho")
    return found


def _same_name(left: str, right: str) -> bool:
    def canonical(name: str) -> str:
        return " ".join(unicodedata.normalize("NFC", name).casefold().split())

    return canonical(left) == canonical(right)


def lookup(operation: Element) -> Element:
    """TraCuuThongTinCongDan: the citizen's record."""
    fields = _required(operation, "MaYeuCau", "MaCanBo", "SoDinhDanh")
    _authorise_officer(fields["MaCanBo"])
    person = _citizen(fields["SoDinhDanh"])
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


def verify(operation: Element) -> Element:
    """XacThucThongTinCongDan: yes or no, never the record."""
    fields = _required(operation, "MaYeuCau", "MaCanBo", "SoDinhDanh", "HoVaTen", "NgaySinh")
    _authorise_officer(fields["MaCanBo"])
    born = parse_date(fields["NgaySinh"])
    if born is None:
        raise sender_fault(INVALID_DATA, "NgaySinh phải có dạng yyyyMMdd")
    person = _citizen(fields["SoDinhDanh"])
    matches = person.ngay_sinh == born and _same_name(person.ho_va_ten, fields["HoVaTen"])
    answer = Element(_q(f"{VERIFY}Response"))
    child(answer, _q("MaYeuCau"), fields["MaYeuCau"])
    child(answer, _q("KetQua"), "true" if matches else "false")
    if not matches:
        child(answer, _q("LyDo"), MISMATCH)
    return answer


OPERATIONS = {LOOKUP: lookup, VERIFY: verify}


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
    *, username: str | None = "lgsp-laichau", password: str | None = "matkhau-demo"
) -> Starlette:
    """The population database; basic auth is required unless username is None."""
    log = RequestLog()

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
            answer = _dispatch(operation, client=entry["x_road_client"])
        except SoapFault as fault:
            entry["ma_loi"] = fault.ma_loi
            log.record(**entry)
            return _soap(version, fault_element(version, fault, detail_namespace=NAMESPACE), 500)
        log.record(**entry)
        return _soap(version, answer, 200)

    return Starlette(
        routes=[Route(PATH, dan_cu, methods=["POST"]), HEALTH_ROUTE, *log.routes()],
    )


def _action_parameter(request: Request) -> str | None:
    """SOAP 1.2 names the action as a Content-Type parameter instead of a SOAPAction header."""
    for parameter in request.headers.get("content-type", "").split(";")[1:]:
        key, _, value = parameter.strip().partition("=")
        if key.lower() == "action":
            return value.strip('"')
    return None


def _dispatch(operation: Element, *, client: str | None) -> Element:
    if not client:
        raise sender_fault(MISSING_CLIENT, "Thiếu tiêu đề X-Road-Client định danh hệ thống gọi")
    handler = OPERATIONS.get(local_name(operation.tag))
    if namespace_of(operation.tag) != NAMESPACE or handler is None:
        raise sender_fault(UNSUPPORTED_OPERATION, f"Thao tác không được hỗ trợ: {operation.tag}")
    return handler(operation)


def _soap(version: SoapVersion, payload: Element, status: int) -> Response:
    body = envelope(version, payload, namespaces={PREFIX: NAMESPACE})
    media_type = f"{version.media_type}; charset=utf-8"
    return Response(body, status_code=status, headers={"content-type": media_type})


__all__ = ["NAMESPACE", "create_app"]
