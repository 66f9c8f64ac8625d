"""Number keywords: maximum, minimum, their exclusive forms (read together as one effective
bound), and multipleOf (compared as exact fractions)."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import replace
from fractions import Fraction
from typing import Any

from schemas.compatibility.context import Cx
from schemas.compatibility.findings import Finding
from schemas.compatibility.generate import Gen, take
from schemas.compatibility.model import (
    NUMBER,
    Bound,
    accepts,
    integral,
    is_trivial,
    lower,
    multiples,
    number,
    part_lower,
    part_upper,
    tightest,
    upper,
    within_lower,
    within_upper,
)
from schemas.compatibility.scope import Conj, Part

_BOUNDS = (
    ("maximum", "MAXIMUM", True),
    ("exclusiveMaximum", "EXCLUSIVE_MAXIMUM", True),
    ("minimum", "MINIMUM", False),
    ("exclusiveMinimum", "EXCLUSIVE_MINIMUM", False),
)


def compare(cx: Cx, w: Conj, r: Conj, wk: frozenset[str]) -> list[Finding]:
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
                    yield from take(gen.numbers(node, integer=integer, above=limit), 4)
                else:
                    yield from take(gen.numbers(node, integer=integer, below=limit), 4)

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
                yield from take(gen.numbers(node, integer=integer, not_multiple_of=rv), 4)

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
