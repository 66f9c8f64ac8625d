"""anyOf/oneOf alternatives, allOf counts, `not`, if/then/else and `$dynamicRef` on the reader side.

The writer's own alternatives have been split into branches before we get here (each branch is
compared on its own), so this module asks: does the reader's disjunction take every document of
this writer branch?
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from schemas.compatibility.context import Cx, all_compatible, detail, failing
from schemas.compatibility.findings import Finding
from schemas.compatibility.generate import POOL, Gen
from schemas.compatibility.model import (
    DISJUNCTIONS,
    canonical,
    closed_for,
    is_trivial,
    kinds,
    original,
    primary_index,
    property_node,
    required,
    values,
)
from schemas.compatibility.scope import Conj, Part, flatten, same, same_conj

COMBINATORS = ("allOf", "anyOf", "oneOf")


_KEYWORDS = frozenset({*COMBINATORS, "not", "if", "then", "else", "$dynamicRef", "$recursiveRef"})


def _combines(conj: Conj) -> bool:
    return any(
        isinstance(original(p), dict) and not _KEYWORDS.isdisjoint(original(p)) for p in conj
    )


def compare(cx: Cx, w: Conj, r: Conj) -> list[Finding]:
    if not _combines(r) and not _combines(w):
        return []
    out = _criterion(cx, w, r)
    for part in r:
        if not isinstance(part.schema, dict):
            continue
        for keyword in DISJUNCTIONS:
            listed = part.get(keyword)
            if isinstance(listed, list) and listed:
                out += _alternatives(cx, w, part, keyword)
        if part.has("not"):
            out += _not(cx, w, part)
        if part.has("if"):
            out += _conditional(cx, w, part)
        if isinstance(part.get("$dynamicRef"), str) or isinstance(part.get("$recursiveRef"), str):
            out += _dynamic(cx, w, part)
    out += _dropped(cx, w, r)
    return out


def _listed(schema: Any, keyword: str) -> list[Any]:
    found = schema.get(keyword) if isinstance(schema, dict) else None
    return found if isinstance(found, list) else []


def _criterion(cx: Cx, w: Conj, r: Conj) -> list[Finding]:
    """Confluent's criteria changes (allOf/anyOf/oneOf) and allOf counts, on the root parts."""
    wp, rp = _combining(w), _combining(r)
    wo, ro = original(wp), original(rp)
    wkw = next((k for k in COMBINATORS if _listed(wo, k)), None)
    rkw = next((k for k in COMBINATORS if _listed(ro, k)), None)
    out = []
    if wkw and rkw and wkw != rkw:
        wn, rn = len(_listed(wo, wkw)), len(_listed(ro, rkw))
        extended = (
            rkw == "anyOf"
            or (rkw == "oneOf" and wn == 1)
            or (rkw == "allOf" and wn == 1 and rn == 1)
        )
        out.append(
            cx.emit(
                "COMBINED_TYPE_EXTENDED" if extended else "COMBINED_TYPE_CHANGED",
                w,
                reader_ptr=rp.at(rkw),
                writer_ptr=wp.at(wkw),
                fields={"w": wkw, "r": rkw},
                # informational: the subschemas themselves are compared below
                compatible=True,
            )
        )
    wn, rn = len(_listed(wo, "allOf")), len(_listed(ro, "allOf"))
    if wn and rn and wn != rn:
        out.append(
            cx.emit(
                "PRODUCT_TYPE_EXTENDED" if rn > wn else "PRODUCT_TYPE_NARROWED",
                w,
                reader_ptr=rp.at("allOf"),
                writer_ptr=wp.at("allOf"),
                fields={"w": wn, "r": rn},
            )
        )
    return out


def _combining(conj: Conj) -> Part:
    """The first part that combines subschemas (its anyOf/oneOf may have been split off)."""
    return next(
        (p for p in conj if any(_listed(original(p), k) for k in COMBINATORS)),
        conj[primary_index(conj)],
    )


def _writer_alternatives(w: Conj) -> list[tuple[str, Part, list[Any]]]:
    out = []
    for part in w:
        schema = original(part)
        for keyword in DISJUNCTIONS:
            listed = _listed(schema, keyword)
            if listed:
                out.append((keyword, part, listed))
    return out


def _alternatives(cx: Cx, w: Conj, part: Part, keyword: str) -> list[Finding]:
    listed = part.get(keyword)
    own = _writer_alternatives(w)
    for wkw, wpart, wlisted in own:
        # The writer obeys the same disjunction: it is implied (oneOf implies anyOf too).
        if (wkw == keyword or (keyword == "anyOf" and wkw == "oneOf")) and len(wlisted) == len(
            listed
        ):
            wchildren = _children(wpart, wkw, wlisted)
            if all(
                same(a, b) for a, b in zip(wchildren, _children(part, keyword, listed), strict=True)
            ):
                return []
    alternatives = [flatten(part.child(keyword, i)) for i in range(len(listed))]
    results = [cx.sub(w, alternative) for alternative in alternatives]
    writer_count = max((len(wlisted) for _, _, wlisted in own), default=1)
    ptr = part.at(keyword)
    covering = [i for i, found in enumerate(results) if all_compatible(found)]
    if covering:
        chosen = covering[0]
        out = list(results[chosen])
        if len(alternatives) > writer_count:
            out.append(
                cx.emit(
                    "SUM_TYPE_EXTENDED",
                    w,
                    reader_ptr=ptr,
                    fields={"w": writer_count, "r": len(alternatives)},
                )
            )
        if keyword == "oneOf":
            others = [alt for i, alt in enumerate(alternatives) if i != chosen]
            if not all(disjoint(cx, w, other) for other in others):
                out.append(
                    cx.emit("ONE_OF_AMBIGUOUS", w, reader_ptr=ptr, candidates=_writer_samples)
                )
        return out
    best = min(range(len(results)), key=lambda i: len(failing(results[i])))
    rule = (
        "SUM_TYPE_NARROWED"
        if len(alternatives) < writer_count
        else "COMBINED_TYPE_SUBSCHEMAS_CHANGED"
    )
    return [
        cx.emit(
            rule,
            w,
            reader_ptr=ptr,
            fields={
                "w": writer_count,
                "r": len(alternatives),
                "kw": keyword,
                "detail": f"closest is {keyword}/{best}: {detail(results[best])}",
            },
            nested=results[best],
            candidates=_writer_samples,
        )
    ]


def _children(part: Part, keyword: str, listed: list[Any]) -> list[Part]:
    holder = Part(original(part), part.doc, part.base, part.ptr)
    return [holder.child(keyword, i) for i in range(len(listed))]


def _writer_samples(gen: Gen, node: Conj) -> Iterator[Any]:
    yield from gen.samples(node, limit=24)
    yield from POOL


def disjoint(cx: Cx, w: Conj, other: Conj) -> bool:
    """No document of the writer branch can match `other` (a cheap, sound test)."""
    if not kinds(w) & kinds(other):
        return True
    wv, ov = values(w), values(other)
    if (
        wv is not None
        and ov is not None
        and not {canonical(v) for v in wv} & {canonical(v) for v in ov}
    ):
        return True
    if wv is not None and all(not cx.gen.fits(other, v) for v in wv):
        return True
    for name in required(other):
        theirs = values(property_node(other, name))
        if theirs is None:
            continue
        if closed_for(w, name):
            return True
        mine = values(property_node(w, name))
        if mine is not None and not {canonical(v) for v in mine} & {canonical(v) for v in theirs}:
            return True
    return False


def _not(cx: Cx, w: Conj, part: Part) -> list[Finding]:
    child = part.child("not")
    reader = flatten(child)
    written = [flatten(p.child("not")) for p in w if p.has("not")]
    if any(same_conj(mine, reader) for mine in written):
        return []
    ptr = part.at("not")

    def make(gen: Gen, node: Conj) -> Iterator[Any]:
        yield from gen.samples(reader, limit=16)
        yield from gen.samples(node, limit=16)
        yield from POOL

    if written:
        # not A accepts all of not B when B accepts all of A: compare the other way round.
        if any(all_compatible(cx.sub(reader, mine)) for mine in written):
            return [cx.emit("NOT_TYPE_NARROWED", w, reader_ptr=ptr)]
        return [cx.emit("NOT_TYPE_EXTENDED", w, reader_ptr=ptr, candidates=make)]
    if disjoint(cx, w, reader):
        return []
    return [cx.emit("SCHEMA_ADDED", w, reader_ptr=ptr, fields={"kw": "not"}, candidates=make)]


def _conditional(cx: Cx, w: Conj, part: Part) -> list[Finding]:
    mine = [p for p in w if p.has("if")]
    for other in mine:
        if all(
            other.has(k) == part.has(k) and (not part.has(k) or same(other.child(k), part.child(k)))
            for k in ("if", "then", "else")
        ):
            return []

    def make(gen: Gen, node: Conj) -> Iterator[Any]:
        # Documents that meet the new condition, and the writer's own consequences too.
        condition = flatten(part.child("if"))
        consequences = tuple(c for p in node if p.has("then") for c in flatten(p.child("then")))
        yield from gen.samples(node + condition + consequences, limit=16)
        yield from gen.samples(node + condition, limit=16)
        yield from gen.samples(node, limit=16)

    return [
        cx.emit(
            "CONDITIONAL_CHANGED" if mine else "CONDITIONAL_ADDED",
            w,
            reader_ptr=part.at("if"),
            writer_ptr=mine[0].at("if") if mine else None,
            candidates=make,
        )
    ]


def _dynamic(cx: Cx, w: Conj, part: Part) -> list[Finding]:
    if any(same(p, part) for p in w):
        return []
    keyword = "$dynamicRef" if part.has("$dynamicRef") else "$recursiveRef"
    return [
        cx.emit(
            "DYNAMIC_REF_CHANGED",
            w,
            reader_ptr=part.at(keyword),
            fields={"r": part.get(keyword)},
            candidates=_writer_samples,
        )
    ]


def _dropped(cx: Cx, w: Conj, r: Conj) -> list[Finding]:
    if is_trivial(r):
        return []
    out = []
    for part in w:
        if part.has("not") and not any(p.has("not") for p in r):
            out.append(
                cx.emit(
                    "SCHEMA_REMOVED",
                    w,
                    reader_ptr=None,
                    writer_ptr=part.at("not"),
                    fields={"kw": "not"},
                )
            )
        if part.has("if") and not any(p.has("if") for p in r):
            out.append(cx.emit("CONDITIONAL_REMOVED", w, reader_ptr=None, writer_ptr=part.at("if")))
    return out
