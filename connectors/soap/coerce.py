"""Schema-guided typing of a SOAP reply: XML leaves are strings until the response schema says
otherwise (boolean, integer, number, null), and a lone element becomes a one-item array where
the schema expects an array. Without a schema, or where it says nothing, values stay as they are;
a value that does not convert is left for the response validation to report.
"""

from __future__ import annotations

import re
from typing import Any

from registry.types import resolve_pointer

_INTEGER = re.compile(r"^[+-]?\d+$")
_NUMBER = re.compile(r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$")
_TRUE = frozenset({"true", "1"})
_FALSE = frozenset({"false", "0"})


MAX_REF_HOPS = 16


def _resolve(schema: Any, root: Any) -> dict[str, Any] | None:
    """The schema with local $refs followed; None where there is nothing usable."""
    for _ in range(MAX_REF_HOPS):  # a cycle of refs gives up
        ref = schema.get("$ref") if isinstance(schema, dict) else None
        if not (isinstance(ref, str) and ref.startswith("#")):
            break
        schema = resolve_pointer(root, ref[1:])
    if not isinstance(schema, dict) or "$ref" in schema:
        return None
    return schema


def coerce(value: Any, schema: Any, root: Any = None) -> Any:
    """`value` converted where `schema` (a JSON Schema object) asks for a type."""
    root = schema if root is None else root
    schema = _resolve(schema, root)
    if schema is None:
        return value
    types = _types(schema)
    if value is None or not types:
        return value
    if "array" in types:
        return _array(value, schema, root)
    if "object" in types and isinstance(value, dict):
        return _object(value, schema, root)
    if isinstance(value, str):
        return _scalar(value, types)
    return value


def _types(schema: dict[str, Any]) -> tuple[str, ...]:
    declared = schema.get("type")
    if isinstance(declared, str):
        return (declared,)
    if isinstance(declared, list):
        return tuple(t for t in declared if isinstance(t, str))
    if "properties" in schema or "additionalProperties" in schema:
        return ("object",)
    if "items" in schema:
        return ("array",)
    return ()


def _object(value: dict[str, Any], schema: dict[str, Any], root: Any) -> dict[str, Any]:
    properties = schema.get("properties")
    properties = properties if isinstance(properties, dict) else {}
    extra = schema.get("additionalProperties")
    return {key: coerce(item, properties.get(key, extra), root) for key, item in value.items()}


def _array(value: Any, schema: dict[str, Any], root: Any) -> Any:
    items = _resolve(schema.get("items"), root)
    if isinstance(value, str) and value == "":
        return []  # <DanhSach/>: an empty list
    if isinstance(value, dict) and len(value) == 1:
        # <DanhSach><Item>…</Item></DanhSach>: the wrapper's one child repeats the items. Unless
        # the items are objects and this is one of them: it declares the name, or the child
        # is a plain value where an object was expected.
        ((name, inner),) = value.items()
        if items is None or "object" not in _types(items):
            value = inner
        else:
            props = items.get("properties")
            declared = isinstance(props, dict) and name in props
            if not declared and isinstance(inner, dict | list):
                value = inner
    if not isinstance(value, list):
        value = [value]
    return [coerce(item, items, root) for item in value]


def _scalar(value: str, types: tuple[str, ...]) -> Any:
    text = value.strip()
    for kind in types:
        if kind == "boolean":
            if text.lower() in _TRUE:
                return True
            if text.lower() in _FALSE:
                return False
        elif kind == "integer" and _INTEGER.match(text):
            return int(text)
        elif kind == "number" and _NUMBER.match(text):
            return int(text) if _INTEGER.match(text) else float(text)
        elif kind == "string":
            return value
        elif kind == "null" and text == "":
            return None
    return value
