"""The SOAP connector against real SOAP 1.1 and 1.2 endpoints on loopback."""

from __future__ import annotations

import asyncio
from typing import Any
from xml.etree import ElementTree as ET

import pytest

from connectors import UpstreamRequest, UpstreamResponse, create_connector
from connectors.errors import (
    ConnectorError,
    RequestNotMappable,
    SoapFault,
    UpstreamBadResponse,
    UpstreamOverloaded,
)
from registry.models import Route
from tests.integration.connectors.connector_upstreams import SOAP11, SOAP12, Provider, connector_row

NS = "urn:lgsp:dancu"


def soap_call(provider: Provider, version: str, route: Route, **kw: Any) -> UpstreamResponse:
    row = connector_row(
        provider.base_url, kind="soap", options={"namespace": NS, "soap_version": version}
    )
    req = UpstreamRequest(
        route=route,
        path_params=kw.get("path_params", {}),
        query=kw.get("query", []),
        body=kw.get("body"),
        headers=kw.get("headers", {}),
        response_schema=kw.get("response_schema"),
    )

    async def main() -> UpstreamResponse:
        connector = create_connector(row)
        try:
            return await connector.call(req)
        finally:
            await connector.aclose()

    return asyncio.run(main())


def soap_failure(provider: Provider, version: str, route: Route, **kw: Any) -> ConnectorError:
    with pytest.raises(ConnectorError) as info:
        soap_call(provider, version, route, **kw)
    return info.value


LOOKUP = Route(
    method="GET",
    path="/cong-dan/{so_dinh_danh}",
    upstream_path="/soap",
    operation="TraCuuCongDan",
    soap_action="urn:lgsp:dancu/TraCuuCongDan",
    field_map={"so_dinh_danh": "SoDinhDanh", "ho_ten": "HoTen", "dia_chi": "DiaChi"},
)


@pytest.mark.parametrize(
    ("version", "envelope_ns", "content_type"),
    [
        ("1.1", SOAP11, "text/xml; charset=utf-8"),
        (
            "1.2",
            SOAP12,
            'application/soap+xml; charset=utf-8; action="urn:lgsp:dancu/TraCuuCongDan"',
        ),
    ],
)
def test_request_envelope_and_echo(
    provider: Provider, version: str, envelope_ns: str, content_type: str
) -> None:
    answer = soap_call(
        provider,
        version,
        LOOKUP,
        path_params={"so_dinh_danh": "001203004567"},
        query=[("ky", "2024"), ("ky", "2025"), ("so_dinh_danh", "ignored")],
        body={
            "ho_ten": "Nguyễn <Văn> & A",
            "dia_chi": {"tinh": "Huế", "dong": ["1 Lê Lợi", "Phường 2"]},
            "con_song": True,
            "so_con": 2,
            "ghi_chu": None,
        },
        headers={"X-Request-Id": "req-9"},
    )
    sent = provider.state.requests["soap"][0]
    headers = sent["headers"]
    assert headers["content-type"] == content_type
    if version == "1.1":
        assert headers["soapaction"] == '"urn:lgsp:dancu/TraCuuCongDan"'
    else:
        assert "soapaction" not in headers
    assert headers["x-request-id"] == "req-9"

    envelope = ET.fromstring(sent["body"])
    assert envelope.tag == f"{{{envelope_ns}}}Envelope"
    operation = envelope.find(f"{{{envelope_ns}}}Body/{{{NS}}}TraCuuCongDan")
    assert operation is not None
    children = [(c.tag.split("}")[1], c.text) for c in operation]
    assert children == [
        ("SoDinhDanh", "001203004567"),
        ("ky", "2024"),
        ("ky", "2025"),
        ("HoTen", "Nguyễn <Văn> & A"),
        ("DiaChi", None),
        ("con_song", "true"),
        ("so_con", "2"),
    ]
    address = operation.find(f"{{{NS}}}DiaChi")
    assert address is not None
    assert [(c.tag.split("}")[1], c.text) for c in address] == [
        ("tinh", "Huế"),
        ("dong", "1 Lê Lợi"),
        ("dong", "Phường 2"),
    ]
    # The reply comes back through the field_map the other way, prefixes stripped.
    assert answer.status == 200
    assert answer.body == {
        "so_dinh_danh": "001203004567",
        "ky": ["2024", "2025"],
        "ho_ten": "Nguyễn <Văn> & A",
        "dia_chi": {"tinh": "Huế", "dong": ["1 Lê Lợi", "Phường 2"]},
        "con_song": "true",
        "so_con": "2",
    }


def test_schema_guided_coercion(provider: Provider) -> None:
    route = Route(
        method="GET",
        path="/tra-cuu",
        upstream_path="/soap-raw/list",
        operation="TraCuu",
        field_map={"ho_ten": "HoTen", "con_cai": "ConCai", "dia_chi": "DiaChi"},
    )
    schema = {
        "type": "object",
        "properties": {
            "ho_ten": {"type": "string"},
            "Tuoi": {"type": "integer"},
            "DaKetHon": {"type": "boolean"},
            "ThuNhap": {"type": "number"},
            "GhiChu": {"type": ["string", "null"]},
            "con_cai": {
                "type": "array",
                "items": {"type": "object", "properties": {"ho_ten": {"type": "string"}}},
            },
            "dia_chi": {"type": "array", "items": {"type": "string"}},
        },
    }
    assert soap_call(provider, "1.1", route, response_schema=schema).body == {
        "ho_ten": "Nguyễn Văn A",
        "Tuoi": 42,
        "DaKetHon": True,
        "ThuNhap": 12.5,
        "GhiChu": None,
        "con_cai": [{"ho_ten": "B"}],
        "dia_chi": ["1 Lê Lợi", "Huế"],
    }


def test_without_a_schema_leaves_stay_strings(provider: Provider) -> None:
    route = Route(method="GET", path="/x", upstream_path="/soap-raw/list", operation="TraCuu")
    body = soap_call(provider, "1.1", route).body
    assert body["Tuoi"] == "42"
    assert body["DaKetHon"] == "true"
    assert body["ConCai"] == {"HoTen": "B"}
    assert body["DiaChi"] == {"Dong": ["1 Lê Lợi", "Huế"]}


FAULT_NAMES = {
    "11": {"client": "Client", "server": "Server"},
    "12": {"client": "Sender", "server": "Receiver"},
}


@pytest.mark.parametrize("version", ["11", "12"])
@pytest.mark.parametrize(
    ("kind", "detail", "http_status", "fault_status", "expected_code", "expected_status"),
    [
        ("client", "-", 500, {}, None, 422),
        ("server", "-", 500, {}, None, 502),
        ("client", "CD-404", 500, {"CD-404": 404}, "CD-404", 404),
        ("client", "CD-409", 400, {"CD-404": 404}, "CD-409", 422),
        ("server", "-", 500, {"Receiver": 503, "Server": 503}, None, 503),
        ("client", "CD-1", 200, {}, "CD-1", 422),  # a fault under 200 is still a fault
    ],
)
def test_faults(
    provider: Provider,
    version: str,
    kind: str,
    detail: str,
    http_status: int,
    fault_status: dict[str, int],
    expected_code: str | None,
    expected_status: int,
) -> None:
    fault_code = FAULT_NAMES[version][kind]
    route = Route(
        method="GET",
        path="/x",
        upstream_path=f"/soap-fault/{version}/{fault_code}/{detail}/{http_status}",
        operation="TraCuu",
        fault_status=fault_status,
    )
    error = soap_failure(provider, "1.1" if version == "11" else "1.2", route)
    assert type(error) is SoapFault
    assert error.code == (expected_code or fault_code)
    assert error.status == expected_status
    assert error.provider_status == http_status
    assert error.detail == "Không tìm thấy công dân"
    assert error.body == {
        "fault_code": fault_code,
        "detail_code": expected_code,
        "message": "Không tìm thấy công dân",
    }
    assert error.attempts == 1  # Terminal, even on an idempotent route


@pytest.mark.parametrize("kind", ["xxe", "billion"])
def test_dtds_are_refused_without_expansion(provider: Provider, kind: str) -> None:
    route = Route(method="GET", path="/x", upstream_path=f"/soap-raw/{kind}", operation="R")
    error = soap_failure(provider, "1.1", route)
    assert type(error) is UpstreamBadResponse
    assert "DTD" in str(error)
    assert "root:" not in repr(vars(error))


def test_xml_that_is_not_an_envelope(provider: Provider) -> None:
    route = Route(method="GET", path="/x", upstream_path="/soap-raw/not-envelope", operation="R")
    error = soap_failure(provider, "1.1", route)
    assert type(error) is UpstreamBadResponse
    assert "not a SOAP envelope" in str(error)


def test_html_instead_of_soap(provider: Provider) -> None:
    route = Route(method="GET", path="/x", upstream_path="/html", operation="R")
    error = soap_failure(provider, "1.1", route)
    assert type(error) is UpstreamBadResponse
    assert "answered text/html, expected SOAP XML" in str(error)


def test_overloaded_soap_provider_is_retried(provider: Provider) -> None:
    route = Route(method="GET", path="/x", upstream_path="/flaky/s1/5/503", operation="R")
    error = soap_failure(provider, "1.2", route)
    assert type(error) is UpstreamOverloaded
    assert error.provider_status == 503
    assert error.attempts == 3


def test_unmappable_request_is_refused_before_sending(provider: Provider) -> None:
    error = soap_failure(provider, "1.1", LOOKUP, body={"bad name": 1})
    assert type(error) is RequestNotMappable
    assert provider.state.calls["soap"] == 0
