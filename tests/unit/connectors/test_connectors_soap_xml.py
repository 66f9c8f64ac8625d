"""Reading SOAP replies: hardened parsing, elements to JSON, faults of both versions."""

from __future__ import annotations

from xml.etree.ElementTree import Element

import pytest

from connectors.errors import UpstreamBadResponse
from connectors.soap.fault import fault_error, is_fault
from connectors.soap.xml import body_element, element_to_json, parse_xml

S11 = "http://schemas.xmlsoap.org/soap/envelope/"
S12 = "http://www.w3.org/2003/05/soap-envelope"


def first(xml: str) -> Element | None:
    root = parse_xml(xml.encode(), label="p", status=200)
    return body_element(root, label="p", status=200)


def test_elements_to_json_with_reverse_map_and_lists() -> None:
    element = first(
        f'<e:Envelope xmlns:e="{S11}"><e:Body><r:R xmlns:r="urn:r" '
        'xmlns:i="http://www.w3.org/2001/XMLSchema-instance">'
        "<r:HoTen>A</r:HoTen><r:Con><r:Ten>B</r:Ten></r:Con><r:Con><r:Ten>C</r:Ten></r:Con>"
        "<r:Trong/><r:Nil i:nil='true'/></r:R></e:Body></e:Envelope>"
    )
    assert element is not None
    assert element_to_json(element, {"HoTen": "ho_ten"}) == {
        "ho_ten": "A",
        "Con": [{"Ten": "B"}, {"Ten": "C"}],
        "Trong": "",
        "Nil": None,
    }


def test_empty_body() -> None:
    assert first(f'<e:Envelope xmlns:e="{S12}"><e:Body/></e:Envelope>') is None


@pytest.mark.parametrize(
    ("xml", "message"),
    [
        ("<a><b></a>", "malformed XML"),
        ('<!DOCTYPE a [<!ENTITY x "y">]><a>&x;</a>', "DTD"),
        ('<!DOCTYPE a SYSTEM "http://evil.example/x.dtd"><a/>', "DTD"),
        ("<Envelope/>", "not a SOAP envelope"),
        (f'<e:Envelope xmlns:e="{S11}"/>', "without a Body"),
    ],
)
def test_bad_replies(xml: str, message: str) -> None:
    with pytest.raises(UpstreamBadResponse, match=message):
        first(xml)


def test_depth_is_bounded() -> None:
    xml = f'<e:Envelope xmlns:e="{S11}"><e:Body>' + "<a>" * 200 + "x" + "</a>" * 200
    element = first(xml + "</e:Body></e:Envelope>")
    assert element is not None
    with pytest.raises(UpstreamBadResponse, match="nested too deeply"):
        element_to_json(element, {})


def test_soap11_fault_with_a_nested_detail_uses_the_fault_code() -> None:
    element = first(
        f'<e:Envelope xmlns:e="{S11}"><e:Body><e:Fault><faultcode>e:Server</faultcode>'
        "<faultstring>boom</faultstring><detail><Loi><Ma>1</Ma><MoTa>x</MoTa></Loi></detail>"
        "</e:Fault></e:Body></e:Envelope>"
    )
    assert element is not None
    assert is_fault(element)
    error = fault_error(element, fault_status={}, provider_status=500)
    assert (error.code, error.status, error.detail) == ("Server", 502, "boom")
    assert error.body == {"fault_code": "Server", "detail_code": None, "message": "boom"}


def test_soap12_fault_detail_code_maps_to_status() -> None:
    element = first(
        f'<e:Envelope xmlns:e="{S12}"><e:Body><e:Fault>'
        "<e:Code><e:Value>e:Sender</e:Value></e:Code>"
        "<e:Reason><e:Text>Sai tham so</e:Text></e:Reason>"
        "<e:Detail><m:MaLoi xmlns:m='urn:m'> TS-01 </m:MaLoi></e:Detail>"
        "</e:Fault></e:Body></e:Envelope>"
    )
    assert element is not None
    error = fault_error(element, fault_status={"TS-01": 400}, provider_status=400)
    assert (error.code, error.status, error.provider_status) == ("TS-01", 400, 400)
    assert error.body["fault_code"] == "Sender"
