"""Objects: additional, unevaluated and pattern properties, property counts, dependencies and
property names (declared properties and `required` are in `properties`)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from schemas.compatibility import regex_sample
from schemas.compatibility.context import Cx, all_compatible
from schemas.compatibility.findings import Finding, Key
from schemas.compatibility.generate import MISSING, Gen
from schemas.compatibility.model import (
    closed_for,
    declared,
    declared_kinds,
    dependency_arrays,
    dependency_keyword,
    dependent_required,
    dependent_schemas,
    extra_name,
    governing,
    is_trivial,
    length_max,
    length_min,
    matches,
    owner,
    pattern_properties,
    primary_index,
    properties,
    property_node,
    required,
    requiring,
    show,
    tightest,
)
from schemas.compatibility.properties import (
    Make,
    chain,
    compare_properties,
    compare_required,
    set_value,
    valued,
)
from schemas.compatibility.scope import (
    Conj,
    Part,
    flatten,
    flatten_all,
    same,
)

NAMES = ("", "a", "A", "0", "_x", "é", "a b", "x" * 70, "A1", "$")


def compare(cx: Cx, w: Conj, r: Conj) -> list[Finding]:
    out: list[Finding] = []
    w_required, r_required = required(w), required(r)
    w_declared, r_declared = declared(w), declared(r)
    first = primary_index(r)
    for index, part in enumerate(r):
        if not _accepts_objects(part):
            continue
        primary = index == first
        out += compare_properties(cx, w, r, part, primary, w_required, r_required, w_declared)
        out += compare_required(cx, w, r, part, w_required, w_declared, r_declared)
        out += _open_model(cx, w, part, primary, "additionalProperties", "ADDITIONAL_PROPERTIES")
        out += _open_model(cx, w, part, primary, "unevaluatedProperties", "UNEVALUATED_PROPERTIES")
        out += _patterns(cx, w, part, primary)
        out += _counts(cx, w, part)
        out += _dependencies(cx, w, part)
        out += _names(cx, w, part)
    if r and not is_trivial(r):
        out += _removed(cx, w, r, w_required, r_required)
    return out


def _accepts_objects(part: Part) -> bool:
    if not isinstance(part.schema, dict):
        return False
    kinds = declared_kinds(part)
    return kinds is None or "object" in kinds


# --- properties ----------------------------------------------------------------------------


def _removed(
    cx: Cx, w: Conj, r: Conj, w_required: list[str], r_required: list[str]
) -> list[Finding]:
    out = []
    for name in w_required:
        if name in r_required:
            continue
        holder = next(p for p in w if name in (p.get("required") or []))
        out.append(
            cx.emit(
                "REQUIRED_ATTRIBUTE_REMOVED",
                w,
                reader_ptr=None,
                writer_ptr=holder.at("required", holder.get("required").index(name)),
                fields={"name": name},
            )
        )
    for keyword, prefix, upper in (
        ("maxProperties", "MAX_PROPERTIES", True),
        ("minProperties", "MIN_PROPERTIES", False),
    ):
        best = tightest(w, keyword, upper=upper)
        if best and (upper or best[0] > 0) and not any(p.has(keyword) for p in r):
            out.append(
                cx.emit(
                    f"{prefix}_REMOVED",
                    w,
                    reader_ptr=None,
                    writer_ptr=best[1].at(keyword),
                    fields={"w": int(best[0])},
                )
            )
    reader_arrays = {n for p in r for n in dependency_arrays(p)}
    reader_schemas = {n for p in r for n in dependent_schemas(p)}
    for part in w:
        keyword = dependency_keyword(part, schemas=False)
        for name, needs in dependency_arrays(part).items():
            if name not in reader_arrays:
                out.append(
                    cx.emit(
                        "DEPENDENCY_ARRAY_REMOVED",
                        w,
                        reader_ptr=None,
                        writer_ptr=part.at(keyword, name),
                        fields={"name": name, "w": show(needs)},
                    )
                )
        for name, dep in dependent_schemas(part).items():
            if name not in reader_schemas:
                out.append(
                    cx.emit(
                        "DEPENDENCY_SCHEMA_REMOVED",
                        w,
                        reader_ptr=None,
                        writer_ptr=dep.location,
                        fields={"name": name},
                    )
                )
        if part.has("propertyNames") and not any(p.has("propertyNames") for p in r):
            out.append(
                cx.emit(
                    "SCHEMA_REMOVED",
                    w,
                    reader_ptr=None,
                    writer_ptr=part.at("propertyNames"),
                    fields={"kw": "propertyNames"},
                )
            )
    return out


# --- additional, unevaluated and pattern properties ----------------------------------------


def _state(part: Part, keyword: str) -> tuple[str, Part | None]:
    if not part.has(keyword) or part.get(keyword) is True:
        return "open", None
    child = part.child(keyword)
    if child.schema is False:
        return "closed", None
    if is_trivial(flatten(child)):
        return "open", None
    return "schema", child


def _open_model(
    cx: Cx, w: Conj, part: Part, primary: bool, keyword: str, prefix: str
) -> list[Finding]:
    name = extra_name(w, (part,))
    w0 = owner(w, keyword)
    writer: Conj
    if keyword == "additionalProperties":
        # What the whole writer lets an undeclared property be.
        writer = property_node(w, name)
        ws = "open" if not writer else "closed" if closed_for(w, name) else "schema"
    else:
        ws, wschema = _state(w0, keyword)
        writer = flatten(wschema) if wschema is not None else ()
    rs, rschema = _state(part, keyword)
    if ws == rs == "open" or ws == rs == "closed" or (rs == "open" and not primary):
        return []
    wptr = w0.at(keyword) if w0.has(keyword) else None
    rptr = part.at(keyword) if part.has(keyword) else None
    if ws == "closed":
        return [cx.emit(f"{prefix}_ADDED", w, reader_ptr=rptr, writer_ptr=wptr)]
    if rs == "open":
        return [cx.emit(f"{prefix}_EXTENDED", w, reader_ptr=rptr, writer_ptr=wptr)]
    if rs == "closed":
        return [
            cx.emit(
                f"{prefix}_REMOVED",
                w,
                reader_ptr=rptr,
                writer_ptr=wptr,
                candidates=valued(name),
            )
        ]
    assert rschema is not None
    if ws == "open":
        return [
            cx.emit(
                f"{prefix}_NARROWED",
                w,
                reader_ptr=rptr,
                writer_ptr=wptr,
                candidates=valued(name),
            )
        ]
    label = "<additional property>" if keyword == "additionalProperties" else "<unevaluated>"
    return cx.descend(w, Key(name, label), writer, flatten(rschema))


def _sample_name(pattern: str, avoid: list[str]) -> str | None:
    for name in regex_sample.samples(pattern, count=6):
        if name not in avoid:
            return name
    return None


def _patterns(cx: Cx, w: Conj, part: Part, primary: bool) -> list[Finding]:
    out: list[Finding] = []
    w0 = owner(w, "patternProperties")
    written = pattern_properties(w0)
    read = pattern_properties(part)
    w_declared = declared(w)
    for pattern in read:
        ptr = part.at("patternProperties", pattern)
        reader = flatten(part.child("patternProperties", pattern))
        name = _sample_name(pattern, w_declared + list(properties(part)))
        if pattern in written:
            if name is not None:
                label = f"<property matching {pattern}>"
                out += cx.descend(w, Key(name, label), property_node(w, name), reader)
            continue
        hits = [n for n in w_declared if matches(pattern, n)]
        names = hits + ([name] if name is not None else [])
        nested: list[Finding] = []
        for each in names:
            if not closed_for(w, each):
                shown = None if each in hits else f"<property matching {pattern}>"
                nested += cx.descend(w, Key(each, shown), property_node(w, each), reader)
        out.append(
            cx.emit(
                "PATTERN_PROPERTY_ADDED",
                w,
                reader_ptr=ptr,
                fields={"r": show(pattern)},
                candidates=chain(*(valued(n) for n in names)),
                nested=nested,
                compatible=all_compatible(nested) if name is not None else None,
            )
        )
    if primary:
        for pattern in written:
            if pattern in read:
                continue
            name = _sample_name(pattern, w_declared)
            reader_node = governing(part, name) if name is not None else ()
            if name is not None and reader_node is None:
                verdict: bool | None = True
                nested = []
            elif name is not None and reader_node is not None:
                label = f"<property matching {pattern}>"
                nested = cx.descend(w, Key(name, label), property_node(w, name), reader_node)
                verdict = all_compatible(nested)
            else:
                verdict, nested = None, []
            out.append(
                cx.emit(
                    "PATTERN_PROPERTY_REMOVED",
                    w,
                    reader_ptr=None,
                    writer_ptr=w0.at("patternProperties", pattern),
                    fields={"w": show(pattern)},
                    nested=nested,
                    compatible=verdict,
                )
            )
    return out


# --- counts, dependencies, names -----------------------------------------------------------


def _counts(cx: Cx, w: Conj, part: Part) -> list[Finding]:
    out = []
    for keyword, prefix, upper in (
        ("maxProperties", "MAX_PROPERTIES", True),
        ("minProperties", "MIN_PROPERTIES", False),
    ):
        raw = part.get(keyword)
        if not isinstance(raw, int) or isinstance(raw, bool) or (not upper and raw <= 0):
            continue
        wv = length_max(w, keyword) if upper else (length_min(w, keyword) or None)
        best = tightest(w, keyword, upper=upper)
        if wv is None:
            rule = f"{prefix}_ADDED"
        elif raw == wv:
            continue
        elif raw > wv:
            rule = f"{prefix}_INCREASED"
        else:
            rule = f"{prefix}_DECREASED"

        def make(gen: Gen, node: Conj, raw: int = raw, upper: bool = upper) -> Iterator[Any]:
            sizes = range(raw + 1, raw + 4) if upper else range(raw - 1, max(raw - 4, -1), -1)
            for size in sizes:
                yield gen.instance(node, kind="object", n_props=size)

        out.append(
            cx.emit(
                rule,
                w,
                reader_ptr=part.at(keyword),
                writer_ptr=best[1].at(keyword) if best else None,
                fields={"w": wv if wv is not None else "", "r": raw},
                candidates=make,
            )
        )
    return out


def _dependencies(cx: Cx, w: Conj, part: Part) -> list[Finding]:
    out: list[Finding] = []
    written = dependent_required(w)
    keyword = dependency_keyword(part, schemas=False)
    for name, needs in dependency_arrays(part).items():
        have = written.get(name)
        ptr = part.at(keyword, name)
        fields = {"name": name, "r": show(needs), "w": show(have)}
        if have is None:
            rule, missing = "DEPENDENCY_ARRAY_ADDED", needs
        elif set(needs) == set(have):
            continue
        elif set(needs) > set(have):
            rule, missing = "DEPENDENCY_ARRAY_EXTENDED", [n for n in needs if n not in have]
        elif set(needs) < set(have):
            rule, missing = "DEPENDENCY_ARRAY_NARROWED", []
        else:
            rule, missing = "DEPENDENCY_ARRAY_CHANGED", [n for n in needs if n not in have]
        out.append(
            cx.emit(rule, w, reader_ptr=ptr, fields=fields, candidates=_lacking(name, missing))
        )
    for name, dep in dependent_schemas(part).items():
        mine = [d for p in w for n, d in dependent_schemas(p).items() if n == name]
        if any(same(d, dep) for d in mine):
            continue
        writer = (*w, requiring(name, w[0]), *flatten_all(tuple(mine)))
        nested = cx.sub(writer, flatten(dep))
        if mine:
            out += nested
            continue
        out.append(
            cx.emit(
                "DEPENDENCY_SCHEMA_ADDED",
                w,
                reader_ptr=dep.location,
                fields={"name": name},
                nested=nested,
                compatible=all_compatible(nested),
            )
        )
    return out


def _lacking(name: str, missing: list[str]) -> Make:
    def make(gen: Gen, node: Conj) -> Iterator[Any]:
        for full in (False, True):
            yield gen.instance(
                node, kind="object", present=(name,), absent=tuple(missing), full=full
            )

    return make


def _names(cx: Cx, w: Conj, part: Part) -> list[Finding]:
    if not part.has("propertyNames"):
        return []
    child = part.child("propertyNames")
    reader = flatten(child)
    mine = [p.child("propertyNames") for p in w if p.has("propertyNames")]
    if is_trivial(reader) or any(same(m, child) for m in mine):
        return []

    def make(gen: Gen, node: Conj) -> Iterator[Any]:
        yield gen.instance(node, kind="object", full=True)
        names = list(NAMES)
        if mine:
            names = [*gen.samples(flatten_all(tuple(mine)), limit=12), *names]
        for name in names:
            if isinstance(name, str):
                value = gen.instance(property_node(node, name))
                yield set_value(
                    gen.instance(node, kind="object"), name, None if value is MISSING else value
                )

    if not mine:
        return [
            cx.emit(
                "SCHEMA_ADDED",
                w,
                reader_ptr=part.at("propertyNames"),
                fields={"kw": "propertyNames"},
                candidates=make,
            )
        ]
    nested = cx.sub(flatten_all(tuple(mine)), reader)
    return [
        cx.emit(
            "PROPERTY_NAMES_CHANGED",
            w,
            reader_ptr=part.at("propertyNames"),
            candidates=make,
            compatible=True if all_compatible(nested) else None,
        )
    ]
