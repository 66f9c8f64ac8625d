"""The fixture corpus (compat_fixtures/*.json): one test per schema pair, every level's outcome,
the rules reported, and every counterexample re-checked with the reference validator."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from schemas.compatibility import RULES, Break, Level, Policy, Verdict, check, diff
from schemas.validation import reference_validator

HERE = Path(__file__).parent / "compat_fixtures"


def _load() -> list[dict[str, Any]]:
    fixtures = []
    for path in sorted(HERE.glob("*.json")):
        for fixture in json.loads(path.read_text(encoding="utf-8"))["fixtures"]:
            fixtures.append({**fixture, "file": path.name})
    return fixtures


FIXTURES = _load()


def full_outcome(backward: str, forward: str) -> str:
    if "INCOMPATIBLE" in (backward, forward):
        return "INCOMPATIBLE"
    if "UNDECIDED" in (backward, forward):
        return "UNDECIDED"
    return "COMPATIBLE"


def assert_proven(found: Break, old: Any, new: Any, resources: Any) -> None:
    """The counterexample is accepted by the writer's schema and refused by the reader's."""
    writer, reader = (old, new) if found.direction == "backward" else (new, old)
    document = found.counterexample
    assert reference_validator(writer, resources=resources).is_valid(document), found
    assert not reference_validator(reader, resources=resources).is_valid(document), found


def reported(verdict: Verdict, direction: str) -> set[str]:
    return {b.rule for b in verdict.breaks if b.direction == direction} | {
        u.rule for u in verdict.undecided if u.direction == direction
    }


def test_corpus_is_large_and_ids_are_unique() -> None:
    ids = [f["id"] for f in FIXTURES]
    assert len(ids) >= 150
    assert len(ids) == len(set(ids))


def test_every_rule_is_exercised_by_a_fixture() -> None:
    exercised: set[str] = set()
    for fixture in FIXTURES:
        exercised |= set(fixture["rules"])
        exercised |= set(fixture.get("backward_rules", ()))
        exercised |= set(fixture.get("forward_rules", ()))
    assert {rule.id for rule in RULES} - exercised == set()
    assert exercised - {rule.id for rule in RULES} == set()


def test_both_policies_and_every_outcome_are_covered() -> None:
    assert {f["policy"] for f in FIXTURES} == {"DEFAULT", "ROBUST"}
    outcomes = {f["expect"][d] for f in FIXTURES for d in ("BACKWARD", "FORWARD")}
    assert outcomes == {"COMPATIBLE", "INCOMPATIBLE", "UNDECIDED"}


@pytest.mark.parametrize("fixture", FIXTURES, ids=[f"{f['file']}:{f['id']}" for f in FIXTURES])
def test_fixture(fixture: dict[str, Any]) -> None:
    old, new = fixture["old"], fixture["new"]
    policy = Policy(fixture["policy"])
    resources = fixture.get("resources")

    changes = {c.rule for c in diff(old, new, policy=policy, resources=resources)}
    assert set(fixture["rules"]) <= changes

    verdicts = {
        level: check(new, [(1, old)], level=level, policy=policy, resources=resources)
        for level in (Level.BACKWARD, Level.FORWARD, Level.FULL)
    }
    for verdict in verdicts.values():
        for found in verdict.breaks:
            assert_proven(found, old, new, resources)
    expected = fixture["expect"]
    assert {
        "BACKWARD": verdicts[Level.BACKWARD].outcome,
        "FORWARD": verdicts[Level.FORWARD].outcome,
        "FULL": verdicts[Level.FULL].outcome,
    } == {**expected, "FULL": full_outcome(expected["BACKWARD"], expected["FORWARD"])}
    assert set(fixture.get("backward_rules", ())) <= reported(verdicts[Level.BACKWARD], "backward")
    assert set(fixture.get("forward_rules", ())) <= reported(verdicts[Level.FORWARD], "forward")
