"""The population database simulator over real HTTP: SOAP 1.1 and 1.2, faults, hardening."""

from __future__ import annotations

import unicodedata
from collections.abc import Iterator
from xml.etree import ElementTree

import httpx
import pytest

from simulators import citizens
from simulators.population import NAMESPACE, create_app
from simulators.server import run_in_thread

SOAP11 = "http://schemas.xmlsoap.org/soap/envelope/"
SOAP12 = "http://www.w3.org/2003/05/soap-envelope"
CONTENT_TYPES = {SOAP11: "text/xml; charset=utf-8", SOAP12: "application/soap+xml; charset=utf-8"}
OFFICER = "012185000101"  # has rights
OFFICER_WITHOUT_RIGHTS = "012193000104"
AUTH = ("lgsp-laichau", "matkhau-demo")
DC = f"{{{NAMESPACE}}}"


@pytest.fixture(scope="module")
def base_url() -> Iterator[str]:
    with run_in_thread(create_app()) as url:
        yield url


@pytest.fixture
def client(base_url: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=base_url, auth=AUTH, timeout=10) as c:
        yield c


def envelope(soap_ns: str, operation: str, fields: dict[str, str], *, qualified: bool) -> str:
    tag = "dc:" if qualified else ""
    inner = "".join(f"<{tag}{k}>{v}</{tag}{k}>" for k, v in fields.items())
    return (
        f'<?xml version="1.0" encoding="utf-8"?>'
        f'<s:Envelope xmlns:s="{soap_ns}" xmlns:dc="{NAMESPACE}"><s:Header/><s:Body>'
        f"<dc:{operation}>{inner}</dc:{operation}></s:Body></s:Envelope>"
    )


def call(
    client: httpx.Client,
    operation: str,
    fields: dict[str, str],
    *,
    soap_ns: str = SOAP11,
    qualified: bool = False,
    headers: dict[str, str] | None = None,
) -> httpx.Response:
    sent = {
        "Content-Type": CONTENT_TYPES[soap_ns],
        "X-Road-Client": "VN/GOV/000.00.12.H12/LGSP",
        "X-Request-Id": "req-test",
    }
    if soap_ns == SOAP11:
        sent["SOAPAction"] = f'"{NAMESPACE}/{operation}"'
    sent.update(headers or {})
    body = envelope(soap_ns, operation, fields, qualified=qualified)
    return client.post("/ws/dan-cu", content=body.encode(), headers=sent)


def body_of(response: httpx.Response, soap_ns: str) -> ElementTree.Element:
    root = ElementTree.fromstring(response.content)
    assert root.tag == f"{{{soap_ns}}}Envelope"
    body = root.find(f"{{{soap_ns}}}Body")
    assert body is not None
    return body[0]


def lookup_fields(number: str, officer: str = OFFICER) -> dict[str, str]:
    return {"MaYeuCau": "YC-0001", "MaCanBo": officer, "SoDinhDanh": number}


def verify_fields(number: str, name: str, born: str) -> dict[str, str]:
    return {**lookup_fields(number), "HoVaTen": name, "NgaySinh": born}


@pytest.mark.parametrize("soap_ns", [SOAP11, SOAP12])
@pytest.mark.parametrize("qualified", [False, True])
def test_lookup_answers_in_the_callers_version(
    client: httpx.Client, soap_ns: str, qualified: bool
) -> None:
    person = citizens.citizens()[7]
    response = call(
        client,
        "TraCuuThongTinCongDan",
        lookup_fields(person.so_dinh_danh),
        soap_ns=soap_ns,
        qualified=qualified,
    )
    assert response.status_code == 200
    assert response.headers["content-type"].startswith(CONTENT_TYPES[soap_ns].split(";")[0])
    answer = body_of(response, soap_ns)
    assert answer.tag == f"{DC}TraCuuThongTinCongDanResponse"
    assert answer.findtext(f"{DC}MaYeuCau") == "YC-0001"
    record = answer.find(f"{DC}CongDan")
    assert record is not None
    assert record.findtext(f"{DC}SoDinhDanh") == person.so_dinh_danh
    assert record.findtext(f"{DC}HoVaTen") == person.ho_va_ten
    assert record.findtext(f"{DC}GioiTinh") == str(person.gioi_tinh)
    assert record.findtext(f"{DC}NgaySinh") == person.ngay_sinh.strftime("%Y%m%d")
    assert record.findtext(f"{DC}DanToc") == person.dan_toc
    assert record.findtext(f"{DC}QuocTich") == "VN"
    assert record.findtext(f"{DC}NoiThuongTru/{DC}MaTinh") == "12"
    assert record.findtext(f"{DC}NoiThuongTru/{DC}MaXa") == person.noi_thuong_tru.ma_xa
    assert record.findtext(f"{DC}NoiThuongTru/{DC}TenXa") == person.noi_thuong_tru.ten_xa


@pytest.mark.parametrize("soap_ns", [SOAP11, SOAP12])
def test_verify_says_true_for_a_match_written_differently(
    client: httpx.Client, soap_ns: str
) -> None:
    demo = citizens.demo_citizen()
    decomposed_upper = unicodedata.normalize("NFD", demo.ho_va_ten.upper())
    response = call(
        client,
        "XacThucThongTinCongDan",
        verify_fields(demo.so_dinh_danh, decomposed_upper, "19900517"),
        soap_ns=soap_ns,
    )
    assert response.status_code == 200
    answer = body_of(response, soap_ns)
    assert answer.tag == f"{DC}XacThucThongTinCongDanResponse"
    assert answer.findtext(f"{DC}KetQua") == "true"
    assert answer.find(f"{DC}LyDo") is None
    assert answer.find(f"{DC}CongDan") is None
    assert demo.ho_va_ten not in response.text


@pytest.mark.parametrize(
    ("name", "born"), [("Lò Văn Mình", "19900517"), ("Lò Văn Minh", "19900518")]
)
def test_verify_says_false_with_reason_on_mismatch(
    client: httpx.Client, name: str, born: str
) -> None:
    demo = citizens.demo_citizen()
    response = call(client, "XacThucThongTinCongDan", verify_fields(demo.so_dinh_danh, name, born))
    assert response.status_code == 200
    answer = body_of(response, SOAP11)
    assert answer.findtext(f"{DC}KetQua") == "false"
    assert answer.findtext(f"{DC}LyDo") == "KHONG_KHOP"
    assert demo.ho_va_ten not in response.text


FAULTS = [
    ("unknown number", "TraCuuThongTinCongDan", lookup_fields("012090999999"), "CD_KHONG_TON_TAI"),
    ("11 digits", "TraCuuThongTinCongDan", lookup_fields("01209000123"), "DU_LIEU_KHONG_HOP_LE"),
    ("letters", "TraCuuThongTinCongDan", lookup_fields("01209000123A"), "DU_LIEU_KHONG_HOP_LE"),
    (
        "officer without rights",
        "TraCuuThongTinCongDan",
        lookup_fields("012090001234", officer=OFFICER_WITHOUT_RIGHTS),
        "CB_KHONG_CO_QUYEN",
    ),
    (
        "not an officer",
        "TraCuuThongTinCongDan",
        lookup_fields("012090001234", officer="012090001234"),
        "CB_KHONG_CO_QUYEN",
    ),
    (
        "missing number",
        "TraCuuThongTinCongDan",
        {"MaYeuCau": "YC-0001", "MaCanBo": OFFICER},
        "DU_LIEU_KHONG_HOP_LE",
    ),
    (
        "missing birth date",
        "XacThucThongTinCongDan",
        lookup_fields("012090001234") | {"HoVaTen": "Lò Văn Minh"},
        "DU_LIEU_KHONG_HOP_LE",
    ),
    (
        "bad birth date",
        "XacThucThongTinCongDan",
        verify_fields("012090001234", "Lò Văn Minh", "1990-05-17"),
        "DU_LIEU_KHONG_HOP_LE",
    ),
    (
        "verify unknown number",
        "XacThucThongTinCongDan",
        verify_fields("012090999999", "Lò Văn Minh", "19900517"),
        "CD_KHONG_TON_TAI",
    ),
    ("unknown operation", "XoaCongDan", lookup_fields("012090001234"), "THAO_TAC_KHONG_HO_TRO"),
]


@pytest.mark.parametrize(
    ("case", "operation", "fields", "ma_loi"), FAULTS, ids=[f[0] for f in FAULTS]
)
def test_soap11_client_faults(
    client: httpx.Client, case: str, operation: str, fields: dict[str, str], ma_loi: str
) -> None:
    response = call(client, operation, fields, soap_ns=SOAP11)
    assert response.status_code == 500
    assert response.headers["content-type"].startswith("text/xml")
    assert_soap11_fault(response, ma_loi)


@pytest.mark.parametrize(
    ("case", "operation", "fields", "ma_loi"), FAULTS, ids=[f[0] for f in FAULTS]
)
def test_soap12_sender_faults(
    client: httpx.Client, case: str, operation: str, fields: dict[str, str], ma_loi: str
) -> None:
    response = call(client, operation, fields, soap_ns=SOAP12)
    assert response.status_code == 500
    assert response.headers["content-type"].startswith("application/soap+xml")
    assert_soap12_fault(response, ma_loi)


def assert_soap11_fault(response: httpx.Response, ma_loi: str) -> None:
    fault = body_of(response, SOAP11)
    assert fault.tag == f"{{{SOAP11}}}Fault"
    assert fault.findtext("faultcode") == "soap:Client"
    assert fault.findtext("faultstring")
    assert fault.findtext(f"detail/{DC}MaLoi") == ma_loi
    assert fault.find(f"{{{SOAP12}}}Code") is None


def assert_soap12_fault(response: httpx.Response, ma_loi: str) -> None:
    env = f"{{{SOAP12}}}"
    fault = body_of(response, SOAP12)
    assert fault.tag == f"{env}Fault"
    assert fault.findtext(f"{env}Code/{env}Value") == "env:Sender"
    text = fault.find(f"{env}Reason/{env}Text")
    assert text is not None
    assert text.text
    assert text.get("{http://www.w3.org/XML/1998/namespace}lang") == "vi"
    assert fault.findtext(f"{env}Detail/{DC}MaLoi") == ma_loi
    assert fault.find("faultcode") is None


@pytest.mark.parametrize("soap_ns", [SOAP11, SOAP12])
def test_missing_x_road_client_is_a_client_fault(client: httpx.Client, soap_ns: str) -> None:
    body = envelope(
        soap_ns, "TraCuuThongTinCongDan", lookup_fields("012090001234"), qualified=False
    )
    response = client.post(
        "/ws/dan-cu", content=body.encode(), headers={"Content-Type": CONTENT_TYPES[soap_ns]}
    )
    assert response.status_code == 500
    if soap_ns == SOAP11:
        assert_soap11_fault(response, "THIEU_X_ROAD_CLIENT")
    else:
        assert_soap12_fault(response, "THIEU_X_ROAD_CLIENT")


def test_non_xml_body_is_a_client_fault(client: httpx.Client) -> None:
    response = client.post(
        "/ws/dan-cu",
        content=b"{not xml}",
        headers={"Content-Type": "text/xml", "X-Road-Client": "x"},
    )
    assert response.status_code == 500
    assert_soap11_fault(response, "DU_LIEU_KHONG_HOP_LE")


def test_envelope_version_must_match_the_content_type(client: httpx.Client) -> None:
    body = envelope(SOAP11, "TraCuuThongTinCongDan", lookup_fields("012090001234"), qualified=False)
    response = client.post(
        "/ws/dan-cu",
        content=body.encode(),
        headers={"Content-Type": CONTENT_TYPES[SOAP12], "X-Road-Client": "x"},
    )
    assert response.status_code == 500
    fault = body_of(response, SOAP12)
    assert fault.findtext(f"{{{SOAP12}}}Code/{{{SOAP12}}}Value") == "env:VersionMismatch"


BILLION_LAUGHS = (
    '<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">'
    + "".join(
        f'<!ENTITY lol{i} "{("&lol" + str(i - 1) + ";") * 10 if i > 1 else "&lol;" * 10}">'
        for i in range(1, 10)
    )
    + f']><s:Envelope xmlns:s="{SOAP11}" xmlns:dc="{NAMESPACE}"><s:Body>'
    "<dc:TraCuuThongTinCongDan><MaYeuCau>&lol9;</MaYeuCau><MaCanBo>012185000101</MaCanBo>"
    "<SoDinhDanh>012090001234</SoDinhDanh></dc:TraCuuThongTinCongDan></s:Body></s:Envelope>"
)
XXE = (
    '<?xml version="1.0"?><!DOCTYPE r [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>'
    f'<s:Envelope xmlns:s="{SOAP11}" xmlns:dc="{NAMESPACE}"><s:Body>'
    "<dc:TraCuuThongTinCongDan><MaYeuCau>&xxe;</MaYeuCau><MaCanBo>012185000101</MaCanBo>"
    "<SoDinhDanh>012090001234</SoDinhDanh></dc:TraCuuThongTinCongDan></s:Body></s:Envelope>"
)


@pytest.mark.parametrize("payload", [BILLION_LAUGHS, XXE], ids=["billion-laughs", "xxe"])
def test_entity_payloads_are_refused_without_expansion(client: httpx.Client, payload: str) -> None:
    response = client.post(
        "/ws/dan-cu",
        content=payload.encode(),
        headers={"Content-Type": "text/xml", "X-Road-Client": "attacker"},
    )
    assert response.status_code == 500
    assert_soap11_fault(response, "DU_LIEU_KHONG_HOP_LE")
    assert "lollol" not in response.text
    assert "root:" not in response.text
    assert len(response.content) < 2000


@pytest.mark.parametrize(
    "auth", [None, ("lgsp-laichau", "sai-mat-khau"), ("ke-la", "matkhau-demo")], ids=str
)
def test_bad_basic_auth_is_http_401_not_a_fault(
    base_url: str, auth: tuple[str, str] | None
) -> None:
    with httpx.Client(base_url=base_url, auth=auth, timeout=10) as anonymous:
        response = call(anonymous, "TraCuuThongTinCongDan", lookup_fields("012090001234"))
    assert response.status_code == 401
    assert response.headers["www-authenticate"].startswith("Basic ")
    assert "Fault" not in response.text


def test_auth_can_be_turned_off() -> None:
    with (
        run_in_thread(create_app(username=None)) as url,
        httpx.Client(base_url=url, timeout=10) as open_client,
    ):
        response = call(open_client, "TraCuuThongTinCongDan", lookup_fields("012090001234"))
    assert response.status_code == 200


def test_received_requests_are_recorded(client: httpx.Client) -> None:
    client.delete("/_sim/requests")
    call(
        client,
        "TraCuuThongTinCongDan",
        lookup_fields("012090001234") | {"MaYeuCau": "YC-GHI-LAI"},
        headers={"X-Request-Id": "rid-42", "X-Road-Client": "VN/GOV/000.00.12.H12/LGSP"},
    )
    call(client, "TraCuuThongTinCongDan", lookup_fields("012090999999"), soap_ns=SOAP12)
    log = client.get("/_sim/requests").json()
    assert [entry["operation"] for entry in log] == ["TraCuuThongTinCongDan"] * 2
    first, second = log
    assert first["ma_yeu_cau"] == "YC-GHI-LAI"
    assert first["x_request_id"] == "rid-42"
    assert first["x_road_client"] == "VN/GOV/000.00.12.H12/LGSP"
    assert first["soap_version"] == "1.1"
    assert first["ma_loi"] is None
    assert second["soap_version"] == "1.2"
    assert second["ma_loi"] == "CD_KHONG_TON_TAI"


def test_healthz(client: httpx.Client) -> None:
    assert client.get("/healthz").json() == {"status": "ok"}


def test_unsupported_content_type_is_415(client: httpx.Client) -> None:
    response = client.post("/ws/dan-cu", json={}, headers={"X-Road-Client": "x"})
    assert response.status_code == 415
