"""SOAP faults (1.1 faultcode/faultstring/detail, 1.2 Code/Reason/Detail) as SoapFault errors."""

from __future__ import annotations

from collections.abc import Mapping
from xml.etree.ElementTree import Element

from connectors.errors import SoapFault
from connectors.soap.config import CLIENT_FAULT_STATUS, SERVER_FAULT_STATUS, is_client_fault
from connectors.soap.xml import local_name

MAX_MESSAGE = 500


def _child(element: Element | None, name: str) -> Element | None:
    if element is None:
        return None
    for child in element:
        if local_name(child.tag) == name:
            return child
    return None


def _text(element: Element | None) -> str:
    return (element.text or "").strip() if element is not None else ""


def _detail_code(detail: Element | None) -> str | None:
    """The code of a detail holding one leaf, e.g. <detail><MaLoi>CD-404</MaLoi></detail>."""
    if detail is None or len(detail) != 1:
        return None
    only = detail[0]
    return _text(only) or None if len(only) == 0 else None


def is_fault(element: Element | None) -> bool:
    return element is not None and local_name(element.tag) == "Fault"


def fault_error(
    fault: Element, *, fault_status: Mapping[str, int], provider_status: int
) -> SoapFault:
    """The SoapFault for a Fault element of either version."""
    code_value = _child(fault, "faultcode")
    if code_value is not None:  # SOAP 1.1
        message = _text(_child(fault, "faultstring"))
        detail = _child(fault, "detail")
    else:  # SOAP 1.2
        code_value = _child(_child(fault, "Code"), "Value")
        message = _text(_child(_child(fault, "Reason"), "Text"))
        detail = _child(fault, "Detail")
    fault_code = _text(code_value).rpartition(":")[2] or "Server"
    detail_code = _detail_code(detail)
    code = detail_code or fault_code
    status = (
        (fault_status.get(detail_code) if detail_code else None)
        or fault_status.get(fault_code)
        or (CLIENT_FAULT_STATUS if is_client_fault(fault_code) else SERVER_FAULT_STATUS)
    )
    message = message[:MAX_MESSAGE] or f"the provider answered a SOAP fault ({fault_code})"
    return SoapFault(
        message,
        code=code,
        status=status,
        provider_status=provider_status,
        body={"fault_code": fault_code, "detail_code": detail_code, "message": message},
    )
