"""Reading a provider's SOAP reply: a hardened parse, then elements to JSON.

The parser refuses any DTD (so no entity, internal or external, is ever expanded: no XXE, no
billion laughs). Child elements become keys (namespace prefixes stripped, names mapped back
through the route's field_map), repeated elements lists, leaves strings, xsi:nil elements null.
Attributes are not carried over. Types are the job of `coerce`, guided by the response schema.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from xml.etree.ElementTree import Element, ParseError

import defusedxml
from defusedxml.ElementTree import fromstring

from connectors.errors import UpstreamBadResponse
from connectors.soap.config import ENVELOPE_NAMESPACES

XSI_NIL = "{http://www.w3.org/2001/XMLSchema-instance}nil"
MAX_DEPTH = 100


def local_name(tag: str) -> str:
    return tag.rpartition("}")[2]


def namespace_of(tag: str) -> str:
    return tag[1:].partition("}")[0] if tag.startswith("{") else ""


def parse_xml(content: bytes, *, label: str, status: int) -> Element:
    """The document's root element; UpstreamBadResponse for malformed XML or any DTD."""
    try:
        root: Element = fromstring(content, forbid_dtd=True)
    except defusedxml.DefusedXmlException:
        raise UpstreamBadResponse(
            f"{label} answered XML with a DTD or entity declarations, which the hub refuses",
            provider_status=status,
        ) from None
    except ParseError as exc:
        raise UpstreamBadResponse(
            f"{label} answered malformed XML ({exc})", provider_status=status
        ) from None
    return root


def body_element(root: Element, *, label: str, status: int) -> Element | None:
    """The first element inside soap:Body (None for an empty Body)."""
    envelope_ns = namespace_of(root.tag)
    if local_name(root.tag) != "Envelope" or envelope_ns not in ENVELOPE_NAMESPACES:
        raise UpstreamBadResponse(
            f"{label} answered XML that is not a SOAP envelope", provider_status=status
        )
    body = root.find(f"{{{envelope_ns}}}Body")
    if body is None:
        raise UpstreamBadResponse(
            f"{label} answered a SOAP envelope without a Body", provider_status=status
        )
    return next(iter(body), None)


def is_leaf(element: Element) -> bool:
    return len(element) == 0


def element_to_json(element: Element, reverse_map: Mapping[str, str], depth: int = 0) -> Any:
    """A leaf's text (or None when xsi:nil), else an object of its children."""
    if depth > MAX_DEPTH:
        raise UpstreamBadResponse("the provider's reply is nested too deeply")
    if len(element) == 0:
        if element.get(XSI_NIL) in ("true", "1"):
            return None
        return element.text or ""
    out: dict[str, Any] = {}
    for child in element:
        name = local_name(child.tag)
        key = reverse_map.get(name, name)
        value = element_to_json(child, reverse_map, depth + 1)
        if key not in out:
            out[key] = value
        elif isinstance(previous := out[key], list):
            previous.append(value)
        else:
            out[key] = [previous, value]
    return out
