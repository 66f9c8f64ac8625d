"""Declared properties and content models: a property the reader adds or drops, read against
the writer's model for it (open, closed, or partially open by additionalProperties and
patternProperties), and `required`."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import Any

from schemas.compatibility.context import Cx, all_compatible, detail
from schemas.compatibility.findings import Finding, Key
from schemas.compatibility.generate import POOL, Gen
from schemas.compatibility.model import (
    closed_for,
    governing,
    is_false,
    is_trivial,
    pattern_properties,
    properties,
    property_node,
    show,
    unevaluated,
)
from schemas.compatibility.scope import Conj, Part, flatten, json_equal, refers

Make = Callable[[Gen, Conj], Iterable[Any]]


def _default(r_parts: Iterable[Part], name: str) -> tuple[bool, Any]:
    for part in r_parts:
        schema = properties(part).get(name)
        if isinstance(schema, dict) and "default" in schema:
            return True, schema["default"]
    return False, None


def with_property(name: str, *, full: bool = False) -> Make:
    """Objects of the writer that carry `name`."""

    def make(gen: Gen, node: Conj) -> Iterator[Any]:
        for complete in (False, True) if full else (False,):
            yield gen.instance(node, kind="object", present=(name,), full=complete)
        for value in gen.samples(property_node(node, name), limit=8):
            yield set_value(gen.instance(node, kind="object", present=(name,)), name, value)

    return make


def without_property(name: str) -> Make:
    """Objects of the writer that lack `name`."""

    def make(gen: Gen, node: Conj) -> Iterator[Any]:
        yield gen.instance(node, kind="object", absent=(name,))
        yield gen.instance(node, kind="object", absent=(name,), full=True)

    return make


def valued(name: str, pool: Iterable[Any] = POOL) -> Make:
    """Objects of the writer whose `name` takes each value of the pool."""

    def make(gen: Gen, node: Conj) -> Iterator[Any]:
        base = gen.instance(node, kind="object", present=(name,))
        for value in (*pool, *gen.samples(property_node(node, name), limit=8)):
            yield set_value(base, name, value)

    return make


def chain(*makers: Make) -> Make:
    def make(gen: Gen, node: Conj) -> Iterator[Any]:
        for maker in makers:
            yield from maker(gen, node)

    return make


def set_value(base: Any, name: str, value: Any) -> Any:
    obj = dict(base) if isinstance(base, dict) else {}
    obj[name] = value
    return obj


def compare_properties(
    cx: Cx,
    w: Conj,
    r: Conj,
    part: Part,
    primary: bool,
    w_required: list[str],
    r_required: list[str],
    w_declared: list[str],
) -> list[Finding]:
    out: list[Finding] = []
    for name in properties(part):
        if name in w_declared and _unchanged(w, part, name):
            continue
        reader = flatten(part.child("properties", name))
        ptr = part.at("properties", name)
        if name in w_declared:
            out += cx.descend(w, Key(name), property_node(w, name), reader)
            continue
        out += _added(cx, w, part, name, reader, ptr, w_required, r_required)
    for name in w_declared:
        if name not in properties(part):
            out += _dropped(cx, w, r, part, primary, name, w_required)
    return out


def _unchanged(w: Conj, part: Part, name: str) -> bool:
    """Fast path: one writer part declaring the property exactly as the reader does, without
    references or pattern properties on either side (nothing else governs the value)."""
    if len(w) != 1 or not isinstance(w[0].schema, dict) or not isinstance(part.schema, dict):
        return False
    written = w[0].schema.get("properties", {})
    read = part.schema.get("properties", {})
    if not isinstance(written, dict) or not isinstance(read, dict):
        return False
    return (
        name in written
        and json_equal(written[name], read[name])
        and not refers(part.doc, read[name])
        and not pattern_properties(w[0])
        and not pattern_properties(part)
    )


def _added(
    cx: Cx,
    w: Conj,
    part: Part,
    name: str,
    reader: Conj,
    ptr: str,
    w_required: list[str],
    r_required: list[str],
) -> list[Finding]:
    writer = property_node(w, name)
    newly_required = name in r_required and name not in w_required
    has_default, default = _default((part,), name)
    fields = {"name": name, "default": show(default)}
    if not writer:
        if newly_required:
            rule = (
                "REQUIRED_PROPERTY_WITH_DEFAULT_ADDED_TO_OPEN_CONTENT_MODEL"
                if has_default
                else "REQUIRED_PROPERTY_ADDED_TO_OPEN_CONTENT_MODEL"
            )
            make = chain(without_property(name), valued(name)) if not has_default else valued(name)
        elif is_trivial(reader):
            rule, make = "PROPERTY_WITH_EMPTY_SCHEMA_ADDED_TO_OPEN_CONTENT_MODEL", valued(name)
        else:
            rule, make = "OPTIONAL_PROPERTY_ADDED_TO_OPEN_CONTENT_MODEL", valued(name)
        return [
            cx.emit(
                rule,
                w,
                reader_ptr=ptr,
                fields=fields,
                candidates=make,
                optional=not newly_required,
            )
        ]
    out: list[Finding] = []
    if not closed_for(w, name):
        nested = cx.descend(w, Key(name), writer, reader)
        covered = all_compatible(nested)
        out.append(
            cx.emit(
                "PROPERTY_ADDED_IS_COVERED_BY_PARTIALLY_OPEN_CONTENT_MODEL"
                if covered
                else "PROPERTY_ADDED_NOT_COVERED_BY_PARTIALLY_OPEN_CONTENT_MODEL",
                w,
                reader_ptr=ptr,
                fields={**fields, "detail": detail(nested)},
                nested=nested,
                optional=not newly_required,
            )
        )
    if newly_required:
        rule = (
            "REQUIRED_PROPERTY_WITH_DEFAULT_ADDED_TO_UNOPEN_CONTENT_MODEL"
            if has_default
            else "REQUIRED_PROPERTY_ADDED_TO_UNOPEN_CONTENT_MODEL"
        )
    else:
        rule = "OPTIONAL_PROPERTY_ADDED_TO_UNOPEN_CONTENT_MODEL"
    out.append(
        cx.emit(
            rule,
            w,
            reader_ptr=ptr,
            fields=fields,
            candidates=without_property(name),
            optional=not newly_required,
        )
    )
    return out


def _dropped(
    cx: Cx, w: Conj, r: Conj, part: Part, primary: bool, name: str, w_required: list[str]
) -> list[Finding]:
    writer_part = next(p for p in w if name in properties(p))
    wptr = writer_part.at("properties", name)
    writer = property_node(w, name)
    reader = governing(part, name)
    if reader is None and primary:
        reader = unevaluated(r, name) or None
    optional = name not in w_required
    fields = {"name": name}
    if reader is None:
        if not primary:
            return []
        return [
            cx.emit(
                "PROPERTY_REMOVED_FROM_OPEN_CONTENT_MODEL",
                w,
                reader_ptr=None,
                writer_ptr=wptr,
                fields=fields,
            )
        ]
    if any(p.schema is False for p in reader):
        rule = (
            "PROPERTY_WITH_FALSE_REMOVED_FROM_CLOSED_CONTENT_MODEL"
            if is_false(writer)
            else "PROPERTY_REMOVED_FROM_CLOSED_CONTENT_MODEL"
        )
        return [
            cx.emit(
                rule,
                w,
                reader_ptr=None,
                writer_ptr=wptr,
                fields=fields,
                candidates=with_property(name, full=True),
                optional=optional,
            )
        ]
    nested = cx.descend(w, Key(name), writer, reader)
    covered = all_compatible(nested)
    return [
        cx.emit(
            "PROPERTY_REMOVED_IS_COVERED_BY_PARTIALLY_OPEN_CONTENT_MODEL"
            if covered
            else "PROPERTY_REMOVED_NOT_COVERED_BY_PARTIALLY_OPEN_CONTENT_MODEL",
            w,
            reader_ptr=None,
            writer_ptr=wptr,
            fields={**fields, "detail": detail(nested)},
            nested=nested,
            optional=optional,
        )
    ]


def compare_required(
    cx: Cx,
    w: Conj,
    r: Conj,
    part: Part,
    w_required: list[str],
    w_declared: list[str],
    r_declared: list[str],
) -> list[Finding]:
    out: list[Finding] = []
    listed = part.get("required")
    if not isinstance(listed, list):
        return out
    for index, name in enumerate(listed):
        if not isinstance(name, str) or name in w_required:
            continue
        if name in r_declared and name not in w_declared:
            continue  # a new property: its content-model rule says it
        has_default, default = _default(r, name)
        out.append(
            cx.emit(
                "REQUIRED_ATTRIBUTE_WITH_DEFAULT_ADDED"
                if has_default
                else "REQUIRED_ATTRIBUTE_ADDED",
                w,
                reader_ptr=part.at("required", index),
                fields={"name": name, "default": show(default)},
                candidates=without_property(name),
            )
        )
    return out
