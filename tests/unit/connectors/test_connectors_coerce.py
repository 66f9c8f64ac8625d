"""Schema-guided typing of SOAP replies."""

from __future__ import annotations

from typing import Any

import pytest

from connectors.soap.coerce import coerce


@pytest.mark.parametrize(
    ("value", "schema", "expected"),
    [
        ("true", {"type": "boolean"}, True),
        ("1", {"type": "boolean"}, True),
        (" false ", {"type": "boolean"}, False),
        ("yes", {"type": "boolean"}, "yes"),  # left for validation to report
        ("42", {"type": "integer"}, 42),
        ("-7", {"type": "integer"}, -7),
        ("4.2", {"type": "integer"}, "4.2"),
        ("4.5", {"type": "number"}, 4.5),
        ("1e3", {"type": "number"}, 1000.0),
        ("12", {"type": "number"}, 12),
        ("NaN", {"type": "number"}, "NaN"),
        ("", {"type": ["integer", "null"]}, None),
        ("", {"type": ["string", "null"]}, ""),
        ("5", {"type": ["null", "integer"]}, 5),
        ("5", {"type": "string"}, "5"),
        (None, {"type": "integer"}, None),
        ("5", {}, "5"),
        ("5", None, "5"),
    ],
)
def test_scalars(value: Any, schema: Any, expected: Any) -> None:
    assert coerce(value, schema) == expected


def test_arrays_wrap_unwrap_and_empty() -> None:
    ints = {"type": "array", "items": {"type": "integer"}}
    assert coerce("3", ints) == [3]
    assert coerce(["1", "2"], ints) == [1, 2]
    assert coerce("", ints) == []
    assert coerce({"So": ["1", "2"]}, ints) == [1, 2]  # <DanhSach><So>1</So><So>2</So>
    assert coerce({"So": "1"}, ints) == [1]
    people = {"type": "array", "items": {"type": "object", "properties": {"ten": {}}}}
    assert coerce({"ten": "A"}, people) == [{"ten": "A"}]  # a lone item, not a wrapper
    assert coerce({"Nguoi": {"ten": "A"}}, people) == [{"ten": "A"}]
    assert coerce({"Nguoi": [{"ten": "A"}, {"ten": "B"}]}, people) == [{"ten": "A"}, {"ten": "B"}]
    anything = {"type": "array", "items": {"type": "object"}}
    assert coerce({"ma": "1"}, anything) == [{"ma": "1"}]


def test_objects_properties_additional_and_refs() -> None:
    schema = {
        "type": "object",
        "properties": {"tuoi": {"$ref": "#/$defs/int"}, "con": {"$ref": "#/$defs/list"}},
        "additionalProperties": {"type": "boolean"},
        "$defs": {"int": {"type": "integer"}, "list": {"type": "array", "items": {"$ref": "#"}}},
    }
    value = {"tuoi": "9", "khac": "true", "con": {"tuoi": "1"}}
    assert coerce(value, schema) == {"tuoi": 9, "khac": True, "con": [{"tuoi": 1}]}


def test_ref_cycles_give_up() -> None:
    schema = {"$ref": "#/$defs/a", "$defs": {"a": {"$ref": "#/$defs/a"}}}
    assert coerce("1", schema) == "1"
