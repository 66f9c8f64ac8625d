"""`x-vn-personal-id`: the number agrees with the birth date and sex beside it, under both
validators, with the same error at the same place."""

from __future__ import annotations

from typing import Any

import jsonschema
import jsonschema_rs
import pytest

from schemas.checks import problems
from schemas.keywords import check_keyword_value
from schemas.validation import compile_validator, pointer, reference_validator

RULE = {"id": "so_dinh_danh", "birth_date": "ngay_sinh", "sex": "gioi_tinh"}
PERSON_SCHEMA = {
    "type": "object",
    "properties": {"nguoi": {"x-vn-personal-id": RULE}},  # applies to objects only
}


def _errors(schema: Any, document: Any) -> list[tuple[str, str]]:
    """(pointer, message) of both validators, after checking that they agree."""
    compiled = [
        (pointer(*e.instance_path), e.message)
        for e in compile_validator(schema).iter_errors(document)
    ]
    reference = [
        (pointer(*e.absolute_path), e.message)
        for e in reference_validator(schema).iter_errors(document)
    ]
    assert sorted(compiled) == sorted(reference)
    return compiled


def person(**fields: Any) -> dict[str, Any]:
    return {
        "nguoi": {"so_dinh_danh": "012090001234", "ngay_sinh": "19900517", "gioi_tinh": 1, **fields}
    }


@pytest.mark.parametrize(
    "document",
    [
        person(),
        person(ngay_sinh="1990-05-17"),
        person(ngay_sinh="17/05/1990"),
        person(gioi_tinh="1"),
        person(so_dinh_danh="012185000101", ngay_sinh="19850302", gioi_tinh=2),
        person(so_dinh_danh="012325900001", ngay_sinh="20250702", gioi_tinh=2),
    ],
)
def test_a_consistent_person_passes(document: dict[str, Any]) -> None:
    assert _errors(PERSON_SCHEMA, document) == []


@pytest.mark.parametrize(
    ("document", "message"),
    [
        (
            person(ngay_sinh="19910517"),
            "so_dinh_danh encodes birth year 1990 in digits 4-6 (090) but ngay_sinh gives 1991",
        ),
        (
            person(ngay_sinh="2090-05-17"),
            "so_dinh_danh encodes birth year 1990 in digits 4-6 (090) but ngay_sinh gives 2090",
        ),
        (
            person(gioi_tinh=2),
            "so_dinh_danh encodes sex 1 (nam) in digit 4 (G=0) but gioi_tinh is 2 (nữ)",
        ),
        (
            person(gioi_tinh="2"),
            "so_dinh_danh encodes sex 1 (nam) in digit 4 (G=0) but gioi_tinh is 2 (nữ)",
        ),
        (
            person(ngay_sinh="17/05/1991", gioi_tinh=2),
            "so_dinh_danh encodes birth year 1990 in digits 4-6 (090) but ngay_sinh gives 1991; "
            "so_dinh_danh encodes sex 1 (nam) in digit 4 (G=0) but gioi_tinh is 2 (nữ)",
        ),
        (
            person(ngay_sinh="18990517"),
            "ngay_sinh gives birth year 1899, which no personal identification number in "
            "so_dinh_danh can encode (1900-2399)",
        ),
    ],
)
def test_a_contradiction_is_reported_at_the_object_naming_both_fields(
    document: dict[str, Any], message: str
) -> None:
    assert _errors(PERSON_SCHEMA, document) == [("/nguoi", message)]


@pytest.mark.parametrize(
    "document",
    [
        {"nguoi": {}},
        {"nguoi": {"so_dinh_danh": "012090001234"}},  # nothing to compare with
        {"nguoi": {"ngay_sinh": "19910517", "gioi_tinh": 2}},  # no number
        person(so_dinh_danh="01209000123"),  # not 12 digits: the format's business
        person(so_dinh_danh=12090001234),
        person(ngay_sinh="19911317"),  # not a date: the format's business
        person(ngay_sinh="1991/05/17"),
        person(ngay_sinh=19910517),
        person(gioi_tinh=3),
        person(gioi_tinh=True),
        person(gioi_tinh="nữ"),
        {"nguoi": "012090001234"},
        {"nguoi": ["012090001234", "19910517"]},
    ],
)
def test_what_cannot_be_read_is_left_to_other_keywords(document: dict[str, Any]) -> None:
    assert _errors(PERSON_SCHEMA, document) == []


def test_birth_date_alone_or_sex_alone() -> None:
    by_date = {"x-vn-personal-id": {"id": "so", "birth_date": "sinh"}}
    by_sex = {"x-vn-personal-id": {"id": "so", "sex": "gioi"}}
    document = {"so": "012090001234", "sinh": "19910517", "gioi": 2}
    assert [p for p, _ in _errors(by_date, document)] == [""]
    assert "gioi" not in _errors(by_date, document)[0][1]
    assert [p for p, _ in _errors(by_sex, document)] == [""]
    assert "sinh" not in _errors(by_sex, document)[0][1]


def test_through_refs_and_arrays_the_error_points_at_each_object() -> None:
    schema = {
        "type": "array",
        "items": {"$ref": "#/$defs/nguoi"},
        "$defs": {"nguoi": {"x-vn-personal-id": RULE}},
    }
    good, bad = person()["nguoi"], person(ngay_sinh="19910517")["nguoi"]
    assert [p for p, _ in _errors(schema, [good, bad, good, bad])] == ["/1", "/3"]


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        (
            "so_dinh_danh",
            "x-vn-personal-id must be an object naming properties: id, and birth_date and/or sex",
        ),
        (
            {"birth_date": "ngay_sinh"},
            "x-vn-personal-id needs id: the property holding the personal identification number",
        ),
        (
            {"id": "so_dinh_danh"},
            "x-vn-personal-id needs birth_date, sex or both: the fields the number must agree with",
        ),
        (
            {"id": "so_dinh_danh", "birth_date": ""},
            "x-vn-personal-id.birth_date must be the name of a property (a non-empty string)",
        ),
        (
            {"id": 1, "sex": "gioi_tinh"},
            "x-vn-personal-id.id must be the name of a property (a non-empty string)",
        ),
        (
            {"id": "so", "sex": "so"},
            "x-vn-personal-id must name a different property for each of id, birth_date and sex",
        ),
        (
            {"id": "so", "sex": "gioi", "format": "yyyyMMdd"},
            "x-vn-personal-id knows id, birth_date and sex, not format",
        ),
    ],
)
def test_a_malformed_keyword_value_is_refused(value: Any, problem: str) -> None:
    assert check_keyword_value(value) == problem
    schema = {"type": "object", "properties": {"p": {"x-vn-personal-id": value}}}
    with pytest.raises(jsonschema_rs.ValidationError, match="x-vn-personal-id"):
        compile_validator(schema)
    with pytest.raises(jsonschema.SchemaError) as refused:
        list(reference_validator(schema).iter_errors({"p": {}}))
    assert refused.value.message == problem
    found = problems(schema)
    assert len(found) == 1
    assert problem in found[0].message
    assert "/properties/p/x-vn-personal-id" in found[0].message


@pytest.mark.parametrize(
    "value",
    [RULE, {"id": "SoDinhDanh", "birth_date": "NgaySinh"}, {"id": "so", "sex": "gioi"}],
)
def test_a_well_formed_keyword_value_is_accepted(value: dict[str, str]) -> None:
    assert check_keyword_value(value) is None
    assert problems({"type": "object", "x-vn-personal-id": value}) == []
