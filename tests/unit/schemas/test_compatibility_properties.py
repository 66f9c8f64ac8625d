"""Properties over random schema pairs: a COMPATIBLE verdict is never contradicted by a document,
and every reported break carries a document that really breaks.

Documents come from the checker's own generator, varied by hypothesis (values replaced, keys
added and dropped, arrays grown) and kept only when the old schema accepts them. Schemas carry
no `default` (a required property with a default is compatible by convention, not by
validation) and the policy is DEFAULT (ROBUST passes breaks on purpose).
"""

from __future__ import annotations

import json
from functools import lru_cache
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from schemas.compatibility import Level, check
from schemas.compatibility.generate import Gen
from schemas.compatibility.scope import Document, flatten
from schemas.validation import reference_validator

NAMES = ("a", "b", "c")
PATTERNS = ("^[0-9]+$", "^[a-z]{2,4}$", "^a", "b")
json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-20, 20)
    | st.sampled_from([0.5, -1.5, 2.25])
    | st.text("ab0", max_size=5),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.sampled_from(NAMES), inner, max_size=3)
    ),
    max_leaves=6,
)


@st.composite
def strings(draw: st.DrawFn) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": "string"}
    if draw(st.booleans()):
        schema["minLength"] = draw(st.integers(0, 3))
    if draw(st.booleans()):
        schema["maxLength"] = draw(st.integers(2, 6))
    if draw(st.integers(0, 3)) == 0:
        schema["pattern"] = draw(st.sampled_from(PATTERNS))
    if draw(st.integers(0, 4)) == 0:
        schema["enum"] = draw(
            st.lists(st.sampled_from(["a", "bb", "12", "ccc"]), min_size=1, max_size=3, unique=True)
        )
    return schema


@st.composite
def numbers(draw: st.DrawFn) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": draw(st.sampled_from(["integer", "number"]))}
    for keyword in ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"):
        if draw(st.integers(0, 2)) == 0:
            schema[keyword] = draw(st.integers(-5, 10))
    if draw(st.integers(0, 3)) == 0:
        schema["multipleOf"] = draw(st.sampled_from([1, 2, 3, 0.5]))
    return schema


scalars = st.one_of(
    strings(),
    numbers(),
    st.sampled_from(
        [{"type": "boolean"}, {"type": "null"}, {}, {"const": "a"}, {"type": ["string", "null"]}]
    ),
)


@st.composite
def objects(draw: st.DrawFn, inner: st.SearchStrategy[Any]) -> dict[str, Any]:
    names = draw(st.lists(st.sampled_from(NAMES), unique=True, max_size=3))
    schema: dict[str, Any] = {"type": "object", "properties": {n: draw(inner) for n in names}}
    required = draw(st.lists(st.sampled_from(NAMES), unique=True, max_size=2))
    if required:
        schema["required"] = required
    extra = draw(st.integers(0, 3))
    if extra == 1:
        schema["additionalProperties"] = False
    elif extra == 2:
        schema["additionalProperties"] = draw(scalars)
    return schema


@st.composite
def arrays(draw: st.DrawFn, inner: st.SearchStrategy[Any]) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": "array"}
    if draw(st.booleans()):
        schema["items"] = draw(inner)
    if draw(st.booleans()):
        schema["maxItems"] = draw(st.integers(1, 3))
    if draw(st.integers(0, 3)) == 0:
        schema["minItems"] = draw(st.integers(0, 2))
    if draw(st.integers(0, 3)) == 0:
        schema["uniqueItems"] = True
    return schema


schemas = st.recursive(
    scalars,
    lambda inner: st.one_of(
        objects(inner),
        arrays(inner),
        st.lists(inner, min_size=2, max_size=2).map(lambda alts: {"anyOf": alts}),
    ),
    max_leaves=4,
)


BY_TYPE = {
    "string": ("maxLength", "minLength"),
    "integer": ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"),
    "number": ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"),
    "array": ("maxItems", "minItems"),
}
TYPES = ("string", "integer", "number", "boolean", "null", "object", "array")


@st.composite
def edited(draw: st.DrawFn, schema: Any) -> Any:
    """The schema with one thing changed somewhere in it: a bound moved, added or dropped, a
    property added, dropped or edited, a type changed, a property (un)required, a model closed."""
    if not isinstance(schema, dict):
        return draw(schemas)
    out = dict(schema)
    properties = dict(out.get("properties", {}))
    kind = out.get("type") if isinstance(out.get("type"), str) else None
    edits: list[tuple[str, Any]] = [("replace", None), ("type", None)]
    if kind == "object" or properties:
        edits += [("required", None), ("toggle", "additionalProperties")]
        edits += [("property", n) for n in properties] * 2 + [("drop", n) for n in properties]
        edits += [("add", n) for n in NAMES if n not in properties]
    edits += [
        ("child", k) for k in ("items", "additionalProperties") if isinstance(out.get(k), dict)
    ]
    edits += [("alternative", i) for i in range(len(out.get("anyOf", [])))] * 2
    for keyword in BY_TYPE.get(kind or "", ()):
        edits += [("tweak", keyword)] * 3 if keyword in out else [("set", keyword)]
    extra = {"string": ("pattern", "enum"), "number": ("multipleOf",), "integer": ("multipleOf",)}
    edits += [("toggle", k) for k in extra.get(kind or "", ())]
    if kind == "array":
        edits.append(("toggle", "uniqueItems"))
    action, target = draw(st.sampled_from(edits))
    if action == "replace":
        return draw(schemas)
    if action == "type":
        out["type"] = draw(st.sampled_from(TYPES) | st.just(["string", "null"]))
    elif action == "required":
        required = list(out.get("required", []))
        name = draw(st.sampled_from(NAMES))
        out["required"] = (
            [n for n in required if n != name] if name in required else [*required, name]
        )
    elif action == "property":
        properties[target] = draw(edited(properties[target]))
    elif action == "drop":
        del properties[target]
    elif action == "add":
        properties[target] = draw(scalars)
    elif action == "child":
        out[target] = draw(edited(out[target]))
    elif action == "alternative":
        out["anyOf"] = [draw(edited(a)) if i == target else a for i, a in enumerate(out["anyOf"])]
    elif action == "tweak":
        step = draw(st.sampled_from([-2, -1, 1, 2, 0]))  # 0: drop the keyword
        if step == 0 or out[target] + step < 0:
            del out[target]
        else:
            out[target] += step
    elif action == "set":
        out[target] = draw(st.integers(0, 6))
    elif target in out:
        del out[target]
    else:
        out[target] = draw(
            {
                "pattern": st.sampled_from(PATTERNS),
                "enum": st.lists(json_values, min_size=1, max_size=3),
                "multipleOf": st.sampled_from([1, 2, 3, 0.5]),
                "uniqueItems": st.just(True),
                "additionalProperties": st.just(False) | scalars,
            }[target]
        )
    if properties or "properties" in out:
        out["properties"] = properties
    return out


def _pairs(olds: st.SearchStrategy[Any]) -> st.SearchStrategy[tuple[Any, Any]]:
    return olds.flatmap(
        lambda old: st.tuples(
            st.just(old), edited(old).flatmap(lambda new: st.just(new) | edited(new))
        )
    )


WRAPS = (
    lambda s: s,
    lambda s: {"type": "object", "properties": {"a": s}, "required": ["a"]},
    lambda s: {"type": "object", "properties": {"a": s}},
    lambda s: {"type": "array", "items": s, "minItems": 1},
)


@st.composite
def bound_pairs(draw: st.DrawFn) -> tuple[Any, Any]:
    """One bound raised, lowered, added or dropped, possibly inside a property or the items."""
    kind = draw(st.sampled_from(["string", "integer", "number", "array"]))
    keyword = draw(
        st.sampled_from(BY_TYPE[kind] + (() if kind in ("string", "array") else ("multipleOf",)))
    )
    values = [1, 2, 3, 0.5] if keyword == "multipleOf" else list(range(0, 7))
    before, after = draw(st.sampled_from(values)), draw(st.sampled_from(values))
    old: dict[str, Any] = {"type": kind, keyword: before}
    new: dict[str, Any] = {"type": kind, keyword: after}
    action = draw(st.integers(0, 3))
    if action == 0:
        del new[keyword]
    elif action == 1:
        del old[keyword]
    if kind == "array" and draw(st.booleans()):
        old["items"] = new["items"] = draw(scalars)
    wrap = draw(st.sampled_from(WRAPS))
    return wrap(old), wrap(new)


@st.composite
def object_pairs(draw: st.DrawFn) -> tuple[Any, Any]:
    """One structural edit of an object: a property added, dropped, (un)required or retyped,
    the model closed or opened, an enum narrowed, uniqueness demanded of an array property."""
    names = draw(st.lists(st.sampled_from(NAMES), unique=True, min_size=1, max_size=3))
    old: dict[str, Any] = {"type": "object", "properties": {n: draw(scalars) for n in names}}
    old["required"] = draw(st.lists(st.sampled_from(names), unique=True, max_size=2))
    extra = draw(st.integers(0, 2))
    if extra:
        old["additionalProperties"] = False if extra == 1 else draw(scalars)
    new = {**old, "properties": dict(old["properties"]), "required": list(old["required"])}
    name = draw(st.sampled_from(NAMES))
    edit = draw(
        st.sampled_from(["add", "drop", "require", "close", "open", "retype", "enum", "array"])
    )
    if edit == "add":
        new["properties"][name] = draw(scalars)
    elif edit == "drop":
        new["properties"].pop(name, None)
    elif edit == "require":
        required = new["required"]
        new["required"] = (
            [n for n in required if n != name] if name in required else [*required, name]
        )
    elif edit == "close":
        new["additionalProperties"] = False
    elif edit == "open":
        new.pop("additionalProperties", None)
    elif edit == "retype":
        new["properties"][name] = {"type": draw(st.sampled_from(TYPES))}
    elif edit == "enum":
        values = draw(
            st.lists(st.sampled_from(["a", "b", 1, None]), min_size=2, max_size=3, unique=True)
        )
        old["properties"][name] = {"enum": values}
        new["properties"][name] = {"enum": values[: draw(st.integers(1, len(values)))]}
    else:
        old["properties"][name] = {"type": "array", "items": draw(scalars)}
        new["properties"][name] = {**old["properties"][name], "uniqueItems": True}
    wrap = draw(st.sampled_from(WRAPS))
    return wrap(old), wrap(new)


pairs = st.one_of(object_pairs(), bound_pairs(), _pairs(scalars), _pairs(schemas))


@st.composite
def varied(draw: st.DrawFn, value: Any) -> Any:
    """A document near `value`: a value replaced, a key added or dropped, an item added."""
    if draw(st.integers(0, 3)) == 0:
        return draw(json_values)
    if isinstance(value, dict):
        out = dict(value)
        move = draw(st.integers(0, 2))
        if move == 0 and out:
            key = draw(st.sampled_from(sorted(out)))
            out[key] = draw(varied(out[key]))
        elif move == 1:
            out[draw(st.sampled_from(NAMES))] = draw(json_values)
        elif out:
            del out[draw(st.sampled_from(sorted(out)))]
        return out
    if isinstance(value, list):
        out_list = list(value)
        if len(out_list) > 0 and draw(st.booleans()):
            index = draw(st.integers(0, len(out_list) - 1))
            out_list[index] = draw(varied(out_list[index]))
        else:
            out_list.append(draw(json_values))
        return out_list
    return draw(json_values)


def instances(schema: Any, depth: int = 0) -> st.SearchStrategy[Any]:
    """Documents shaped by the schema (most of them valid): a small hypothesis-jsonschema."""
    if not isinstance(schema, dict) or depth > 4:
        return json_values
    if "anyOf" in schema:
        return st.one_of([instances(a, depth + 1) for a in schema["anyOf"]])
    if "const" in schema:
        return st.just(schema["const"])
    if "enum" in schema:
        return st.sampled_from(schema["enum"])
    kind = schema.get("type")
    if kind == "string":
        low = schema.get("minLength", 0)
        high = schema.get("maxLength", low + 8)
        if "pattern" in schema:
            return st.from_regex(schema["pattern"]).filter(lambda t: low <= len(t) <= high)
        lengths = sorted({max(low - 1, 0), low, high, high + 1})
        exact = st.sampled_from(lengths).flatmap(lambda n: st.text("ab0c1", min_size=n, max_size=n))
        return exact | st.text(alphabet="ab0c1", min_size=low, max_size=max(low, high))
    if kind in ("integer", "number"):
        low = max(schema.get("minimum", -30), schema.get("exclusiveMinimum", -31) + 1)
        high = min(schema.get("maximum", 30), schema.get("exclusiveMaximum", 31) - 1)
        step = schema.get("multipleOf", 1)
        whole = st.integers(-30, 30).map(lambda k: k * step)
        if kind == "number" and low <= high:
            whole = whole | st.floats(low - 1, high + 1, allow_nan=False).map(lambda x: round(x, 1))
        edges = st.sampled_from([low - 1, low, high, high + 1, low + 0.5, high - 0.5, step * 3])
        return edges | whole.filter(lambda x: low - 1 <= x <= high + 1)
    if kind == "object":
        declared = schema.get("properties", {})
        extra = schema.get("additionalProperties", True)
        keys = st.sampled_from((*NAMES, "d"))
        values = json_values if extra is True else instances(extra, depth + 1)
        optional = st.dictionaries(keys, values, max_size=3) if extra is not False else st.just({})
        needed = [n for n in schema.get("required", []) if n in declared]
        fixed = st.fixed_dictionaries(
            {n: instances(declared[n], depth + 1) for n in needed},
            optional={n: instances(s, depth + 1) for n, s in declared.items() if n not in needed},
        )
        return st.tuples(optional, fixed).map(lambda pair: {**pair[0], **pair[1]})
    if kind == "array" and schema.get("minItems", 0) <= schema.get("maxItems", 4):
        items = instances(schema.get("items", {}), depth + 1)
        low, high = schema.get("minItems", 0), schema.get("maxItems", 4)
        edges = st.sampled_from(sorted({max(low - 1, 0), low, high, high + 1}))
        exact_lists = edges.flatmap(lambda n: st.lists(items, min_size=n, max_size=n))
        return exact_lists | st.lists(items, min_size=low, max_size=high)
    return json_values


def documents(data: st.DataObject, schema: Any) -> list[Any]:
    gen = Gen()
    found = list(gen.samples(flatten(Document.load(schema).top), limit=8))
    found += [data.draw(varied(v)) for v in found[:4]]
    found += data.draw(st.lists(instances(schema), min_size=4, max_size=8))
    return found


@lru_cache(maxsize=512)
def _validator(key: str) -> Any:
    return reference_validator(json.loads(key))


def validator(schema: Any) -> Any:
    return _validator(json.dumps(schema, sort_keys=True))


def assert_never_contradicted(old: Any, new: Any, data: st.DataObject) -> None:
    verdict = check(new, [(1, old)], level=Level.BACKWARD)
    if verdict.outcome != "COMPATIBLE":
        return
    accepts_old = validator(old).is_valid
    accepts_new = validator(new).is_valid
    for document in documents(data, old):
        if accepts_old(document):
            assert accepts_new(document), (old, new, document)


QUICK = settings(
    max_examples=250,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)


@QUICK
@given(pair=pairs, data=st.data())
def test_compatible_verdicts_are_never_contradicted(
    pair: tuple[Any, Any], data: st.DataObject
) -> None:
    assert_never_contradicted(*pair, data)


@settings(QUICK, max_examples=400)
@given(pair=bound_pairs(), data=st.data())
def test_compatible_bound_changes_are_never_contradicted(
    pair: tuple[Any, Any], data: st.DataObject
) -> None:
    assert_never_contradicted(*pair, data)


@QUICK
@given(pair=pairs)
def test_every_break_is_proven_by_its_counterexample(pair: tuple[Any, Any]) -> None:
    old, new = pair
    verdict = check(new, [(1, old)], level=Level.FULL)
    for found in verdict.breaks:
        writer, reader = (old, new) if found.direction == "backward" else (new, old)
        assert validator(writer).is_valid(found.counterexample), found
        assert not validator(reader).is_valid(found.counterexample), found
