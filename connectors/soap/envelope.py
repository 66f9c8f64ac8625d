"""The request envelope: JSON fields to XML elements under the operation's element.

Field names go through the route's field_map (JSON name -> XML element name; unmapped names are
used as they are), objects become nested elements, lists repeated elements, booleans
"true"/"false", and null is left out. Names and text are checked and escaped here, so a
consumer's JSON can never inject markup.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from functools import lru_cache
from typing import Any
from xml.sax.saxutils import escape, quoteattr

from connectors.errors import RequestNotMappable
from connectors.soap.config import SoapVersion

# An XML name without a prefix (letters of any script, digits, '_', '-', '.').
_XML_NAME = re.compile(r"^[^\W\d][\w.-]*$")
# Characters XML 1.0 cannot carry at all (C0 controls other than tab/newline/return, U+FFFE/F).
_INVALID_CHARS = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")
MAX_DEPTH = 64


@lru_cache(maxsize=4096)
def _checked_name(name: str) -> str:
    if not _XML_NAME.match(name) or name.lower().startswith("xml"):
        raise RequestNotMappable(
            f"field {name[:60]!r} cannot be sent as an XML element name", request_sent=False
        )
    return name


def _text(value: str) -> str:
    if _INVALID_CHARS.search(value):
        raise RequestNotMappable(
            "a text value holds a control character XML cannot carry", request_sent=False
        )
    return escape(value)


def _append(
    out: list[str], name: str, value: Any, field_map: Mapping[str, str], depth: int
) -> None:
    if value is None:
        return
    if depth > MAX_DEPTH:
        raise RequestNotMappable("the request is nested too deeply", request_sent=False)
    if isinstance(value, list):
        for item in value:
            _append(out, name, item, field_map, depth + 1)
        return
    tag = _checked_name(field_map.get(name, name))
    if isinstance(value, dict):
        out.append(f"<{tag}>")
        for key, item in value.items():
            _append(out, key, item, field_map, depth + 1)
        out.append(f"</{tag}>")
    elif isinstance(value, bool):
        out.append(f"<{tag}>{'true' if value else 'false'}</{tag}>")
    elif isinstance(value, int | float):
        out.append(f"<{tag}>{value!r}</{tag}>")
    else:
        out.append(f"<{tag}>{_text(str(value))}</{tag}>")


def request_fields(
    path_params: Mapping[str, str], query: list[tuple[str, str]], body: Any
) -> dict[str, Any]:
    """Path parameters, then query parameters (repeated ones as lists), then the body's fields;
    a body field wins over a parameter of the same name."""
    fields: dict[str, Any] = dict(path_params)
    for key, value in query:
        if key in path_params:
            continue  # the path names the resource; a query parameter does not override it
        if key not in fields:
            fields[key] = value
        elif isinstance(previous := fields[key], list):
            previous.append(value)
        else:
            fields[key] = [previous, value]
    if body is None:
        return fields
    if not isinstance(body, dict):
        raise RequestNotMappable(
            "a SOAP operation takes a JSON object as its body", request_sent=False
        )
    fields.update(body)
    return fields


def build_envelope(
    version: SoapVersion,
    *,
    operation: str,
    namespace: str,
    fields: Mapping[str, Any],
    field_map: Mapping[str, str],
) -> bytes:
    """The whole SOAP envelope, UTF-8 encoded; children are qualified by the default namespace."""
    out = [
        '<?xml version="1.0" encoding="utf-8"?>',
        f'<soap:Envelope xmlns:soap="{version.envelope_ns}"><soap:Body>',
        f"<{_checked_name(operation)} xmlns={quoteattr(namespace)}>",
    ]
    for key, value in fields.items():
        _append(out, key, value, field_map, 1)
    out.append(f"</{operation}></soap:Body></soap:Envelope>")
    return "".join(out).encode("utf-8")
