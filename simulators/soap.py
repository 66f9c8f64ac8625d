"""SOAP 1.1 and 1.2 envelopes: hardened parsing, responses and faults in the caller's version."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from xml.etree.ElementTree import Element, ParseError
from xml.sax.saxutils import escape, quoteattr

import defusedxml.ElementTree as safe_xml
from defusedxml import DefusedXmlException

XML_NS = "http://www.w3.org/XML/1998/namespace"


@dataclass(frozen=True, slots=True)
class SoapVersion:
    """What differs between SOAP 1.1 and 1.2 on the wire."""

    name: str
    namespace: str
    media_type: str
    prefix: str
    sender: str  # fault code when the caller is at fault
    receiver: str  # fault code when the provider is at fault


SOAP11 = SoapVersion(
    "1.1", "http://schemas.xmlsoap.org/soap/envelope/", "text/xml", "soap", "Client", "Server"
)
SOAP12 = SoapVersion(
    "1.2",
    "http://www.w3.org/2003/05/soap-envelope",
    "application/soap+xml",
    "env",
    "Sender",
    "Receiver",
)


class SoapFault(Exception):
    """A fault to answer with; `code` is "sender", "receiver" or "version"."""

    def __init__(self, code: str, ma_loi: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.ma_loi = ma_loi
        self.message = message


def sender_fault(ma_loi: str, message: str) -> SoapFault:
    return SoapFault("sender", ma_loi, message)


def version_for(content_type: str | None) -> SoapVersion | None:
    """The SOAP version a Content-Type announces, or None when it is neither."""
    media_type = (content_type or "").split(";", 1)[0].strip().lower()
    return {SOAP11.media_type: SOAP11, SOAP12.media_type: SOAP12}.get(media_type)


def local_name(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def namespace_of(tag: str) -> str:
    return tag[1:].split("}", 1)[0] if tag.startswith("{") else ""


def parse_operation(body: bytes, version: SoapVersion, *, bad_input: str) -> Element:
    """The first element inside the envelope's Body; DTDs and entities are refused, not expanded."""
    try:
        root: Element = safe_xml.fromstring(
            body, forbid_dtd=True, forbid_entities=True, forbid_external=True
        )
    except DefusedXmlException as exc:
        raise sender_fault(
            bad_input, f"XML bị từ chối (DTD/thực thể không được phép): {exc}"
        ) from exc
    except ParseError as exc:
        raise sender_fault(bad_input, f"Nội dung không phải XML hợp lệ: {exc}") from exc
    if local_name(root.tag) != "Envelope" or namespace_of(root.tag) not in (
        SOAP11.namespace,
        SOAP12.namespace,
    ):
        raise sender_fault(bad_input, "Phần tử gốc phải là soap Envelope")
    if namespace_of(root.tag) != version.namespace:
        raise SoapFault("version", bad_input, "Phiên bản SOAP không khớp với Content-Type")
    soap_body = root.find(f"{{{version.namespace}}}Body")
    if soap_body is None or len(soap_body) == 0:
        raise sender_fault(bad_input, "Envelope thiếu Body hoặc Body rỗng")
    return soap_body[0]


def child_text(parent: Element, name: str, namespace: str) -> str | None:
    """Text of the child called `name`, unqualified or in `namespace`; None when absent or blank."""
    for child in parent:
        if child.tag in (name, f"{{{namespace}}}{name}"):
            text = (child.text or "").strip()
            return text or None
    return None


def child(parent: Element, tag: str, text: str | None = None) -> Element:
    element = Element(tag)
    element.text = text
    parent.append(element)
    return element


def _render(element: Element, prefixes: Mapping[str, str]) -> str:
    def name(tag: str) -> str:
        namespace = namespace_of(tag)
        return f"{prefixes[namespace]}:{local_name(tag)}" if namespace else tag

    attributes = "".join(
        f" {name(key)}={quoteattr(value)}" for key, value in element.attrib.items()
    )
    inner = escape(element.text or "") + "".join(_render(c, prefixes) for c in element)
    return f"<{name(element.tag)}{attributes}>{inner}</{name(element.tag)}>"


def envelope(version: SoapVersion, payload: Element, *, namespaces: Mapping[str, str]) -> bytes:
    """A complete envelope around `payload`; `namespaces` maps prefix to URI for the payload."""
    prefixes = {version.namespace: version.prefix, XML_NS: "xml"}
    prefixes.update({uri: prefix for prefix, uri in namespaces.items()})
    declarations = "".join(
        f' xmlns:{prefix}="{uri}"' for uri, prefix in prefixes.items() if uri != XML_NS
    )
    env = version.prefix
    return (
        f'<?xml version="1.0" encoding="utf-8"?>'
        f"<{env}:Envelope{declarations}><{env}:Body>{_render(payload, prefixes)}"
        f"</{env}:Body></{env}:Envelope>"
    ).encode()


def fault_element(version: SoapVersion, fault: SoapFault, *, detail_namespace: str) -> Element:
    """The Fault element in the shape of `version`, with MaLoi in the detail."""
    ns = version.namespace
    code = {"sender": version.sender, "receiver": version.receiver}.get(
        fault.code, "VersionMismatch"
    )
    element = Element(f"{{{ns}}}Fault")
    if version is SOAP11:
        child(element, "faultcode", f"{version.prefix}:{code}")
        child(element, "faultstring", fault.message)
        detail = child(element, "detail")
    else:
        child(child(element, f"{{{ns}}}Code"), f"{{{ns}}}Value", f"{version.prefix}:{code}")
        reason = child(child(element, f"{{{ns}}}Reason"), f"{{{ns}}}Text", fault.message)
        reason.set(f"{{{XML_NS}}}lang", "vi")
        detail = child(element, f"{{{ns}}}Detail")
    child(detail, f"{{{detail_namespace}}}MaLoi", fault.ma_loi)
    return element
