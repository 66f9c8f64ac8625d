"""What a conjunction of parts allows, keyword by keyword: kinds, values, bounds, properties, items.

Writers are read as a whole (the tightest bound of all their parts); readers part by part, so a
finding points at the part, and keyword, that refuses.
"""

from __future__ import annotations

import json
import re
from fractions import Fraction
from functools import lru_cache
from typing import Any

from schemas.compatibility.scope import Conj, Part, flatten, synthetic

KINDS = frozenset({"null", "boolean", "object", "array", "string", "integer", "fraction"})
TYPE_KINDS: dict[str, frozenset[str]] = {
    "null": frozenset({"null"}),
    "boolean": frozenset({"boolean"}),
    "object": frozenset({"object"}),
    "array": frozenset({"array"}),
    "string": frozenset({"string"}),
    "integer": frozenset({"integer"}),
    "number": frozenset({"integer", "fraction"}),
}
NUMBER = frozenset({"integer", "fraction"})
ANNOTATIONS = frozenset(
    {
        "$schema",
        "$id",
        "id",
        "$anchor",
        "$dynamicAnchor",
        "$comment",
        "$defs",
        "definitions",
        "$vocabulary",
        "title",
        "description",
        "default",
        "examples",
        "deprecated",
        "readOnly",
        "writeOnly",
        "contentEncoding",
        "contentMediaType",
        "contentSchema",
    }
)

_NOT_ASSERTING = ANNOTATIONS | {"$ref", "allOf"}

Bound = tuple[Fraction, bool]  # (value, exclusive)


def kind_of(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "integer" if value.is_integer() else "fraction"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"


def canonical(value: Any) -> str:
    """A key for JSON values under JSON equality (1 and 1.0 alike, true and 1 not)."""
    return json.dumps(_normal(value), sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def _normal(value: Any) -> Any:
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, dict):
        return {k: _normal(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_normal(v) for v in value]
    return value


def show(value: Any) -> str:
    text = json.dumps(value, ensure_ascii=False)
    return text if len(text) <= 80 else text[:77] + "..."


def show_kinds(kinds: frozenset[str]) -> str:
    names = set(kinds)
    if names >= NUMBER:
        names -= NUMBER
        names.add("number")
    elif "fraction" in names:
        names.discard("fraction")
        names.add("non-integer number")
    if not names:
        return "nothing"
    if names >= {"null", "boolean", "object", "array", "string", "number"}:
        return "any type"
    return "/".join(sorted(names))


def is_trivial(conj: Conj) -> bool:
    """Accepts every document (`true`, `{}` or only annotations; in a flattened conjunction
    `$ref` and `allOf` have become parts of their own)."""
    return all(_trivial_part(p) for p in conj)


def _trivial_part(part: Part) -> bool:
    schema = part.schema
    return schema is True or (isinstance(schema, dict) and schema.keys() <= _NOT_ASSERTING)


def primary_index(conj: Conj) -> int:
    """The index of the part that stands for the place: the first that asserts anything."""
    return next((i for i, p in enumerate(conj) if not _trivial_part(p)), 0)


def owner(conj: Conj, *keywords: str) -> Part:
    """The first part using one of the keywords, else the primary part."""
    found = next((p for p in conj if any(p.has(k) for k in keywords)), None)
    return found if found is not None else conj[primary_index(conj)]


def declared_kinds(part: Part) -> frozenset[str] | None:
    if part.schema is False:
        return frozenset()
    declared = part.get("type")
    if declared is None:
        return None
    names = declared if isinstance(declared, list) else [declared]
    out: frozenset[str] = frozenset()
    for name in names:
        out |= TYPE_KINDS.get(name, frozenset()) if isinstance(name, str) else frozenset()
    return out


def accepts(part: Part, kinds: frozenset[str]) -> bool:
    """The part may take values of these kinds (its `type` allows one of them)."""
    if part.schema is False or not isinstance(part.schema, dict):
        return False
    declared = declared_kinds(part)
    return declared is None or bool(declared & kinds)


def declared_conj(conj: Conj) -> frozenset[str] | None:
    out: frozenset[str] | None = None
    for part in conj:
        kinds = declared_kinds(part)
        if kinds is not None:
            out = kinds if out is None else out & kinds
    return out


def values(conj: Conj) -> list[Any] | None:
    """The finite set of values `const`/`enum` allow, or None when not enumerated."""
    out: list[Any] | None = None
    for part in conj:
        allowed = part_values(part)
        if allowed is None:
            continue
        if out is None:
            out = allowed
        else:
            keep = {canonical(v) for v in allowed}
            out = [v for v in out if canonical(v) in keep]
    return out


def part_values(part: Part) -> list[Any] | None:
    if not isinstance(part.schema, dict):
        return [] if part.schema is False else None
    if "const" not in part.schema and "enum" not in part.schema:
        return None
    key = ("values", id(part.schema))
    found: list[Any] | None = part.doc.memo.get(key)
    if found is None:
        found = part.doc.memo[key] = _part_values(part) or []
    return list(found)


def _part_values(part: Part) -> list[Any] | None:
    if part.schema is False:
        return []
    if not isinstance(part.schema, dict):
        return None
    allowed: list[Any] | None = None
    if "const" in part.schema:
        allowed = [part.schema["const"]]
    if isinstance(part.schema.get("enum"), list):
        enum = part.schema["enum"]
        if allowed is None:
            allowed = _unique(enum)
        else:
            keep = {canonical(v) for v in enum}
            allowed = [v for v in allowed if canonical(v) in keep]
    return allowed


def _unique(items: list[Any]) -> list[Any]:
    seen: set[str] = set()
    out = []
    for item in items:
        key = canonical(item)
        if key not in seen:
            seen.add(key)
            out.append(item)
    return out


def kinds(conj: Conj) -> frozenset[str]:
    """The kinds of value the conjunction can accept (those its own bounds leave room for)."""
    if not conj:
        return KINDS
    key = ("kinds", *((id(p.schema), p.base, p.ptr) for p in conj))
    found = conj[0].doc.memo.get(key)
    if found is None:
        found = conj[0].doc.memo[key] = _kinds(conj)
    return frozenset(found)


def _kinds(conj: Conj) -> frozenset[str]:
    out = KINDS
    for part in conj:
        declared = declared_kinds(part)
        if declared is not None:
            out &= declared
    allowed = values(conj)
    if allowed is not None:
        return out & frozenset(kind_of(v) for v in allowed)
    return out - _empty_kinds(conj, out)


def _empty_kinds(conj: Conj, kinds: frozenset[str]) -> frozenset[str]:
    """Kinds whose constraints contradict each other (minLength 3 and maxLength 2...)."""
    empty: set[str] = set()
    if "string" in kinds and _crossed(conj, "minLength", "maxLength"):
        empty.add("string")
    if "array" in kinds and _crossed(conj, "minItems", "maxItems"):
        empty.add("array")
    if "object" in kinds and (
        _crossed(conj, "minProperties", "maxProperties")
        or any(closed_for(conj, name) for name in required(conj))
    ):
        empty.add("object")
    if kinds & NUMBER:
        low, high = lower(conj), upper(conj)
        if low is not None and high is not None:
            if "integer" in kinds and integral(low, up=False)[0] > integral(high, up=True)[0]:
                empty.add("integer")
            if "fraction" in kinds and not (
                low[0] < high[0]
                or (low[0] == high[0] and not low[1] and not high[1] and low[0].denominator != 1)
            ):
                empty.add("fraction")
    return frozenset(empty)


def _crossed(conj: Conj, least: str, most: str) -> bool:
    top = length_max(conj, most)
    return top is not None and length_min(conj, least) > top


def is_false(conj: Conj) -> bool:
    return not kinds(conj)


# --- strings and numbers -------------------------------------------------------------------


def number(value: Any) -> Fraction | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    try:
        return Fraction(str(value)) if isinstance(value, float) else Fraction(value)
    except (ValueError, OverflowError):
        return None


def tightest(conj: Conj, keyword: str, *, upper: bool) -> tuple[Fraction, Part] | None:
    best: tuple[Fraction, Part] | None = None
    for part in conj:
        value = number(part.get(keyword))
        if value is None:
            continue
        if best is None or (value < best[0] if upper else value > best[0]):
            best = (value, part)
    return best


def length_min(conj: Conj, keyword: str) -> int:
    best = tightest(conj, keyword, upper=False)
    return int(best[0]) if best and best[0] > 0 else 0


def length_max(conj: Conj, keyword: str) -> int | None:
    best = tightest(conj, keyword, upper=True)
    return int(best[0]) if best else None


def upper(conj: Conj) -> Bound | None:
    return _effective(
        tightest(conj, "maximum", upper=True), tightest(conj, "exclusiveMaximum", upper=True), True
    )


def lower(conj: Conj) -> Bound | None:
    return _effective(
        tightest(conj, "minimum", upper=False),
        tightest(conj, "exclusiveMinimum", upper=False),
        False,
    )


def part_upper(part: Part) -> Bound | None:
    return upper((part,))


def part_lower(part: Part) -> Bound | None:
    return lower((part,))


def _effective(
    inclusive: tuple[Fraction, Part] | None, exclusive: tuple[Fraction, Part] | None, up: bool
) -> Bound | None:
    if inclusive is None and exclusive is None:
        return None
    if inclusive is None:
        assert exclusive is not None
        return (exclusive[0], True)
    if exclusive is None:
        return (inclusive[0], False)
    if up:
        return (exclusive[0], True) if exclusive[0] <= inclusive[0] else (inclusive[0], False)
    return (exclusive[0], True) if exclusive[0] >= inclusive[0] else (inclusive[0], False)


def integral(bound: Bound, *, up: bool) -> Bound:
    """The same bound for integers only (x < 11 is x <= 10)."""
    value, exclusive = bound
    if up:
        top = value.__ceil__() - 1 if exclusive else value.__floor__()
        return (Fraction(top), False)
    bottom = value.__floor__() + 1 if exclusive else value.__ceil__()
    return (Fraction(bottom), False)


def within_upper(value: Bound | None, limit: Bound | None) -> bool:
    """Every number under `value` is also under `limit`."""
    if limit is None:
        return True
    if value is None:
        return False
    if value[0] != limit[0]:
        return value[0] < limit[0]
    return value[1] or not limit[1]


def within_lower(value: Bound | None, limit: Bound | None) -> bool:
    if limit is None:
        return True
    if value is None:
        return False
    if value[0] != limit[0]:
        return value[0] > limit[0]
    return value[1] or not limit[1]


def multiples(conj: Conj) -> list[tuple[Fraction, Part]]:
    out = []
    for part in conj:
        value = number(part.get("multipleOf"))
        if value is not None and value > 0:
            out.append((value, part))
    return out


@lru_cache(maxsize=512)
def compiled(pattern: str) -> re.Pattern[str] | None:
    try:
        return re.compile(pattern)
    except re.error:
        return None


def matches(pattern: str, text: str) -> bool:
    regex = compiled(pattern)
    return regex is None or regex.search(text) is not None


# --- objects -------------------------------------------------------------------------------


def properties(part: Part) -> dict[str, Any]:
    found = part.get("properties")
    return found if isinstance(found, dict) else {}


def pattern_properties(part: Part) -> dict[str, Any]:
    found = part.get("patternProperties")
    return found if isinstance(found, dict) else {}


def required(conj: Conj) -> list[str]:
    out: list[str] = []
    for part in conj:
        listed = part.get("required")
        if isinstance(listed, list):
            out.extend(name for name in listed if isinstance(name, str) and name not in out)
    return out


def declared(conj: Conj) -> list[str]:
    out: list[str] = []
    for part in conj:
        out.extend(name for name in properties(part) if name not in out)
    return out


def governing(part: Part, name: str) -> Conj | None:
    """The schemas this part applies to property `name`; None when it lets any value through."""
    if part.schema is False:
        return (part,)
    if not isinstance(part.schema, dict):
        return None
    found: list[Part] = []
    if name in properties(part):
        found.extend(flatten(part.child("properties", name)))
    matched = False
    for pattern in pattern_properties(part):
        if matches(pattern, name):
            matched = True
            found.extend(flatten(part.child("patternProperties", pattern)))
    if name not in properties(part) and not matched and "additionalProperties" in part.schema:
        found.extend(flatten(part.child("additionalProperties")))
    return tuple(found) if found and not is_trivial(tuple(found)) else None


def property_node(conj: Conj, name: str) -> Conj:
    """What the whole conjunction lets property `name` be (empty: anything)."""
    out: list[Part] = []
    for part in conj:
        found = governing(part, name)
        if found is not None:
            out.extend(found)
    return tuple(out) or unevaluated(conj, name)


def unevaluated(conj: Conj, name: str) -> Conj:
    """The unevaluatedProperties that govern `name` when no part of the conjunction evaluates
    it (anyOf/oneOf alternatives, which may evaluate it, are not counted: that can only
    constrain more, so a compatible verdict stays sound)."""
    if not any(p.has("unevaluatedProperties") for p in conj):
        return ()
    for part in conj:
        if name in properties(part) or part.has("additionalProperties"):
            return ()
        if any(matches(pattern, name) for pattern in pattern_properties(part)):
            return ()
    out: list[Part] = []
    for part in conj:
        if part.has("unevaluatedProperties"):
            out.extend(flatten(part.child("unevaluatedProperties")))
    return () if is_trivial(tuple(out)) else tuple(out)


def closed_for(conj: Conj, name: str) -> bool:
    """The conjunction refuses any value for `name`."""
    return any(p.schema is False for p in property_node(conj, name))


def extra_name(conj: Conj, *others: Conj, avoid: tuple[str, ...] = ()) -> str:
    """A property name that no part of these conjunctions declares or matches by pattern."""
    taken: set[str] = set(avoid)
    patterns: list[str] = []
    for parts in (conj, *others):
        for part in parts:
            taken.update(properties(part))
            patterns.extend(pattern_properties(part))
    for candidate in ("extra_property", "x_extra", "zz_extra", "extra_2", "Q"):
        if candidate not in taken and not any(matches(p, candidate) for p in patterns):
            return candidate
    return "extra_property"


def dependent_required(conj: Conj) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for part in conj:
        for name, needs in _dependency_arrays(part).items():
            bucket = out.setdefault(name, [])
            bucket.extend(n for n in needs if n not in bucket)
    return out


def _dependency_arrays(part: Part) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    keyword = "dependencies" if part.doc.draft7 else "dependentRequired"
    table = part.get(keyword)
    if isinstance(table, dict):
        for name, needs in table.items():
            if isinstance(needs, list):
                found[name] = [n for n in needs if isinstance(n, str)]
    return found


def dependency_keyword(part: Part, *, schemas: bool) -> str:
    if part.doc.draft7:
        return "dependencies"
    return "dependentSchemas" if schemas else "dependentRequired"


def dependent_schemas(part: Part) -> dict[str, Part]:
    keyword = dependency_keyword(part, schemas=True)
    table = part.get(keyword)
    out: dict[str, Part] = {}
    if isinstance(table, dict):
        for name, sub in table.items():
            if isinstance(sub, dict | bool):
                out[name] = part.child(keyword, name)
    return out


def dependency_arrays(part: Part) -> dict[str, list[str]]:
    return _dependency_arrays(part)


def requiring(name: str, like: Part) -> Part:
    """A made-up part saying property `name` is present (kept alive: memo keys use ids)."""
    key = ("requiring", name)
    found = like.doc.memo.get(key)
    if found is None:
        found = synthetic({"required": [name]}, like, like.ptr)
        like.doc.memo[key] = found
    return found


# --- arrays --------------------------------------------------------------------------------


def prefix_keyword(part: Part) -> str:
    return "items" if part.doc.draft7 else "prefixItems"


def rest_keyword(part: Part) -> str:
    if part.doc.draft7:
        return "additionalItems" if isinstance(part.get("items"), list) else "items"
    return "items"


def prefix(part: Part) -> list[Part]:
    keyword = prefix_keyword(part)
    listed = part.get(keyword)
    if isinstance(listed, list):
        return [part.child(keyword, i) for i in range(len(listed))]
    return []


def rest(part: Part) -> Part | None:
    """The schema for items past the tuple (all items when there is no tuple)."""
    keyword = rest_keyword(part)
    if part.doc.draft7 and keyword == "additionalItems" and not isinstance(part.get("items"), list):
        return None
    found = part.get(keyword)
    if isinstance(found, dict | bool):
        return part.child(keyword)
    return None


def item_node(conj: Conj, index: int) -> Conj:
    out: list[Part] = []
    for part in conj:
        if part.schema is False:
            out.append(part)
            continue
        tuple_items = prefix(part)
        if index < len(tuple_items):
            out.extend(flatten(tuple_items[index]))
        else:
            tail = rest(part)
            if tail is not None:
                out.extend(flatten(tail))
    return tuple(out)


def contains(conj: Conj) -> Conj:
    out: list[Part] = []
    for part in conj:
        if part.has("contains"):
            out.extend(flatten(part.child("contains")))
    return tuple(out)


# --- alternatives --------------------------------------------------------------------------

BRANCH_LIMIT = 24
DISJUNCTIONS = ("anyOf", "oneOf")


def has_disjunction(part: Part) -> bool:
    return any(isinstance(part.get(k), list) and part.get(k) for k in DISJUNCTIONS)


def stripped(part: Part) -> Part:
    """The part without its anyOf/oneOf (one alternative has been chosen, or none: a superset)."""
    key = ("stripped", id(part.schema))
    found = part.doc.memo.get(key)
    if found is None:
        found = {k: v for k, v in part.schema.items() if k not in DISJUNCTIONS}
        part.doc.memo[key] = found
        part.doc.memo[("original", id(found))] = part.schema
    return Part(found, part.doc, part.base, part.ptr)


def original(part: Part) -> Any:
    """The schema a part was stripped from (itself when it was not)."""
    return part.doc.memo.get(("original", id(part.schema)), part.schema)


def anything(like: Part) -> Conj:
    """A conjunction that accepts every value, placed like `like` (for absent subschemas)."""
    return (synthetic(True, like, like.ptr),)


def branches(conj: Conj) -> list[Conj]:
    """The conjunction split along its anyOf/oneOf: one conjunction per choice of alternatives.

    Beyond BRANCH_LIMIT choices the disjunctions are dropped, which accepts more: sound for a
    writer (whatever a reader accepts of the superset it accepts of the writer).
    """
    done: list[Conj] = []
    pending: list[tuple[Conj, Conj]] = [((), conj)]
    while pending:
        fixed, rest_parts = pending.pop(0)
        index = next((i for i, p in enumerate(rest_parts) if has_disjunction(p)), None)
        if index is None:
            done.append(fixed + rest_parts)
            continue
        part = rest_parts[index]
        head, tail = fixed + rest_parts[:index], rest_parts[index + 1 :]
        choices: list[Conj] = [()]
        for keyword in DISJUNCTIONS:
            listed = part.get(keyword)
            if isinstance(listed, list) and listed:
                alternatives = [flatten(part.child(keyword, i)) for i in range(len(listed))]
                choices = [c + a for c in choices for a in alternatives]
        for choice in choices:
            pending.append(((*head, stripped(part)), choice + tail))
        if len(pending) + len(done) > BRANCH_LIMIT:
            return [tuple(stripped(p) if has_disjunction(p) else p for p in conj)]
    return done
