"""Keywords on one value: annotations, type, enum/const, string and number constraints, format."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator
from dataclasses import replace
from fractions import Fraction
from functools import lru_cache
from typing import Any

import jsonschema

from schemas.compatibility import format_samples
from schemas.compatibility.context import Cx
from schemas.compatibility.findings import Finding
from schemas.compatibility.generate import POOL, Gen
from schemas.compatibility.model import (
    KINDS,
    NUMBER,
    Bound,
    canonical,
    declared_conj,
    declared_kinds,
    integral,
    is_trivial,
    kind_of,
    length_max,
    length_min,
    lower,
    matches,
    multiples,
    number,
    part_lower,
    part_upper,
    part_values,
    show,
    show_kinds,
    tightest,
    upper,
    values,
    within_lower,
    within_upper,
)
from schemas.compatibility.scope import Conj, Part, json_equal

FINITE_LIMIT = 256  # writer values tested one by one against a reader keyword


def compare(cx: Cx, w: Conj, r: Conj, wk: frozenset[str]) -> list[Finding]:
    found = annotation_changes(cx, w, r)
    found += _types(cx, w, r, wk)
    found += _values(cx, w, r)
    if "string" in wk:
        found += _strings(cx, w, r)
    if wk & NUMBER:
        found += _numbers(cx, w, r, wk)
    return _finite(cx, w, found)


def accepts(part: Part, kinds: frozenset[str]) -> bool:
    if part.schema is False or not isinstance(part.schema, dict):
        return False
    declared = declared_kinds(part)
    return declared is None or bool(declared & kinds)


def _finite(cx: Cx, w: Conj, found: list[Finding]) -> list[Finding]:
    """When the writer only allows a few values, test each against the reader's keyword: a
    tighter bound that every allowed value meets is no break."""
    allowed = values(w)
    if allowed is None or len(allowed) > FINITE_LIMIT:
        return found
    out = []
    for finding in found:
        if finding.compatible is True or finding.probe is None:
            out.append(finding)
            continue
        refused = [v for v in allowed if not _passes(finding.probe, v)]
        if refused:
            out.append(replace(finding, candidates=_const(refused)))
        else:
            out.append(replace(finding, compatible=True))
    return out


def _passes(probe: Any, value: Any) -> bool:
    try:
        return bool(_probe(canonical(probe)).is_valid(value))
    except Exception:  # an invalid pattern: cannot tell, keep the finding
        return False


@lru_cache(maxsize=1024)
def _probe(key: str) -> Any:
    return jsonschema.Draft202012Validator(json.loads(key), format_checker=format_samples.checker())


def _const(items: list[Any]) -> Callable[[Gen, Conj], Iterable[Any]]:
    return lambda gen, node: list(items)


def _first_with(w: Conj, keyword: str) -> Part | None:
    return next((p for p in w if p.has(keyword)), None)


def _wptr(w: Conj, keyword: str) -> str | None:
    part = _first_with(w, keyword)
    return part.at(keyword) if part else None


# --- annotations and type ------------------------------------------------------------------

_ANNOTATION_RULES = (
    ("$id", "ID_CHANGED"),
    ("title", "TITLE_CHANGED"),
    ("description", "DESCRIPTION_CHANGED"),
    ("default", "DEFAULT_CHANGED"),
)


def annotation_changes(cx: Cx, w: Conj, r: Conj) -> list[Finding]:
    """title, description, default and $id of the two places (compatible either way)."""
    if not w or not r:
        return []
    w0, r0 = w[0], r[0]
    out = []
    for keyword, rule in _ANNOTATION_RULES:
        either = w0.has(keyword) or r0.has(keyword)
        both = w0.has(keyword) and r0.has(keyword)
        if not either or (both and json_equal(w0.get(keyword), r0.get(keyword))):
            continue
        out.append(
            cx.emit(
                rule,
                w,
                reader_ptr=r0.at(keyword) if r0.has(keyword) else None,
                writer_ptr=w0.at(keyword) if w0.has(keyword) else None,
                fields={"w": show(w0.get(keyword)), "r": show(r0.get(keyword))},
            )
        )
    return out


def _types(cx: Cx, w: Conj, r: Conj, wk: frozenset[str]) -> list[Finding]:
    out = []
    wd = declared_conj(w)
    reader_declares = False
    for part in r:
        pk = declared_kinds(part)
        if pk is None:
            continue
        reader_declares = True
        ptr = part.at("type") if part.has("type") else part.location
        if wk <= pk:
            if wd is not None and pk > wd:
                out.append(
                    cx.emit(
                        "TYPE_EXTENDED",
                        w,
                        reader_ptr=ptr,
                        writer_ptr=_wptr(w, "type"),
                        fields={"w": show_kinds(wd), "r": show_kinds(pk)},
                    )
                )
            continue
        lost = wk - pk
        out.append(
            cx.emit(
                "TYPE_NARROWED" if wk & pk else "TYPE_CHANGED",
                w,
                reader_ptr=ptr,
                writer_ptr=_wptr(w, "type"),
                fields={"w": show_kinds(wk), "r": show_kinds(pk), "lost": show_kinds(lost)},
                candidates=_of_kinds(lost),
                probe={"type": part.get("type")} if part.has("type") else False,
            )
        )
    if not reader_declares and wd is not None and wd != KINDS and not is_trivial(r):
        out.append(
            cx.emit(
                "TYPE_EXTENDED",
                w,
                reader_ptr=r[0].location,
                writer_ptr=_wptr(w, "type"),
                fields={"w": show_kinds(wd), "r": "any type"},
            )
        )
    return out


def _of_kinds(lost: frozenset[str]) -> Callable[[Gen, Conj], Iterable[Any]]:
    def make(gen: Gen, node: Conj) -> Iterator[Any]:
        for kind in sorted(lost):
            yield gen.instance(node, kind="number" if kind == "fraction" else kind)
            if kind == "fraction":
                yield from gen.numbers(node, integer=False)
        yield from (v for v in POOL if _kind_in(v, lost))

    return make


def _kind_in(value: Any, kinds: frozenset[str]) -> bool:
    return kind_of(value) in kinds


# --- enum and const ------------------------------------------------------------------------


def _values(cx: Cx, w: Conj, r: Conj) -> list[Finding]:
    out = []
    wv = values(w)
    wset = {canonical(v) for v in wv} if wv is not None else None
    writer_const = all(not p.has("enum") for p in w)
    reader_enumerates = False
    for part in r:
        rv = part_values(part)
        if rv is None or part.schema is False:
            continue
        reader_enumerates = True
        rset = {canonical(v) for v in rv}
        keyword = "const" if part.has("const") and not part.has("enum") else "enum"
        probe = {k: part.get(k) for k in ("const", "enum") if part.has(k)}
        shown = show(part.get(keyword))
        if wv is None or wset is None:
            out.append(
                cx.emit(
                    "CONST_ADDED" if keyword == "const" else "ENUM_ARRAY_ADDED",
                    w,
                    reader_ptr=part.at(keyword),
                    fields={"r": shown},
                    candidates=_outside(rset),
                    probe=probe,
                )
            )
            continue
        lost = [v for v in wv if canonical(v) not in rset]
        if not lost:
            if rset > wset:
                out.append(
                    cx.emit(
                        "ENUM_ARRAY_EXTENDED",
                        w,
                        reader_ptr=part.at(keyword),
                        writer_ptr=_wptr(w, "enum") or _wptr(w, "const"),
                        fields={"w": show(wv), "r": shown},
                    )
                )
            continue
        if keyword == "const" and writer_const:
            rule = "CONST_CHANGED"
        elif rset < wset:
            rule = "ENUM_ARRAY_NARROWED"
        else:
            rule = "ENUM_ARRAY_CHANGED"
        out.append(
            cx.emit(
                rule,
                w,
                reader_ptr=part.at(keyword),
                writer_ptr=_wptr(w, "enum") or _wptr(w, "const"),
                fields={
                    "w": show(wv[0] if rule == "CONST_CHANGED" else wv),
                    "r": shown,
                    "lost": show(lost),
                },
                candidates=_const(lost),
                probe=probe,
            )
        )
    if wv is not None and not reader_enumerates and not is_trivial(r):
        keyword = "const" if writer_const else "enum"
        out.append(
            cx.emit(
                "CONST_REMOVED" if writer_const else "ENUM_ARRAY_REMOVED",
                w,
                reader_ptr=None,
                writer_ptr=_wptr(w, keyword),
                fields={"w": show(wv if keyword == "enum" else wv[0] if wv else None)},
            )
        )
    return out


def _outside(allowed: set[str]) -> Callable[[Gen, Conj], Iterable[Any]]:
    def make(gen: Gen, node: Conj) -> Iterator[Any]:
        for value in gen.samples(node):
            if canonical(value) not in allowed:
                yield value
        yield from (v for v in POOL if canonical(v) not in allowed)

    return make


# --- strings -------------------------------------------------------------------------------


def _strings(cx: Cx, w: Conj, r: Conj) -> list[Finding]:
    out: list[Finding] = []
    readers = [p for p in r if accepts(p, frozenset({"string"}))]
    out += _lengths(cx, w, r, readers, "maxLength", "MAX_LENGTH", upper=True)
    out += _lengths(cx, w, r, readers, "minLength", "MIN_LENGTH", upper=False)
    out += _matching(cx, w, r, readers, "pattern", "PATTERN", _pattern_candidates)
    out += _matching(cx, w, r, readers, "format", "FORMAT", _format_candidates)
    return out


def _lengths(
    cx: Cx, w: Conj, r: Conj, readers: list[Part], keyword: str, prefix: str, *, upper: bool
) -> list[Finding]:
    out = []
    best = tightest(w, keyword, upper=upper)
    wv = int(best[0]) if best and (upper or best[0] > 0) else None
    wptr = best[1].at(keyword) if best and wv is not None else None
    present = False
    for part in readers:
        raw = number(part.get(keyword))
        if raw is None or (not upper and raw <= 0):
            continue
        present = True
        rv = int(raw)
        if wv is None:
            rule = f"{prefix}_ADDED"
        elif rv == wv:
            continue
        elif (rv > wv) == upper:
            rule = f"{prefix}_INCREASED" if upper else f"{prefix}_DECREASED"
        else:
            rule = f"{prefix}_DECREASED" if upper else f"{prefix}_INCREASED"
        out.append(
            cx.emit(
                rule,
                w,
                reader_ptr=part.at(keyword),
                writer_ptr=wptr,
                fields={"w": wv, "r": rv},
                candidates=_lengths_past(rv, upper),
                probe={keyword: rv},
            )
        )
    if wv is not None and not present and r and not is_trivial(r):
        out.append(
            cx.emit(f"{prefix}_REMOVED", w, reader_ptr=None, writer_ptr=wptr, fields={"w": wv})
        )
    return out


def _lengths_past(limit: int, upper: bool) -> Callable[[Gen, Conj], Iterable[Any]]:
    def make(gen: Gen, node: Conj) -> Iterator[Any]:
        sizes = range(limit + 1, limit + 6) if upper else range(limit - 1, max(limit - 6, -1), -1)
        for size in sizes:
            yield from _take(gen.strings(node, length=size), 2)
        if upper:
            top = length_max(node, "maxLength")
            if top is not None and top > limit:
                yield from _take(gen.strings(node, length=top), 2)
        else:
            yield from _take(gen.strings(node, length=length_min(node, "minLength")), 2)

    return make


def _take(items: Iterator[Any], count: int) -> Iterator[Any]:
    for index, item in enumerate(items):
        if index >= count:
            return
        yield item


def _matching(
    cx: Cx,
    w: Conj,
    r: Conj,
    readers: list[Part],
    keyword: str,
    prefix: str,
    make: Callable[[str], Callable[[Gen, Conj], Iterable[Any]]],
) -> list[Finding]:
    out = []
    written = [(p.get(keyword), p) for p in w if isinstance(p.get(keyword), str)]
    names = [value for value, _ in written]
    present: set[str] = set()
    for part in readers:
        value = part.get(keyword)
        if not isinstance(value, str):
            continue
        present.add(value)
        if value in names:
            continue
        out.append(
            cx.emit(
                f"{prefix}_CHANGED" if names else f"{prefix}_ADDED",
                w,
                reader_ptr=part.at(keyword),
                writer_ptr=written[0][1].at(keyword) if written else None,
                fields={"w": show(names[0]) if names else "", "r": show(value)},
                candidates=make(value),
                probe={keyword: value},
            )
        )
    if r and not is_trivial(r) and not present:
        for value, part in written:
            out.append(
                cx.emit(
                    f"{prefix}_REMOVED",
                    w,
                    reader_ptr=None,
                    writer_ptr=part.at(keyword),
                    fields={"w": show(value)},
                )
            )
    return out


GENERIC_STRINGS = ("", "a", "A", "0", "!", " ", "é", "aaaaaaaaaa", "0000000000", "a" * 100)


def _pattern_candidates(pattern: str) -> Callable[[Gen, Conj], Iterable[Any]]:
    def make(gen: Gen, node: Conj) -> Iterator[Any]:
        pool = [*_take(gen.strings(node), 24), *gen.samples(node, limit=12), *GENERIC_STRINGS]
        for value in pool:
            if isinstance(value, str) and not matches(pattern, value):
                yield value

    return make


def _format_candidates(name: str) -> Callable[[Gen, Conj], Iterable[Any]]:
    def make(gen: Gen, node: Conj) -> Iterator[Any]:
        pool = [*_take(gen.strings(node), 24), *gen.samples(node, limit=12), *GENERIC_STRINGS]
        for value in pool:
            if isinstance(value, str) and not format_samples.conforms(name, value):
                yield value

    return make


# --- numbers -------------------------------------------------------------------------------

_BOUNDS = (
    ("maximum", "MAXIMUM", True),
    ("exclusiveMaximum", "EXCLUSIVE_MAXIMUM", True),
    ("minimum", "MINIMUM", False),
    ("exclusiveMinimum", "EXCLUSIVE_MINIMUM", False),
)


def _numbers(cx: Cx, w: Conj, r: Conj, wk: frozenset[str]) -> list[Finding]:
    out: list[Finding] = []
    readers = [p for p in r if accepts(p, NUMBER)]
    integers_only = wk & NUMBER == frozenset({"integer"})
    w_upper, w_lower = upper(w), lower(w)
    if integers_only:
        w_upper = integral(w_upper, up=True) if w_upper else None
        w_lower = integral(w_lower, up=False) if w_lower else None
    for part in readers:
        r_upper, r_lower = part_upper(part), part_lower(part)
        upper_ok = within_upper(w_upper, r_upper)
        lower_ok = within_lower(w_lower, r_lower)
        for keyword, prefix, up in _BOUNDS:
            finding = _bound(cx, w, part, keyword, prefix, up, r_upper if up else r_lower, wk)
            if finding is None:
                continue
            if finding.compatible is False and (upper_ok if up else lower_ok):
                finding = replace(finding, compatible=True)
            out.append(finding)
        out += _multiple(cx, w, part, wk, integers_only)
    if r and not is_trivial(r):
        for keyword, prefix, up in _BOUNDS:
            best = tightest(w, keyword, upper=up)
            if best and not any(p.has(keyword) for p in r):
                out.append(
                    cx.emit(
                        f"{prefix}_REMOVED",
                        w,
                        reader_ptr=None,
                        writer_ptr=best[1].at(keyword),
                        fields={"w": _num(best[0])},
                    )
                )
        steps = multiples(w)
        if steps and not any(p.has("multipleOf") for p in r):
            out.append(
                cx.emit(
                    "MULTIPLE_OF_REMOVED",
                    w,
                    reader_ptr=None,
                    writer_ptr=steps[0][1].at("multipleOf"),
                    fields={"w": _num(steps[0][0])},
                )
            )
    return out


def _num(value: Fraction) -> str:
    return str(value.numerator) if value.denominator == 1 else str(float(value))


def _bound(
    cx: Cx,
    w: Conj,
    part: Part,
    keyword: str,
    prefix: str,
    up: bool,
    limit: Bound | None,
    wk: frozenset[str],
) -> Finding | None:
    rv = number(part.get(keyword))
    if rv is None:
        return None
    best = tightest(w, keyword, upper=up)
    if best is None:
        rule = f"{prefix}_ADDED"
    elif rv == best[0]:
        return None
    elif rv > best[0]:
        rule = f"{prefix}_INCREASED"
    else:
        rule = f"{prefix}_DECREASED"
    return cx.emit(
        rule,
        w,
        reader_ptr=part.at(keyword),
        writer_ptr=best[1].at(keyword) if best else None,
        fields={"w": _num(best[0]) if best else "", "r": _num(rv)},
        candidates=_numbers_past(limit, up, wk),
        probe={keyword: part.get(keyword)},
    )


def _numbers_past(
    limit: Bound | None, up: bool, wk: frozenset[str]
) -> Callable[[Gen, Conj], Iterable[Any]]:
    def make(gen: Gen, node: Conj) -> Iterator[Any]:
        if limit is None:
            return
        for integer in (True, False):
            if ("integer" if integer else "fraction") in wk:
                if up:
                    yield from _take(gen.numbers(node, integer=integer, above=limit), 4)
                else:
                    yield from _take(gen.numbers(node, integer=integer, below=limit), 4)

    return make


def _multiple(
    cx: Cx, w: Conj, part: Part, wk: frozenset[str], integers_only: bool
) -> list[Finding]:
    rv = number(part.get("multipleOf"))
    if rv is None or rv <= 0:
        return []
    steps = multiples(w)
    if any(step == rv for step, _ in steps):
        return []
    compatible: bool | None = None
    if not steps:
        rule = "MULTIPLE_OF_ADDED"
        if integers_only and (1 / rv).denominator == 1:
            compatible = True
    elif any((step / rv).denominator == 1 for step, _ in steps):
        rule = "MULTIPLE_OF_REDUCED"
    elif (rv / steps[0][0]).denominator == 1:
        rule = "MULTIPLE_OF_EXPANDED"
    else:
        rule = "MULTIPLE_OF_CHANGED"

    def make(gen: Gen, node: Conj) -> Iterator[Any]:
        for integer in (True, False):
            if ("integer" if integer else "fraction") in wk:
                yield from _take(gen.numbers(node, integer=integer, not_multiple_of=rv), 4)

    finding = cx.emit(
        rule,
        w,
        reader_ptr=part.at("multipleOf"),
        writer_ptr=steps[0][1].at("multipleOf") if steps else None,
        fields={"w": _num(steps[0][0]) if steps else "", "r": _num(rv)},
        candidates=make,
        probe={"multipleOf": part.get("multipleOf")},
    )
    return [replace(finding, compatible=True) if compatible else finding]
