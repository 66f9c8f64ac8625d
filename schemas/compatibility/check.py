"""The two entry points: `diff` lists what changed, `check` decides a compatibility level.

BACKWARD compares old (writer) to new (reader); FORWARD compares new (writer) to old (reader),
as Confluent does. Every finding the rule table calls incompatible must be proven by a document
the writer accepts and the reader refuses; without one it is reported UNDECIDED, never guessed.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from schemas.compatibility.compare import compare_documents
from schemas.compatibility.counterexample import Prover
from schemas.compatibility.findings import Finding, flatten_findings, render
from schemas.compatibility.generate import MISSING, Gen
from schemas.compatibility.rules import forward_verdict
from schemas.compatibility.scope import Document, dump_cache
from schemas.compatibility.types import Break, Change, Direction, Level, Policy, Undecided, Verdict

Validate = Callable[[Any, Any], bool]

_NOT_PROVEN = (
    " (the rule says incompatible, but no document accepted by the {writer} schema and refused "
    "by the {reader} schema could be built and verified, so the checker does not guess)"
)
_NOT_DECIDED = (
    " (the rule table cannot decide this, and no document accepted by the {writer} schema and "
    "refused by the {reader} schema was found)"
)


def diff(
    old: Any,
    new: Any,
    *,
    policy: Policy = Policy.DEFAULT,
    resources: Mapping[str, Any] | None = None,
) -> list[Change]:
    """Every difference from `old` to `new`, with its verdict each way under the policy."""
    policy = Policy(policy)
    findings = compare_documents(
        Document.load(old, resources, name="old schema"),
        Document.load(new, resources, name="new schema"),
        policy=policy,
        gen=Gen(),
    )
    changes: list[Change] = []
    seen: set[tuple[str, str]] = set()
    for finding in flatten_findings(findings):
        pointer = _pointer(finding, "backward")
        if (pointer, finding.rule) in seen:
            continue
        seen.add((pointer, finding.rule))
        changes.append(
            Change(
                pointer=pointer,
                rule=finding.rule,
                message=render(finding, writer="old", reader="new"),
                backward=finding.compatible is True,
                forward=forward_verdict(finding.rule, policy, optional=finding.optional) is True,
            )
        )
    return changes


def check(
    candidate: Any,
    previous: Sequence[tuple[int, Any]],
    *,
    level: Level,
    policy: Policy = Policy.DEFAULT,
    resources: Mapping[str, Any] | None = None,
    validate: Validate | None = None,
) -> Verdict:
    """Whether `candidate` may follow `previous` ((version, schema), oldest first) at `level`.

    Raises InvalidSchema for a schema that breaks its meta-schema and UnresolvedReference for
    a `$ref` to a document that is not among `resources`.

    `validate(schema, instance) -> bool`, when given, must agree with the reference validator
    on a counterexample before it is reported (to plug the data plane's validator in).
    """
    level, policy = Level(level), Policy(policy)
    if level is Level.NONE or not previous:
        return Verdict(level, policy, (), ())
    targets = list(previous) if level.transitive else [previous[-1]]
    gen = Gen()
    judge = _Judge(policy, gen, Prover(gen, validate))
    new = Document.load(candidate, resources, name="new schema")
    kept = [new]  # documents stay alive for the whole check: caches key on object ids
    with dump_cache():
        for version, schema in targets:
            old = Document.load(schema, resources, name=f"schema of version {version}")
            kept.append(old)
            if level.backward:
                judge.run(old, new, "backward", version)
            if level.forward:
                judge.run(new, old, "forward", version)
    return Verdict(level, policy, tuple(judge.breaks), tuple(judge.undecided))


def _pointer(finding: Finding, direction: Direction) -> str:
    """Into the new schema where the change is, or into the old one for what it lost."""
    first, second = (
        (finding.reader_ptr, finding.writer_ptr)
        if direction == "backward"
        else (finding.writer_ptr, finding.reader_ptr)
    )
    if first is not None:
        return first
    return second if second is not None else ""


class _Judge:
    def __init__(self, policy: Policy, gen: Gen, prover: Prover) -> None:
        self.policy = policy
        self.gen = gen
        self.prover = prover
        self.breaks: list[Break] = []
        self.undecided: list[Undecided] = []

    def run(self, writer: Document, reader: Document, direction: Direction, version: int) -> None:
        names = ("old", "new") if direction == "backward" else ("new", "old")
        findings = compare_documents(writer, reader, policy=self.policy, gen=self.gen)
        groups: dict[tuple[str, str], list[Finding]] = {}
        for finding in findings:
            if finding.compatible is not True:
                key = (finding.rule, _pointer(finding, direction))
                groups.setdefault(key, []).append(finding)
        for (rule, pointer), group in groups.items():
            for finding in group:
                found = self.prover.find(finding, writer, reader)
                if found is not MISSING:
                    self.breaks.append(
                        Break(
                            pointer=pointer,
                            rule=rule,
                            message=render(finding, writer=names[0], reader=names[1]),
                            direction=direction,
                            version=version,
                            counterexample=found,
                        )
                    )
                    break
            else:
                first = group[0]
                reason = _NOT_PROVEN if first.compatible is False else _NOT_DECIDED
                message = render(first, writer=names[0], reader=names[1]) + reason.replace(
                    "{writer}", names[0]
                ).replace("{reader}", names[1])
                self.undecided.append(
                    Undecided(
                        pointer=pointer,
                        rule=rule,
                        message=message,
                        direction=direction,
                        version=version,
                    )
                )
