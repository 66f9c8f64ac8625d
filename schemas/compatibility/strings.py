"""String keywords: maxLength, minLength, pattern and format (formats are asserted)."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import Any

from schemas.compatibility import format_samples
from schemas.compatibility.context import Cx
from schemas.compatibility.findings import Finding
from schemas.compatibility.generate import Gen, take
from schemas.compatibility.model import (
    accepts,
    is_trivial,
    length_max,
    length_min,
    matches,
    number,
    show,
    tightest,
)
from schemas.compatibility.scope import Conj, Part


def compare(cx: Cx, w: Conj, r: Conj) -> list[Finding]:
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
            yield from take(gen.strings(node, length=size), 2)
        if upper:
            top = length_max(node, "maxLength")
            if top is not None and top > limit:
                yield from take(gen.strings(node, length=top), 2)
        else:
            yield from take(gen.strings(node, length=length_min(node, "minLength")), 2)

    return make


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
        pool = [*take(gen.strings(node), 24), *gen.samples(node, limit=12), *GENERIC_STRINGS]
        for value in pool:
            if isinstance(value, str) and not matches(pattern, value):
                yield value

    return make


def _format_candidates(name: str) -> Callable[[Gen, Conj], Iterable[Any]]:
    def make(gen: Gen, node: Conj) -> Iterator[Any]:
        pool = [*take(gen.strings(node), 24), *gen.samples(node, limit=12), *GENERIC_STRINGS]
        for value in pool:
            if isinstance(value, str) and not format_samples.conforms(name, value):
                yield value

    return make
