"""The instance generator behind the counterexamples: regexes, formats, minimal instances and
values past a bound, each checked with the reference validator."""

from __future__ import annotations

import re
from fractions import Fraction
from typing import Any

import pytest

from schemas.compatibility import format_samples, regex_sample
from schemas.compatibility.generate import MISSING, Gen
from schemas.compatibility.scope import Document, flatten
from schemas.formats import FORMATS
from schemas.validation import DRAFT_07, reference_validator


def node(schema: Any) -> Any:
    return flatten(Document.load(schema).top)


@pytest.mark.parametrize(
    "pattern",
    [
        "^[0-9]{12}$",
        "^[0-9]{9,12}$",
        "^(a|bc)+x?$",
        r"^\d{3}\.\d{2}\.\d{2}\.[A-Z]\d{2}$",
        "[^a-z]+",
        "^S_",
        r"(ab)\1",
        r"^\w+@\w+\.vn$",
    ],
)
def test_regex_samples_match(pattern: str) -> None:
    found = list(regex_sample.samples(pattern))
    assert found
    assert all(re.search(pattern, text) for text in found)
    for text in regex_sample.samples(pattern, length=11):
        assert re.search(pattern, text)


def test_regex_samples_reach_a_target_length() -> None:
    assert {len(t) for t in regex_sample.samples("^[0-9]{9,12}$", length=11)} == {11}


def test_an_invalid_regex_has_no_samples() -> None:
    assert list(regex_sample.samples("([")) == []


@pytest.mark.parametrize("name", sorted(FORMATS))
def test_every_hub_format_has_a_sample_its_checker_accepts(name: str) -> None:
    found = list(format_samples.samples(name))
    assert found
    assert all(FORMATS[name](text) for text in found)


@pytest.mark.parametrize("name", ["date", "email", "uuid", "ipv4"])
def test_standard_format_samples_conform(name: str) -> None:
    found = list(format_samples.samples(name))
    assert found and all(format_samples.conforms(name, text) for text in found)


HO_SO = {
    "type": "object",
    "properties": {
        "so_dinh_danh": {"type": "string", "format": "vn-personal-id"},
        "ma_so_thue": {"type": "string", "format": "vn-tax-code"},
        "ngay_sinh": {"type": "string", "format": "date"},
        "so_dien_thoai": {"type": "string", "format": "vn-phone"},
        "ma_xa": {"type": "string", "format": "vn-commune-code"},
        "ho_ten": {"type": "string", "minLength": 2, "maxLength": 100},
        "loai": {"enum": ["ca_nhan", "to_chuc"]},
        "diem": {"type": "number", "exclusiveMinimum": 0, "maximum": 10, "multipleOf": 0.5},
        "the": {"type": "array", "items": {"type": "string"}, "minItems": 2, "uniqueItems": True},
        "dia_chi": {"$ref": "#/$defs/dia_chi"},
    },
    "required": [
        "so_dinh_danh",
        "ma_so_thue",
        "ngay_sinh",
        "so_dien_thoai",
        "ma_xa",
        "ho_ten",
        "loai",
        "diem",
        "the",
        "dia_chi",
    ],
    "additionalProperties": False,
    "$defs": {
        "dia_chi": {
            "type": "object",
            "properties": {"tinh": {"type": "string", "pattern": "^[0-9]{2}$"}},
            "required": ["tinh"],
        }
    },
}

VALID = [
    HO_SO,
    {"type": "integer", "exclusiveMinimum": 5, "exclusiveMaximum": 7},
    {"type": "array", "contains": {"type": "integer"}, "minContains": 2, "maxItems": 3},
    {"anyOf": [{"type": "null"}, {"type": "string", "format": "email"}]},
    {"oneOf": [{"const": 1}, {"type": "string", "maxLength": 0}]},
    {"$schema": DRAFT_07, "items": [{"type": "string"}, {"type": "integer"}], "minItems": 2},
    {"type": "object", "dependentRequired": {"a": ["b"]}, "required": ["a"]},
    {"type": "object", "minProperties": 3},
    True,
]


@pytest.mark.parametrize("schema", VALID)
def test_minimal_instances_are_valid(schema: Any) -> None:
    value = Gen().instance(node(schema))
    assert value is not MISSING
    assert reference_validator(schema).is_valid(value), value


@pytest.mark.parametrize("schema", VALID)
def test_samples_are_mostly_valid_and_distinct(schema: Any) -> None:
    found = list(Gen().samples(node(schema)))
    validator = reference_validator(schema)
    assert found and validator.is_valid(found[0])
    assert len({repr(v) for v in found}) == len(found)


def test_nothing_for_false() -> None:
    assert Gen().instance(node(False)) is MISSING
    assert Gen().instance(node({"type": "string", "minLength": 3, "maxLength": 2})) is MISSING


def test_numbers_past_a_bound_stay_within_the_writer() -> None:
    writer = node({"type": "integer", "minimum": 0, "maximum": 100, "multipleOf": 5})
    above = list(Gen().numbers(writer, integer=True, above=(Fraction(42), False)))
    assert above and all(42 < v <= 100 and v % 5 == 0 for v in above)
    below = list(Gen().numbers(writer, integer=True, below=(Fraction(10), True)))
    assert below and all(0 <= v <= 10 and v % 5 == 0 for v in below)


def test_strings_of_a_given_length_keep_the_pattern() -> None:
    writer = node({"type": "string", "pattern": "^[0-9]+$"})
    text = next(Gen().strings(writer, length=13))
    assert len(text) == 13 and text.isdigit()


def test_objects_with_and_without_a_property() -> None:
    gen = Gen()
    schema = {"type": "object", "properties": {"a": {"type": "integer"}}, "required": ["b"]}
    present = gen.instance(node(schema), present=("a",))
    absent = gen.instance(node(schema), absent=("b",))
    assert "a" in present and "b" in present
    assert absent == {}
