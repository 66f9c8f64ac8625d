"""check() and diff() as the admin API and the CLI call them: levels, versions, undecided
findings, references, boolean schemas, the validator hook and the JSON answer."""

from __future__ import annotations

import json
from typing import Any

import pytest

from schemas.compatibility import InvalidSchema, Level, Policy, Verdict, check, diff
from schemas.validation import (
    DRAFT_07,
    UnresolvedReference,
    compile_validator,
    reference_validator,
)


def person(**extra: Any) -> dict[str, Any]:
    properties: dict[str, Any] = {
        "so_dinh_danh": {"type": "string", "pattern": "^[0-9]{12}$"},
        "ho_ten": {"type": "string", "maxLength": 100},
        **extra,
    }
    return {
        "type": "object",
        "properties": properties,
        "required": ["so_dinh_danh"],
        "additionalProperties": False,
    }


V1 = person(ghi_chu={"type": "string", "maxLength": 500})
V2 = person(ghi_chu={"type": "string", "maxLength": 200})  # tighter than v1
V3 = person(ghi_chu={"type": "string", "maxLength": 200}, email={"type": "string"})


def proven(verdict: Verdict, old: Any, new: Any) -> None:
    for found in verdict.breaks:
        writer, reader = (old, new) if found.direction == "backward" else (new, old)
        assert reference_validator(writer).is_valid(found.counterexample)
        assert not reference_validator(reader).is_valid(found.counterexample)


# --- levels and versions -------------------------------------------------------------------


def test_backward_checks_only_the_latest_version() -> None:
    verdict = check(V3, [(1, V1), (2, V2)], level=Level.BACKWARD)
    assert verdict.outcome == "COMPATIBLE"
    assert verdict.is_compatible is True


def test_backward_transitive_breaks_against_v1_only() -> None:
    verdict = check(V3, [(1, V1), (2, V2)], level=Level.BACKWARD_TRANSITIVE)
    assert verdict.outcome == "INCOMPATIBLE"
    assert {b.version for b in verdict.breaks} == {1}
    (found,) = verdict.breaks
    assert found.rule == "MAX_LENGTH_DECREASED"
    assert found.pointer == "/properties/ghi_chu/maxLength"
    assert found.direction == "backward"
    assert "'ghi_chu'" in found.message and "200" in found.message and "500" in found.message
    proven(verdict, V1, V3)


def test_forward_transitive_names_the_version_and_direction() -> None:
    verdict = check(V3, [(1, V1), (2, V2)], level=Level.FORWARD_TRANSITIVE)
    assert verdict.outcome == "INCOMPATIBLE"
    assert {(b.version, b.rule, b.direction) for b in verdict.breaks} == {
        (1, "PROPERTY_REMOVED_FROM_CLOSED_CONTENT_MODEL", "forward"),
        (2, "PROPERTY_REMOVED_FROM_CLOSED_CONTENT_MODEL", "forward"),
    }
    for found in verdict.breaks:
        assert found.pointer == "/properties/email"
        assert "email" in found.counterexample
    proven(verdict, V2, V3)


def test_full_transitive_collects_both_directions() -> None:
    verdict = check(V3, [(1, V1), (2, V2)], level=Level.FULL_TRANSITIVE)
    assert {(b.version, b.direction) for b in verdict.breaks} == {
        (1, "backward"),
        (1, "forward"),
        (2, "forward"),
    }


def test_full_is_backward_and_forward() -> None:
    backward = check(V2, [(1, V1)], level=Level.BACKWARD)
    forward = check(V2, [(1, V1)], level=Level.FORWARD)
    full = check(V2, [(1, V1)], level=Level.FULL)
    assert (backward.outcome, forward.outcome, full.outcome) == (
        "INCOMPATIBLE",
        "COMPATIBLE",
        "INCOMPATIBLE",
    )


def test_none_checks_nothing() -> None:
    verdict = check({"type": "integer"}, [(1, {"type": "string"})], level=Level.NONE)
    assert verdict.outcome == "COMPATIBLE"
    assert verdict.breaks == () and verdict.undecided == ()


def test_first_version_is_compatible_with_nothing() -> None:
    assert check(V1, [], level=Level.FULL_TRANSITIVE).outcome == "COMPATIBLE"


def test_levels_and_policies_accept_their_names() -> None:
    # Names as a manifest or a caller writes them, where the signature says the enums.
    verdict = check(V2, [(1, V1)], level="BACKWARD", policy="ROBUST")  # type: ignore[arg-type]
    assert verdict.level is Level.BACKWARD and verdict.policy is Policy.ROBUST


# --- undecided -----------------------------------------------------------------------------


def test_undecided_when_no_counterexample_exists_for_an_incompatible_rule() -> None:
    old = {"type": "string", "pattern": "^[0-9]{12}$"}
    new = {"type": "string", "pattern": "^[0-9]{9,12}$"}
    verdict = check(new, [(7, old)], level=Level.BACKWARD)
    assert verdict.outcome == "UNDECIDED"
    assert verdict.is_compatible is None
    (undecided,) = verdict.undecided
    assert (undecided.rule, undecided.pointer, undecided.version) == (
        "PATTERN_CHANGED",
        "/pattern",
        7,
    )
    assert "does not guess" in undecided.message


def test_breaks_win_over_undecided() -> None:
    old = {"type": "object", "properties": {"a": {"type": "string", "pattern": "^[0-9]{12}$"}}}
    new = {
        "type": "object",
        "properties": {"a": {"type": "string", "pattern": "^[0-9]{9,12}$"}},
        "required": ["a"],
    }
    verdict = check(new, [(1, old)], level=Level.BACKWARD)
    assert verdict.undecided and verdict.breaks
    assert verdict.outcome == "INCOMPATIBLE" and verdict.is_compatible is False


def test_conditionals_are_undecided_unless_a_document_proves_them() -> None:
    never = {"type": "string", "if": {"type": "integer"}, "then": False}
    verdict = check(never, [(1, {"type": "string"})], level=Level.BACKWARD)
    assert [u.rule for u in verdict.undecided] == ["CONDITIONAL_ADDED"]
    assert "rule table cannot decide" in verdict.undecided[0].message


# --- boolean schemas, references, drafts ---------------------------------------------------


@pytest.mark.parametrize(
    ("old", "new", "outcome"),
    [
        (True, {"type": "string"}, "INCOMPATIBLE"),
        ({"type": "string"}, True, "COMPATIBLE"),
        (False, {"type": "string"}, "COMPATIBLE"),
        ({}, False, "INCOMPATIBLE"),
        (True, {}, "COMPATIBLE"),
        (False, False, "COMPATIBLE"),
    ],
)
def test_boolean_schemas(old: Any, new: Any, outcome: str) -> None:
    verdict = check(new, [(1, old)], level=Level.BACKWARD)
    assert verdict.outcome == outcome
    proven(verdict, old, new)


def test_true_to_string_break_has_a_non_string_counterexample() -> None:
    (found,) = check({"type": "string"}, [(1, True)], level=Level.BACKWARD).breaks
    assert not isinstance(found.counterexample, str)


def test_cyclic_local_reference() -> None:
    def tree(limit: int) -> dict[str, Any]:
        node = {
            "type": "object",
            "properties": {
                "ten": {"type": "string", "maxLength": limit},
                "con": {"type": "array", "items": {"$ref": "#/$defs/node"}},
            },
        }
        return {"$defs": {"node": node}, "$ref": "#/$defs/node"}

    assert check(tree(10), [(1, tree(10))], level=Level.FULL).outcome == "COMPATIBLE"
    verdict = check(tree(5), [(1, tree(10))], level=Level.FULL)
    assert [(b.rule, b.direction) for b in verdict.breaks] == [("MAX_LENGTH_DECREASED", "backward")]
    assert verdict.breaks[0].pointer == "/$defs/node/properties/ten/maxLength"
    proven(verdict, tree(10), tree(5))


def test_mutually_recursive_definitions_change_deep_down() -> None:
    def schema(kind: str) -> dict[str, Any]:
        return {
            "$defs": {
                "a": {"type": "object", "properties": {"b": {"$ref": "#/$defs/b"}}},
                "b": {
                    "type": "object",
                    "properties": {"a": {"$ref": "#/$defs/a"}, "v": {"type": kind}},
                },
            },
            "$ref": "#/$defs/a",
        }

    verdict = check(schema("integer"), [(1, schema("number"))], level=Level.BACKWARD)
    (found,) = verdict.breaks
    assert (found.rule, found.pointer) == ("TYPE_NARROWED", "/$defs/b/properties/v/type")
    assert found.counterexample == {"b": {"v": 0.5}}


def test_draft07_definitions_and_ignored_ref_siblings() -> None:
    def schema(limit: int) -> dict[str, Any]:
        return {
            "$schema": DRAFT_07,
            "definitions": {"ma": {"type": "string", "maxLength": limit}},
            "properties": {"a": {"$ref": "#/definitions/ma", "maxLength": 1}},
        }

    verdict = check(schema(5), [(1, schema(8))], level=Level.BACKWARD)
    (found,) = verdict.breaks
    assert found.pointer == "/definitions/ma/maxLength"
    assert found.counterexample == {"a": "aaaaaa"}  # the sibling maxLength 1 is ignored


def test_registered_references_resolve_by_name() -> None:
    resources = {"ma-tinh.json": {"type": "string", "pattern": "^[0-9]{2}$"}}
    old = {"properties": {"ma_tinh": {"$ref": "ma-tinh.json"}}}
    new = {"properties": {"ma_tinh": {"$ref": "ma-tinh.json"}}, "required": ["ma_tinh"]}
    verdict = check(new, [(1, old)], level=Level.FULL, resources=resources)
    assert [b.rule for b in verdict.breaks] == ["REQUIRED_ATTRIBUTE_ADDED"]


def test_unresolved_reference_is_refused() -> None:
    with pytest.raises(UnresolvedReference):
        check({"$ref": "missing.json"}, [(1, {"type": "string"})], level=Level.BACKWARD)


# --- the validator hook, diff and the JSON answer ------------------------------------------


def test_a_plugged_validator_must_agree_before_a_break_is_reported() -> None:
    old, new = {"type": "string"}, {"type": "string", "maxLength": 3}
    seen: list[Any] = []

    def agrees(schema: Any, instance: Any) -> bool:
        seen.append(instance)
        return bool(reference_validator(schema).is_valid(instance))

    assert check(new, [(1, old)], level=Level.BACKWARD, validate=agrees).outcome == "INCOMPATIBLE"
    assert seen

    def accepts_all(schema: Any, instance: Any) -> bool:
        return True

    verdict = check(new, [(1, old)], level=Level.BACKWARD, validate=accepts_all)
    assert verdict.outcome == "UNDECIDED"


def test_diff_lists_each_change_with_both_verdicts() -> None:
    changes = {c.rule: c for c in diff(V1, V3)}
    assert set(changes) == {
        "MAX_LENGTH_DECREASED",
        "OPTIONAL_PROPERTY_ADDED_TO_UNOPEN_CONTENT_MODEL",
    }
    narrowed = changes["MAX_LENGTH_DECREASED"]
    assert (narrowed.pointer, narrowed.backward, narrowed.forward) == (
        "/properties/ghi_chu/maxLength",
        False,
        True,
    )
    added = changes["OPTIONAL_PROPERTY_ADDED_TO_UNOPEN_CONTENT_MODEL"]
    assert (added.pointer, added.backward, added.forward) == ("/properties/email", True, False)
    assert "'email'" in added.message and "new schema" in added.message


def test_diff_under_robust_policy() -> None:
    old = {"type": "object", "properties": {"a": {"type": "string"}}}
    new = {"type": "object", "properties": {"a": {"type": "string"}, "b": {"type": "integer"}}}
    (default,) = diff(old, new)
    (robust,) = diff(old, new, policy=Policy.ROBUST)
    assert default.rule == robust.rule == "OPTIONAL_PROPERTY_ADDED_TO_OPEN_CONTENT_MODEL"
    assert (default.backward, robust.backward) == (False, True)


def test_verdict_to_json_is_the_api_answer() -> None:
    verdict = check(V3, [(1, V1), (2, V2)], level=Level.BACKWARD_TRANSITIVE)
    answer = json.loads(json.dumps(verdict.to_json()))
    assert answer["outcome"] == "INCOMPATIBLE"
    assert answer["is_compatible"] is False
    assert (answer["level"], answer["policy"]) == ("BACKWARD_TRANSITIVE", "DEFAULT")
    (found,) = answer["breaks"]
    assert set(found) == {"pointer", "rule", "message", "direction", "version", "counterexample"}
    assert found["version"] == 1 and found["direction"] == "backward"
    assert answer["undecided"] == []


def test_the_data_plane_validator_can_confirm_counterexamples() -> None:
    def data_plane(schema: Any, instance: Any) -> bool:
        return bool(compile_validator(schema).is_valid(instance))

    verdict = check(V3, [(1, V1)], level=Level.FULL, validate=data_plane)
    assert {(b.rule, b.direction) for b in verdict.breaks} == {
        ("MAX_LENGTH_DECREASED", "backward"),
        ("PROPERTY_REMOVED_FROM_CLOSED_CONTENT_MODEL", "forward"),
    }
    for found in verdict.breaks:
        writer, reader = (V1, V3) if found.direction == "backward" else (V3, V1)
        assert data_plane(writer, found.counterexample)
        assert not data_plane(reader, found.counterexample)


@pytest.mark.parametrize(
    "schema", [{"not": None}, {"type": 5}, {"required": "ho_ten"}, {"properties": []}]
)
def test_invalid_schemas_are_refused_with_the_reason(schema: Any) -> None:
    with pytest.raises(InvalidSchema, match="schema of version 3 is not a valid JSON Schema"):
        check({"type": "object"}, [(3, schema)], level=Level.BACKWARD)
    with pytest.raises(InvalidSchema, match="new schema"):
        check(schema, [(3, {"type": "object"})], level=Level.BACKWARD)


def test_a_huge_array_bound_is_judged_without_building_it() -> None:
    """minContains 10^9: the break is reported; no counterexample of 10^9 items is built (it
    was, and the registry answered 500 with a MemoryError: found by test_fuzz_schemas)."""
    old = {"type": "array", "contains": {"type": "integer"}, "minContains": 1}
    new = {"type": "array", "contains": {"type": "integer"}, "minContains": 1_000_000_000}
    verdict = check(new, [(1, old)], level=Level.BACKWARD)
    assert [b.rule for b in verdict.breaks] == ["MIN_CONTAINS_INCREASED"]
