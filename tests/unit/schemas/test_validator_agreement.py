"""The compiled validator (jsonschema-rs) and the reference one (python-jsonschema) agree on
random schemas over a useful part of draft 2020-12, for random documents and for documents
derived from each schema (so both valid and invalid ones occur).

A disagreement is tolerated only when it is listed in KNOWN with its reason, and only when
taking out what that entry names (from the schema or the document) makes the two agree again.

KNOWN describes the two libraries at the versions in uv.lock, and nothing else. After an upgrade
(scripts/upgrade):
- `test_known_disagreement_still_occurs` fails for an entry the new versions no longer need:
  remove the entry (jsonschema-rs 0.61 made `large-integer-equals-float` go, for example);
- `test_validators_agree` fails on a new disagreement: find which validator is right by the
  specification; if it is the reference, report it to jsonschema-rs and add it to KNOWN with its
  reason and the smallest schema and document that show it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from schemas.validation import DRAFT_2020_12, compile_validator, reference_validator

Strategy = st.SearchStrategy[Any]

NAMES = ["so_dinh_danh", "ma_so_thue", "ngay_sinh", "a", "b"]
TYPES = ["null", "boolean", "integer", "number", "string", "array", "object"]
PATTERNS = ["^[0-9]{12}$", "^[0-9]{10}(-[0-9]{3})?$", "^[A-Z]", "abc", "^\\d+$", "^[a-z_]*$"]
DIVISORS = [1, 2, 3, 7, 0.5, 0.25, 0.1, 0.01]
# Valid and invalid strings for each format the strategy uses. Both validators call the same
# functions from schemas/formats.py for ours; what they must agree on is where those apply.
FORMAT_SAMPLES = {
    "date": ["2024-02-29", "2023-02-29", "2024-13-01", "20240229", "2024-2-9", "2024-02-29T00:00"],
    "email": ["cong.dan@example.gov.vn", "a@b", "@", "a@", "@b", "no-at-sign", "a b@c.vn"],
    "vn-personal-id": ["001099012345", "079203000123", "00109901234", "999099012345", "abc"],
    "vn-tax-code": ["0100109106", "0100109106-001", "0100109106-000", "0101234567", "abc"],
    "yyyyMMdd": ["20240229", "20230229", "20241301", "2024-02-29", "2024022"],
}


# JSON documents -------------------------------------------------------------------------------

# orjson, which parses the gateway's bodies, refuses integers beyond 64 bits and lone surrogates.
LARGE = [2**53 + 1, 2**62, 2**63 - 1, 2**63, -(2**63), 2**64 - 1]  # past exact floats
integers = st.integers(-(2**63), 2**64 - 1) | st.integers(-20, 20) | st.sampled_from(LARGE)
floats = st.floats(allow_nan=False, allow_infinity=False) | st.sampled_from(
    [0.0, -0.0, 0.1, 0.5, 1.5, 2.0, 0.3, 19.99, 1e308, 2.0**62, 2.0**63, -(2.0**63)]
)
texts = st.text(st.characters(exclude_categories=["Cs"]), max_size=8) | st.sampled_from(
    [sample for samples in FORMAT_SAMPLES.values() for sample in samples]
)
scalars = st.none() | st.booleans() | integers | floats | texts
documents: Strategy = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(st.sampled_from(NAMES) | texts, inner, max_size=4)
    ),
    max_leaves=10,
)


# Schemas --------------------------------------------------------------------------------------

small = st.integers(0, 5)
bounds = st.integers(-10, 10) | st.sampled_from([0.5, -1.5, 2.25, 1e3])
assertions = {
    "type": st.sampled_from(TYPES) | st.lists(st.sampled_from(TYPES), min_size=1, unique=True),
    "enum": st.lists(documents, min_size=1, max_size=4),
    "const": documents,
    "minimum": bounds,
    "maximum": bounds,
    "exclusiveMinimum": bounds,
    "exclusiveMaximum": bounds,
    "multipleOf": st.sampled_from(DIVISORS),
    "minLength": small,
    "maxLength": small,
    "pattern": st.sampled_from(PATTERNS),
    "format": st.sampled_from(sorted(FORMAT_SAMPLES)),
    "minItems": small,
    "maxItems": small,
    "uniqueItems": st.booleans(),
    "required": st.lists(st.sampled_from(NAMES), max_size=3, unique=True),
}


def _assertion_schemas() -> Strategy:
    # A few keywords at a time: with all of them most schemas would accept nothing.
    return st.lists(st.sampled_from(sorted(assertions)), max_size=3, unique=True).flatmap(
        lambda keys: st.fixed_dictionaries({key: assertions[key] for key in keys})
    )


def _applicator_schemas(inner: Strategy) -> Strategy:
    applicators = {
        "properties": st.dictionaries(st.sampled_from(NAMES), inner, max_size=3),
        "additionalProperties": inner,
        "items": inner,
        "prefixItems": st.lists(inner, min_size=1, max_size=3),
        "allOf": st.lists(inner, min_size=1, max_size=3),
        "anyOf": st.lists(inner, min_size=1, max_size=3),
        "oneOf": st.lists(inner, min_size=1, max_size=3),
        "not": inner,
    }
    keys = st.lists(st.sampled_from(sorted(applicators)), min_size=1, max_size=2, unique=True)
    chosen = keys.flatmap(lambda ks: st.fixed_dictionaries({k: applicators[k] for k in ks}))
    return st.tuples(chosen, _assertion_schemas()).map(lambda parts: {**parts[1], **parts[0]})


subschemas: Strategy = st.recursive(
    st.booleans() | _assertion_schemas(), _applicator_schemas, max_leaves=6
)
schemas: Strategy = subschemas.map(
    lambda schema: {"$schema": DRAFT_2020_12, **schema} if isinstance(schema, dict) else schema
)


def derived(schema: Any, depth: int = 0) -> Strategy:
    """Documents close to what `schema` accepts: at and around its bounds, its enum and const,
    its patterns and formats, objects and arrays built from its subschemas."""
    if not isinstance(schema, dict) or depth > 3:
        return documents
    near: list[Strategy] = [documents]
    if "const" in schema:
        near.append(st.sampled_from([schema["const"], _twin(schema["const"])]))
    if "enum" in schema:
        near.append(st.sampled_from(schema["enum"]).map(_twin))
    for key in ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"):
        if key in schema:
            bound = schema[key]
            near.append(st.sampled_from([bound, bound - 1, bound + 1, bound - 0.5, bound + 0.5]))
    if "multipleOf" in schema:
        near.append(st.integers(-50, 50).map(lambda n: n * schema["multipleOf"]))
    if "pattern" in schema:
        near.append(st.from_regex(schema["pattern"]))
    if "format" in schema:
        near.append(st.sampled_from(FORMAT_SAMPLES[schema["format"]]))
    for key in ("minLength", "maxLength"):
        if key in schema:
            size = schema[key]
            near.append(st.text("ab1", min_size=max(size - 1, 0), max_size=size + 1))
    for key in ("allOf", "anyOf", "oneOf"):
        for branch in schema.get(key, []):
            near.append(derived(branch, depth + 1))
    if "not" in schema:
        near.append(derived(schema["not"], depth + 1))
    if {"properties", "required", "additionalProperties"} & schema.keys():
        near.append(_objects(schema, depth))
    if {"items", "prefixItems", "minItems", "maxItems", "uniqueItems"} & schema.keys():
        near.append(_arrays(schema, depth))
    return st.one_of(near)


def _twin(value: Any) -> Any:
    """The same JSON value with its integers written as floats and integral floats as integers."""
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and float(value) == value:
        return float(value)
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, list):
        return [_twin(each) for each in value]
    if isinstance(value, dict):
        return {key: _twin(each) for key, each in value.items()}
    return value


def _objects(schema: Any, depth: int) -> Strategy:
    properties = schema.get("properties", {})
    names = set(properties) | set(schema.get("required", []))
    values = {name: derived(properties.get(name, True), depth + 1) for name in names}
    extra = derived(schema.get("additionalProperties", True), depth + 1)
    return st.tuples(
        st.fixed_dictionaries({}, optional=values),
        st.dictionaries(st.sampled_from(NAMES) | texts, extra, max_size=2),
    ).map(lambda parts: {**parts[1], **parts[0]})


def _arrays(schema: Any, depth: int) -> Strategy:
    head = st.tuples(*(derived(each, depth + 1) for each in schema.get("prefixItems", [])))
    item = derived(schema.get("items", True), depth + 1)
    tail = st.lists(item, max_size=4)
    repeated = st.lists(item, min_size=1, max_size=3).map(lambda items: items + items[:1])
    return st.tuples(head, tail | repeated).map(lambda parts: [*parts[0], *parts[1]])


# Known disagreements --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Known:
    reason: str
    # The schema and document without what makes them disagree; applied to a counterexample,
    # the two validators must agree again for it to count as this known disagreement.
    neutralise: Callable[[Any, Any], tuple[Any, Any]]
    example: tuple[Any, Any]  # a schema and a document they still disagree on


def _without(keyword: str, applies: Callable[[Any], bool]) -> Callable[[Any, Any], Any]:
    def strip(node: Any) -> Any:
        if isinstance(node, list):
            return [strip(each) for each in node]
        if not isinstance(node, dict):
            return node
        return {
            key: value if key in ("enum", "const") else strip(value)
            for key, value in node.items()
            if not (key == keyword and not isinstance(value, dict | list) and applies(value))
        }

    return lambda schema, document: (strip(schema), document)


KNOWN: dict[str, Known] = {
    "pattern-dollar": Known(
        "python-jsonschema runs `pattern` with Python's re, where `$` also matches before a final "
        "newline; in ECMA-262, as in jsonschema-rs, it matches only at the end",
        _without("pattern", lambda pattern: "$" in pattern),
        ({"pattern": "^[0-9]{12}$"}, "001099012345\n"),
    ),
    "pattern-unicode-classes": Known(
        "in Python's re `\\d` and `\\w` match any Unicode digit or letter; in ECMA-262 without "
        "the u flag, as in jsonschema-rs, only ASCII ones",
        _without("pattern", lambda pattern: "\\" in pattern),
        ({"pattern": "^\\d+$"}, "\u0660\u0661"),
    ),
    "email": Known(
        "python-jsonschema's `email` only looks for an @; jsonschema-rs parses the address",
        _without("format", lambda name: name == "email"),
        ({"format": "email"}, "a@"),
    ),
    "multipleOf-fraction": Known(
        "python-jsonschema divides in binary floating point, so 19.99 is no multiple of 0.01 for "
        "it; jsonschema-rs says it is",
        _without("multipleOf", lambda divisor: divisor != int(divisor)),
        ({"multipleOf": 0.01}, 19.99),
    ),
}


def _agree(schema: Any, document: Any) -> bool:
    return bool(
        compile_validator(schema).is_valid(document)
        == reference_validator(schema).is_valid(document)
    )


# Tests ----------------------------------------------------------------------------------------


@settings(max_examples=400, deadline=None)
@given(st.data())
def test_validators_agree(data: st.DataObject) -> None:
    schema = data.draw(schemas, label="schema")
    instances = data.draw(st.lists(derived(schema), min_size=1, max_size=6), label="documents")
    compiled, reference = compile_validator(schema), reference_validator(schema)

    for document in instances:
        verdicts = compiled.is_valid(document), reference.is_valid(document)
        if verdicts[0] != verdicts[1]:
            known = [name for name, k in KNOWN.items() if _agree(*k.neutralise(schema, document))]
            assert known, f"on {document!r}: compiled says {verdicts[0]}, reference {verdicts[1]}"


@pytest.mark.parametrize("name", sorted(KNOWN))
def test_known_disagreement_still_occurs(name: str) -> None:
    schema, document = KNOWN[name].example

    assert not _agree(schema, document), f"they agree now: remove {name!r} from KNOWN"
    assert _agree(*KNOWN[name].neutralise(schema, document)), "neutralise misses it"


# Standard formats -----------------------------------------------------------------------------

# A string each standard format rejects (from the suite's draft2020-12/format.json).
NOT_OF_FORMAT = {
    "email": "2962",
    "idn-email": "2962",
    "regex": "^(abc]",
    "ipv4": "127.0.0.0.1",
    "ipv6": "12345::",
    "idn-hostname": "\u302e\uc2e4\ub840.\ud14c\uc2a4\ud2b8",
    "hostname": "-a-host-name-that-starts-with--",
    "date": "06/19/1963",
    "date-time": "1990-02-31T15:59:60.123-08:00",
    "time": "08:30:06 PST",
    "json-pointer": "/foo/bar~",
    "relative-json-pointer": "/foo/bar",
    "iri": "http://2001:0db8:85a3:0000:0000:8a2e:0370:7334",
    "iri-reference": "\\\\WINDOWS\\fil\u00eb\u00df\u00e5r\u00e9",
    "uri": "//foo.bar/?baz=qux#quux",
    "uri-reference": "\\\\WINDOWS\\fileshare",
    "uri-template": "http://example.com/dictionary/{term:1}/{term",
    "uuid": "2eb8aa08-aa98-11ea-b4aa-73b441d1638",
    "duration": "PT1D",
}
# python-jsonschema checks these only when an optional package is importable (the extra
# jsonschema[format-nongpl]); without it the reference validator accepts any string for them.
UNCHECKED_BY_REFERENCE: dict[str, str] = {}  # format -> the package python-jsonschema lacks


@pytest.mark.parametrize("name", sorted(NOT_OF_FORMAT))
def test_both_validators_assert_standard_format(name: str) -> None:
    schema, document = {"$schema": DRAFT_2020_12, "format": name}, NOT_OF_FORMAT[name]

    assert not compile_validator(schema).is_valid(document)
    if name in UNCHECKED_BY_REFERENCE:
        assert reference_validator(schema).is_valid(document), (
            f"the reference validator checks {name} now: remove it from UNCHECKED_BY_REFERENCE"
        )
    else:
        assert not reference_validator(schema).is_valid(document)
