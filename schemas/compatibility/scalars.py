"""Keywords on one value: annotations, type and enum/const here, strings and numbers in their
modules; a writer that allows only a few values has each tested against the reader's keyword."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator
from dataclasses import replace
from functools import lru_cache
from typing import Any

import jsonschema

from schemas.compatibility import format_samples, numbers, strings
from schemas.compatibility.context import Cx
from schemas.compatibility.findings import Finding
from schemas.compatibility.generate import POOL, Gen
from schemas.compatibility.model import (
    KINDS,
    NUMBER,
    canonical,
    declared_conj,
    declared_kinds,
    is_trivial,
    kind_of,
    kinds,
    part_values,
    show,
    show_kinds,
    values,
)
from schemas.compatibility.scope import Conj, Part, json_equal

FINITE_LIMIT = 256  # writer values tested one by one against a reader keyword


def compare(cx: Cx, w: Conj, r: Conj, wk: frozenset[str]) -> list[Finding]:
    found = annotation_changes(cx, w, r)
    found += _types(cx, w, r, wk)
    found += _values(cx, w, r)
    if "string" in wk:
        found += strings.compare(cx, w, r)
    if wk & NUMBER:
        found += numbers.compare(cx, w, r, wk)
    return _finite(cx, w, found)


def _finite(cx: Cx, w: Conj, found: list[Finding]) -> list[Finding]:
    """When the writer only allows a few values, test each against the reader's keyword: a
    tighter bound that every allowed value meets is no break."""
    allowed = values(w)
    if allowed is None and kinds(w) <= {"boolean", "null"}:
        allowed = [v for v in (True, False, None) if kind_of(v) in kinds(w)]
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


# --- numbers -------------------------------------------------------------------------------
