"""The SOAP request envelope built from JSON."""

from __future__ import annotations

import pytest

from connectors.errors import RequestNotMappable
from connectors.soap.config import SOAP_11, SOAP_12
from connectors.soap.envelope import build_envelope, request_fields


def body(fields: dict[str, object], field_map: dict[str, str] | None = None) -> str:
    xml = build_envelope(
        SOAP_11, operation="Op", namespace="urn:x", fields=fields, field_map=field_map or {}
    ).decode()
    prefix = (
        '<?xml version="1.0" encoding="utf-8"?><soap:Envelope '
        'xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/"><soap:Body><Op xmlns="urn:x">'
    )
    assert xml.startswith(prefix)
    assert xml.endswith("</Op></soap:Body></soap:Envelope>")
    return xml[len(prefix) : -len("</Op></soap:Body></soap:Envelope>")]


def test_values_nesting_lists_and_nulls() -> None:
    xml = body(
        {
            "a": "x<&>y",
            "b": True,
            "c": False,
            "n": 1.5,
            "i": 7,
            "skip": None,
            "o": {"p": [1, 2], "q": {"r": "s"}},
            "empty": [],
        },
        {"a": "A", "p": "P"},
    )
    assert xml == (
        "<A>x&lt;&amp;&gt;y</A><b>true</b><c>false</c><n>1.5</n><i>7</i>"
        "<o><P>1</P><P>2</P><q><r>s</r></q></o>"
    )


def test_names_are_unicode_xml_names() -> None:
    assert body({"HọTên": "A"}) == "<HọTên>A</HọTên>"


@pytest.mark.parametrize("name", ["a b", "1abc", "a:b", "<x>", "xmlns", ""])
def test_names_that_are_not_xml_names_are_refused(name: str) -> None:
    with pytest.raises(RequestNotMappable):
        body({name: "v"})


def test_control_characters_are_refused() -> None:
    with pytest.raises(RequestNotMappable):
        body({"a": "bell\x07"})


def test_soap12_envelope_namespace() -> None:
    xml = build_envelope(SOAP_12, operation="Op", namespace='urn:"q"', fields={}, field_map={})
    assert b'xmlns:soap="http://www.w3.org/2003/05/soap-envelope"' in xml
    assert b"<Op xmlns='urn:\"q\"'></Op>" in xml


def test_headers_per_version() -> None:
    assert SOAP_11.request_headers("urn:a") == {
        "content-type": "text/xml; charset=utf-8",
        "soapaction": '"urn:a"',
    }
    assert SOAP_11.request_headers(None)["soapaction"] == '""'
    assert SOAP_12.request_headers("urn:a") == {
        "content-type": 'application/soap+xml; charset=utf-8; action="urn:a"'
    }
    assert SOAP_12.request_headers(None) == {"content-type": "application/soap+xml; charset=utf-8"}


def test_fields_path_then_query_then_body_which_wins() -> None:
    fields = request_fields(
        {"id": "1"},
        [("k", "a"), ("k", "b"), ("id", "evil"), ("x", "q")],
        {"x": "body", "y": 2},
    )
    assert fields == {"id": "1", "k": ["a", "b"], "x": "body", "y": 2}
    assert list(fields) == ["id", "k", "x", "y"]


def test_body_must_be_an_object() -> None:
    with pytest.raises(RequestNotMappable):
        request_fields({}, [], [1, 2])
