"""The comparison: does the schema documents are read with accept everything the schema they
are written with accepts? Returns findings, each with its rule's verdict under the policy.

Pairs are memoised by identity. A pair met again while it is still being compared is a
recursive schema: if the document has been descended into since (a property, an item), the
comparison is assumed to hold (documents are finite, so this is induction on their depth);
otherwise, or past MAX_DEPTH, it is reported as RECURSION_UNRESOLVED.
"""

from __future__ import annotations

from typing import Any

from schemas.compatibility import arrays, combinators, objects, scalars
from schemas.compatibility.context import Cx
from schemas.compatibility.findings import Finding, where
from schemas.compatibility.generate import Gen
from schemas.compatibility.model import branches, is_false, is_trivial, kinds
from schemas.compatibility.scope import Conj, Document, RecursionLimit, flatten, same_conj
from schemas.compatibility.types import Policy

MAX_DEPTH = 120


def compare_documents(
    writer: Document, reader: Document, *, policy: Policy, gen: Gen
) -> list[Finding]:
    cx = Cx(policy=policy, gen=gen, comparer=compare)
    try:
        w, r = flatten(writer.top), flatten(reader.top)
    except RecursionLimit as error:
        return [_recursion(cx, (writer.top,), str(error))]
    return compare(cx, w, r)


def _key(conj: Conj) -> tuple[Any, ...]:
    return tuple((id(p.schema), p.base, p.ptr) for p in conj)


def compare(cx: Cx, w: Conj, r: Conj) -> list[Finding]:
    key = (_key(w), _key(r))
    found = cx.memo.get(key)
    if found is not None:
        return found
    entered = cx.active.get(key)
    if entered is not None:
        if cx.inst > entered:
            return []
        return [_recursion(cx, w, r[0].location if r else "")]
    if cx.depth >= MAX_DEPTH:
        return [_recursion(cx, w, r[0].location if r else "")]
    cx.active[key] = cx.inst
    cx.depth += 1
    try:
        found = _compare(cx, w, r)
    except RecursionLimit as error:
        found = [_recursion(cx, w, str(error))]
    finally:
        del cx.active[key]
        cx.depth -= 1
    cx.memo[key] = found
    return found


def _recursion(cx: Cx, w: Conj, location: str) -> Finding:
    return cx.emit(
        "RECURSION_UNRESOLVED",
        w,
        reader_ptr=location or None,
        fields={"r": location or "/"},
    )


def _compare(cx: Cx, w: Conj, r: Conj) -> list[Finding]:
    if same_conj(w, r):
        return []
    if is_trivial(r) or is_false(w):
        return scalars.annotation_changes(cx, w, r)
    found: list[Finding] = []
    for branch in branches(w):
        found += _compare_branch(cx, branch, r)
    return _dedupe(found)


def _compare_branch(cx: Cx, w: Conj, r: Conj) -> list[Finding]:
    wk = kinds(w)
    if not wk:
        return []
    found = scalars.compare(cx, w, r, wk)
    if "object" in wk:
        found += objects.compare(cx, w, r)
    if "array" in wk:
        found += arrays.compare(cx, w, r)
    found += combinators.compare(cx, w, r)
    return found


def _dedupe(found: list[Finding]) -> list[Finding]:
    """The same compatible change seen from several writer branches is listed once."""
    seen: set[tuple[Any, ...]] = set()
    out = []
    for finding in found:
        if finding.compatible is True:
            key = (finding.rule, finding.reader_ptr, finding.writer_ptr, where(finding.route))
            if key in seen:
                continue
            seen.add(key)
        out.append(finding)
    return out
