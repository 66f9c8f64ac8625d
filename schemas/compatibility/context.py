"""The state one comparison carries: policy, memo of compared pairs, recursion guard, and the
helpers every keyword module uses to report findings and descend into subschemas."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Final

from schemas.compatibility.findings import Candidates, Finding, Step, wrap
from schemas.compatibility.generate import Gen
from schemas.compatibility.model import anything
from schemas.compatibility.rules import backward_verdict
from schemas.compatibility.scope import Conj
from schemas.compatibility.types import Policy


class _Unset:
    pass


UNSET: Final = _Unset()
Comparer = Callable[["Cx", Conj, Conj], list[Finding]]


@dataclass(eq=False)
class Cx:
    policy: Policy
    gen: Gen
    comparer: Comparer
    memo: dict[Any, list[Finding]] = field(default_factory=dict)
    active: dict[Any, int] = field(default_factory=dict)  # pair -> document depth on entry
    depth: int = 0  # nested comparisons
    inst: int = 0  # levels descended into the document

    def sub(self, writer: Conj, reader: Conj) -> list[Finding]:
        """Compare at the same place in the document (alternatives, conjuncts)."""
        if not reader:
            return []
        return self.comparer(self, writer or anything(reader[0]), reader)

    def descend(self, parent: Conj, step: Step, writer: Conj, reader: Conj) -> list[Finding]:
        """Compare one level down in the document (a property, an item)."""
        if not reader:
            return []
        writer = writer or anything(reader[0])
        self.inst += 1
        try:
            found = self.comparer(self, writer, reader)
        finally:
            self.inst -= 1
        return [wrap(f, parent, step) for f in found]

    def emit(
        self,
        rule_id: str,
        writer: Conj,
        *,
        reader_ptr: str | None,
        writer_ptr: str | None = None,
        fields: dict[str, Any] | None = None,
        candidates: Candidates | None = None,
        nested: Iterable[Finding] = (),
        optional: bool = False,
        compatible: bool | _Unset | None = UNSET,
        probe: Any = None,
    ) -> Finding:
        verdict = (
            backward_verdict(rule_id, self.policy, optional=optional)
            if isinstance(compatible, _Unset)
            else compatible
        )
        return Finding(
            rule=rule_id,
            reader_ptr=reader_ptr,
            writer_ptr=writer_ptr,
            fields=tuple((k, str(v)) for k, v in (fields or {}).items()),
            compatible=verdict,
            route=((writer, None),),
            candidates=candidates,
            nested=tuple(nested),
            optional=optional,
            probe=probe,
        )


def failing(findings: Iterable[Finding]) -> list[Finding]:
    return [f for f in findings if f.compatible is not True]


def all_compatible(findings: Iterable[Finding]) -> bool:
    return all(f.compatible is True for f in findings)


def detail(findings: Iterable[Finding]) -> str:
    """A short reason: the first incompatible sub-difference."""
    for finding in findings:
        if finding.compatible is not True:
            return f"{finding.rule} at {finding.reader_ptr or finding.writer_ptr or '/'}"
    return "no difference"
