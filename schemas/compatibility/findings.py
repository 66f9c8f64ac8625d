"""What a comparison finds, before it is proven: the rule, where, and how to build a counterexample.

A finding keeps its `route`: the writer's schema at each level of the document, from the pair
compared down to the place of the change, with the step taken at each level (a property, an
item). The counterexample search rebuilds a document along that route around a candidate value.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from typing import Any

from schemas.compatibility.generate import Gen
from schemas.compatibility.rules import RULE_BY_ID
from schemas.compatibility.scope import Conj


@dataclass(frozen=True, slots=True)
class Key:
    name: str
    label: str | None = None  # how messages show it: "<additional property>"


@dataclass(frozen=True, slots=True)
class Index:
    index: int
    label: str | None = None  # "[]" for any item


Step = Key | Index
Frame = tuple[Conj, Step | None]
Candidates = Callable[[Gen, Conj], Iterable[Any]]


@dataclass(frozen=True, slots=True)
class Finding:
    rule: str
    reader_ptr: str | None  # the keyword in the schema documents are read with
    writer_ptr: str | None  # the same place in the schema they are written with, if any
    fields: tuple[tuple[str, str], ...]  # the rule template's domain fields
    compatible: bool | None
    route: tuple[Frame, ...]
    candidates: Candidates | None = None  # leaf values to try at the end of the route
    nested: tuple[Finding, ...] = ()  # the sub-differences that explain this one
    optional: bool = False  # the property concerned is optional (Policy.ROBUST)
    probe: Any = None  # the reader keyword alone, to test finite writer values against


def wrap(finding: Finding, node: Conj, step: Step | None) -> Finding:
    """The finding seen from one level up in the document."""
    return replace(
        finding,
        route=((node, step), *finding.route),
        nested=tuple(wrap(n, node, step) for n in finding.nested),
    )


def where(route: tuple[Frame, ...]) -> str:
    text = ""
    for _, step in route[:-1]:
        if isinstance(step, Key):
            label = step.label or step.name
            text += ("." if text else "") + label
        elif isinstance(step, Index):
            text += step.label or f"[{step.index}]"
    return f"'{text}'" if text else "the document"


def render(finding: Finding, *, writer: str, reader: str) -> str:
    """The rule's sentence for this finding (filled only when reported: most are not)."""
    values = _Lenient(finding.fields)
    values.update(where=where(finding.route), writer=writer, reader=reader)
    return RULE_BY_ID[finding.rule].template.format_map(values)


class _Lenient(dict[str, str]):
    def __missing__(self, key: str) -> str:
        return "?"


def flatten_findings(findings: Iterable[Finding]) -> list[Finding]:
    out: list[Finding] = []
    for finding in findings:
        out.append(finding)
        out.extend(flatten_findings(finding.nested))
    return out
