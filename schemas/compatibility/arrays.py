"""Arrays: items and tuples (prefixItems, or draft-07 `items` arrays with additionalItems),
unevaluated items, lengths, uniqueness and contains."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import Any

from schemas.compatibility.context import Cx, all_compatible, detail
from schemas.compatibility.findings import Finding, Index
from schemas.compatibility.generate import MISSING, POOL, Gen
from schemas.compatibility.model import (
    anything,
    contains,
    declared_kinds,
    is_false,
    is_trivial,
    item_node,
    owner,
    prefix,
    primary_index,
    rest,
    rest_keyword,
    tightest,
)
from schemas.compatibility.scope import Conj, Part, flatten

Make = Callable[[Gen, Conj], Iterable[Any]]


def compare(cx: Cx, w: Conj, r: Conj) -> list[Finding]:
    out: list[Finding] = []
    first = primary_index(r)
    for index, part in enumerate(r):
        if not _accepts_arrays(part):
            continue
        primary = index == first
        out += _items(cx, w, part, primary)
        out += _unevaluated(cx, w, part, primary)
        out += _counts(cx, w, part, primary)
        out += _unique(cx, w, part, primary)
        out += _contains(cx, w, part, primary)
    return out


def _accepts_arrays(part: Part) -> bool:
    if not isinstance(part.schema, dict):
        return False
    kinds = declared_kinds(part)
    return kinds is None or "array" in kinds


def _long(size: int, *, item: Iterable[Any] = ()) -> Make:
    """Arrays of the writer with `size` items, the last one replaced by each of `item`."""

    def make(gen: Gen, node: Conj) -> Iterator[Any]:
        base = gen.instance(node, kind="array", n_items=size)
        if base is MISSING:
            base = gen.instance(node, kind="array", min_items=size)
        yield base
        replacements = list(item)
        if isinstance(base, list) and len(base) >= size and replacements:
            for value in replacements:
                changed = list(base)
                changed[size - 1] = value
                yield changed

    return make


def _items(cx: Cx, w: Conj, part: Part, primary: bool) -> list[Finding]:
    w0 = owner(w, "items", "prefixItems", "additionalItems")
    written, read = prefix(w0), prefix(part)
    w_rest, r_rest = rest(w0), rest(part)
    if not written and not read:
        return _all_items(cx, w, part, primary, r_rest)
    out: list[Finding] = []
    for index in range(max(len(written), len(read))):
        if index < len(written) and index < len(read):
            out += cx.descend(w, Index(index), item_node(w, index), flatten(read[index]))
        elif index < len(written):
            out += _tuple_dropped(cx, w, part, primary, index, written[index], r_rest)
        else:
            out += _tuple_added(cx, w, part, index, read[index])
    out += _rest(cx, w, part, primary, max(len(written), len(read)), w_rest, r_rest)
    return out


def _all_items(cx: Cx, w: Conj, part: Part, primary: bool, r_rest: Part | None) -> list[Finding]:
    writer = item_node(w, 0)
    if r_rest is None or is_trivial(flatten(r_rest)):
        if primary and r_rest is None and writer and not is_trivial(writer):
            holder = owner(w, "items")
            keyword = rest_keyword(holder)
            return [
                cx.emit(
                    "SCHEMA_REMOVED",
                    w,
                    reader_ptr=None,
                    writer_ptr=holder.at(keyword) if holder.has(keyword) else None,
                    fields={"kw": "items"},
                )
            ]
        return []
    reader = flatten(r_rest)
    if writer:
        return cx.descend(w, Index(0, "[]"), writer, reader)
    nested = cx.descend(w, Index(0, "[]"), anything(w[0]), reader)
    return [
        cx.emit(
            "SCHEMA_ADDED",
            w,
            reader_ptr=r_rest.location,
            fields={"kw": "items"},
            nested=nested,
            compatible=all_compatible(nested),
        )
    ]


def _tuple_dropped(
    cx: Cx,
    w: Conj,
    part: Part,
    primary: bool,
    index: int,
    dropped: Part,
    r_rest: Part | None,
) -> list[Finding]:
    writer = item_node(w, index)
    fields = {"index": index}
    if r_rest is None or is_trivial(flatten(r_rest)):
        if not primary:
            return []
        return [
            cx.emit(
                "ITEM_REMOVED_FROM_OPEN_CONTENT_MODEL",
                w,
                reader_ptr=None,
                writer_ptr=dropped.location,
                fields=fields,
            )
        ]
    if r_rest.schema is False:
        if is_false(writer):
            rule = "ITEM_WITH_FALSE_REMOVED_FROM_CLOSED_CONTENT_MODEL"
        else:
            rule = "ITEM_REMOVED_FROM_CLOSED_CONTENT_MODEL"
        return [
            cx.emit(
                rule,
                w,
                reader_ptr=r_rest.location,
                writer_ptr=dropped.location,
                fields=fields,
                candidates=_long(index + 1),
            )
        ]
    nested = cx.descend(w, Index(index), writer, flatten(r_rest))
    covered = all_compatible(nested)
    return [
        cx.emit(
            "ITEM_REMOVED_IS_COVERED_BY_PARTIALLY_OPEN_CONTENT_MODEL"
            if covered
            else "ITEM_REMOVED_NOT_COVERED_BY_PARTIALLY_OPEN_CONTENT_MODEL",
            w,
            reader_ptr=r_rest.location,
            writer_ptr=dropped.location,
            fields={**fields, "detail": detail(nested)},
            nested=nested,
        )
    ]


def _tuple_added(cx: Cx, w: Conj, part: Part, index: int, added: Part) -> list[Finding]:
    writer = item_node(w, index)
    reader = flatten(added)
    fields = {"index": index}
    if not writer or is_trivial(writer):
        rule = (
            "ITEM_WITH_EMPTY_SCHEMA_ADDED_TO_OPEN_CONTENT_MODEL"
            if is_trivial(reader)
            else "ITEM_ADDED_TO_OPEN_CONTENT_MODEL"
        )
        return [
            cx.emit(
                rule,
                w,
                reader_ptr=added.location,
                fields=fields,
                candidates=_long(index + 1, item=POOL),
            )
        ]
    if is_false(writer):
        return [
            cx.emit(
                "ITEM_ADDED_TO_CLOSED_CONTENT_MODEL", w, reader_ptr=added.location, fields=fields
            )
        ]
    nested = cx.descend(w, Index(index), writer, reader)
    covered = all_compatible(nested)
    return [
        cx.emit(
            "ITEM_ADDED_IS_COVERED_BY_PARTIALLY_OPEN_CONTENT_MODEL"
            if covered
            else "ITEM_ADDED_NOT_COVERED_BY_PARTIALLY_OPEN_CONTENT_MODEL",
            w,
            reader_ptr=added.location,
            fields={**fields, "detail": detail(nested)},
            nested=nested,
        )
    ]


def _state(part: Part | None) -> str:
    if part is None or part.schema is True or is_trivial(flatten(part)):
        return "open"
    return "closed" if part.schema is False else "schema"


def _rest(
    cx: Cx,
    w: Conj,
    part: Part,
    primary: bool,
    size: int,
    w_rest: Part | None,
    r_rest: Part | None,
) -> list[Finding]:
    ws, rs = _state(w_rest), _state(r_rest)
    if ws == rs == "open" or ws == rs == "closed" or (rs == "open" and not primary):
        return []
    rptr = r_rest.location if r_rest is not None else None
    wptr = w_rest.location if w_rest is not None else None
    if ws == "closed":
        return [cx.emit("ADDITIONAL_ITEMS_ADDED", w, reader_ptr=rptr, writer_ptr=wptr)]
    if rs == "open":
        return [cx.emit("ADDITIONAL_ITEMS_EXTENDED", w, reader_ptr=rptr, writer_ptr=wptr)]
    if rs == "closed":
        return [
            cx.emit(
                "ADDITIONAL_ITEMS_REMOVED",
                w,
                reader_ptr=rptr,
                writer_ptr=wptr,
                candidates=_long(size + 1),
            )
        ]
    assert r_rest is not None
    if ws == "open":
        return [
            cx.emit(
                "ADDITIONAL_ITEMS_NARROWED",
                w,
                reader_ptr=rptr,
                writer_ptr=wptr,
                candidates=_long(size + 1, item=POOL),
            )
        ]
    label = f"[{size}+]"
    return cx.descend(w, Index(size, label), item_node(w, size), flatten(r_rest))


def _unevaluated(cx: Cx, w: Conj, part: Part, primary: bool) -> list[Finding]:
    w0 = owner(w, "unevaluatedItems", "items", "prefixItems")
    wpart = w0.child("unevaluatedItems") if w0.has("unevaluatedItems") else None
    rpart = part.child("unevaluatedItems") if part.has("unevaluatedItems") else None
    ws, rs = _state(wpart), _state(rpart)
    if ws == rs == "open" or ws == rs == "closed" or (rs == "open" and not primary):
        return []
    rptr = rpart.location if rpart is not None else None
    wptr = wpart.location if wpart is not None else None
    size = max(len(prefix(w0)), len(prefix(part)))
    if ws == "closed":
        return [cx.emit("UNEVALUATED_ITEMS_ADDED", w, reader_ptr=rptr, writer_ptr=wptr)]
    if rs == "open":
        return [cx.emit("UNEVALUATED_ITEMS_EXTENDED", w, reader_ptr=rptr, writer_ptr=wptr)]
    if rs == "closed":
        return [
            cx.emit(
                "UNEVALUATED_ITEMS_REMOVED",
                w,
                reader_ptr=rptr,
                writer_ptr=wptr,
                candidates=_long(size + 1),
            )
        ]
    assert rpart is not None
    if ws == "open":
        return [
            cx.emit(
                "UNEVALUATED_ITEMS_NARROWED",
                w,
                reader_ptr=rptr,
                writer_ptr=wptr,
                candidates=_long(size + 1, item=POOL),
            )
        ]
    assert wpart is not None
    return cx.descend(w, Index(size, "<unevaluated>"), flatten(wpart), flatten(rpart))


_COUNTS = (
    ("maxItems", "MAX_ITEMS", True),
    ("minItems", "MIN_ITEMS", False),
    ("maxContains", "MAX_CONTAINS", True),
    ("minContains", "MIN_CONTAINS", False),
)


def _counts(cx: Cx, w: Conj, part: Part, primary: bool) -> list[Finding]:
    out = []
    for keyword, prefix_, upper in _COUNTS:
        raw = part.get(keyword)
        best = tightest(w, keyword, upper=upper)
        wv = int(best[0]) if best and (upper or best[0] > 0) else None
        if not isinstance(raw, int) or isinstance(raw, bool) or (not upper and raw <= 0):
            if primary and wv is not None and not part.has(keyword) and best is not None:
                out.append(
                    cx.emit(
                        f"{prefix_}_REMOVED",
                        w,
                        reader_ptr=None,
                        writer_ptr=best[1].at(keyword),
                        fields={"w": wv},
                    )
                )
            continue
        if wv is None:
            rule = f"{prefix_}_ADDED"
        elif raw == wv:
            continue
        elif raw > wv:
            rule = f"{prefix_}_INCREASED"
        else:
            rule = f"{prefix_}_DECREASED"
        sizes = range(raw + 1, raw + 4) if upper else range(raw - 1, max(raw - 4, -1), -1)
        make = _matching(list(sizes)) if "Contains" in keyword else _sized(list(sizes))
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


# The longest array a counterexample is built with: a bound such as minContains 10^9 is left
# unproven (UNDECIDED) rather than built in memory (it answered 500 with a MemoryError).
LARGEST_ARRAY = 10_000


def _sized(sizes: list[int]) -> Make:
    def make(gen: Gen, node: Conj) -> Iterator[Any]:
        for size in sizes:
            if size <= LARGEST_ARRAY:
                yield gen.instance(node, kind="array", n_items=size)

    return make


def _matching(sizes: list[int]) -> Make:
    """Arrays made of `size` items that all match `contains`."""

    def make(gen: Gen, node: Conj) -> Iterator[Any]:
        for size in sizes:
            if size > LARGEST_ARRAY:
                continue
            item = gen.instance(item_node(node, 0) + contains(node))
            if item is not MISSING:
                yield [item] * size

    return make


def _unique(cx: Cx, w: Conj, part: Part, primary: bool) -> list[Finding]:
    writer_unique = next((p for p in w if p.get("uniqueItems") is True), None)
    if part.get("uniqueItems") is True and writer_unique is None:

        def make(gen: Gen, node: Conj) -> Iterator[Any]:
            for base in (
                gen.instance(node, kind="array", min_items=2),
                gen.instance(node, kind="array", n_items=2),
            ):
                if isinstance(base, list) and len(base) >= 2:
                    yield [base[0], base[0], *base[2:]]

        return [
            cx.emit("UNIQUE_ITEMS_ADDED", w, reader_ptr=part.at("uniqueItems"), candidates=make)
        ]
    if primary and writer_unique is not None and part.get("uniqueItems") is not True:
        return [
            cx.emit(
                "UNIQUE_ITEMS_REMOVED",
                w,
                reader_ptr=None,
                writer_ptr=writer_unique.at("uniqueItems"),
            )
        ]
    return []


def _contains(cx: Cx, w: Conj, part: Part, primary: bool) -> list[Finding]:
    written = contains(w)
    if part.has("contains"):
        reader = flatten(part.child("contains"))
        if is_trivial(reader):
            return []
        if written:
            return cx.descend(w, Index(0, "<item matching contains>"), written, reader)

        def make(gen: Gen, node: Conj) -> Iterator[Any]:
            yield gen.instance(node, kind="array")
            yield gen.instance(node, kind="array", full=True)
            yield gen.instance(node, kind="array", min_items=1)

        return [
            cx.emit(
                "SCHEMA_ADDED",
                w,
                reader_ptr=part.at("contains"),
                fields={"kw": "contains"},
                candidates=make,
            )
        ]
    if primary and written:
        holder = next(p for p in w if p.has("contains"))
        return [
            cx.emit(
                "SCHEMA_REMOVED",
                w,
                reader_ptr=None,
                writer_ptr=holder.at("contains"),
                fields={"kw": "contains"},
            )
        ]
    return []
