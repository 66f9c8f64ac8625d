"""A small instance generator: documents a schema (most likely) accepts, and variations of them.

Nothing here is trusted: every counterexample is checked by the real validators afterwards. The
generator only has to be good at proposing: a minimal instance, one of a given kind, a string of
a given length, a number past a bound, an object with or without a property, an array of a given
length.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from fractions import Fraction
from typing import Any, Final

import jsonschema
import jsonschema.validators

from schemas.compatibility import format_samples, regex_sample
from schemas.compatibility.model import (
    NUMBER,
    Bound,
    branches,
    canonical,
    contains,
    declared,
    dependent_required,
    dependent_schemas,
    item_node,
    kind_of,
    kinds,
    length_max,
    length_min,
    lower,
    matches,
    multiples,
    prefix,
    property_node,
    required,
    upper,
    values,
)
from schemas.compatibility.scope import Conj, Part, RecursionLimit, flatten_all, has_ref


class _Missing:
    def __repr__(self) -> str:
        return "MISSING"


MISSING: Final = _Missing()
MAX_DEPTH = 10
# The largest string, array or object built: a schema asking for more (minLength: 3e9) gets no
# instance here (its findings become UNDECIDED) rather than a hub that builds it.
MAX_SIZE = 1000
ALL_ORDER = ("null", "boolean", "integer", "string", "fraction", "object", "array")
OBJECT_KEYWORDS = (
    "properties",
    "required",
    "additionalProperties",
    "patternProperties",
    "minProperties",
    "maxProperties",
    "dependentRequired",
    "dependentSchemas",
    "dependencies",
    "propertyNames",
    "unevaluatedProperties",
)
ARRAY_KEYWORDS = (
    "items",
    "prefixItems",
    "additionalItems",
    "minItems",
    "maxItems",
    "contains",
    "uniqueItems",
    "unevaluatedItems",
)
STRING_KEYWORDS = ("minLength", "maxLength", "pattern", "format")
NUMBER_KEYWORDS = ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "multipleOf")

# Values of every kind, for places where the writer accepts anything.
POOL: tuple[Any, ...] = (
    None,
    True,
    0,
    -1,
    1.5,
    "",
    "a",
    "0",
    "!",
    "é",
    "x" * 300,
    10**12,
    [],
    [None],
    {},
    {"a": None},
)


def _as_set(kind: str | None) -> frozenset[str] | None:
    if kind is None:
        return None
    return NUMBER if kind == "number" else frozenset({kind})


class Gen:
    def __init__(self) -> None:
        self._checks: dict[int, Any] = {}
        self._instances: dict[Any, Any] = {}

    # --- local checks ------------------------------------------------------------------------

    def fits(self, conj: Conj, value: Any) -> bool:
        """The value passes every part that can be checked on its own (parts without `$ref`)."""
        return all(self._fits_part(part, value) for part in conj)

    def _fits_part(self, part: Part, value: Any) -> bool:
        if part.schema is True:
            return True
        if part.schema is False:
            return False
        validator: Any = self._checks.get(id(part.schema))
        if validator is None:
            if has_ref(part.schema):
                validator = False
            else:
                cls = (
                    jsonschema.Draft7Validator
                    if part.doc.draft7
                    else jsonschema.Draft202012Validator
                )
                validator = cls(part.schema, format_checker=format_samples.checker())
            self._checks[id(part.schema)] = validator
        if validator is False:
            return True
        try:
            return bool(validator.is_valid(value))
        except Exception:  # an invalid regex in the schema: cannot tell here
            return True

    # --- instances ---------------------------------------------------------------------------

    def instance(
        self,
        conj: Conj,
        *,
        kind: str | None = None,
        present: tuple[str, ...] = (),
        absent: tuple[str, ...] = (),
        full: bool = False,
        n_items: int | None = None,
        min_items: int = 0,
        n_props: int | None = None,
        depth: int = 0,
    ) -> Any:
        """A value the conjunction likely accepts, or MISSING (memoised: callers copy before
        they change what they get)."""
        if depth > MAX_DEPTH:
            return MISSING
        key = (
            tuple((id(p.schema), p.base, p.ptr) for p in conj),
            kind,
            present,
            absent,
            full,
            n_items,
            min_items,
            n_props,
            depth,
        )
        if key not in self._instances:
            self._instances[key] = self._instance(
                conj,
                kind=kind,
                present=present,
                absent=absent,
                full=full,
                n_items=n_items,
                min_items=min_items,
                n_props=n_props,
                depth=depth,
            )
        return self._instances[key]

    def _instance(
        self,
        conj: Conj,
        *,
        kind: str | None,
        present: tuple[str, ...],
        absent: tuple[str, ...],
        full: bool,
        n_items: int | None,
        min_items: int,
        n_props: int | None,
        depth: int,
    ) -> Any:
        fallback: Any = MISSING
        try:
            alternatives = branches(conj)[:8]
        except RecursionLimit:
            return MISSING
        for branch in alternatives:
            value = self._branch(
                branch,
                kind=kind,
                present=present,
                absent=absent,
                full=full,
                n_items=n_items,
                min_items=min_items,
                n_props=n_props,
                depth=depth,
            )
            if value is MISSING:
                continue
            if self.fits(branch, value):
                return value
            if fallback is MISSING:
                fallback = value
        return fallback

    def _branch(
        self,
        branch: Conj,
        *,
        kind: str | None,
        present: tuple[str, ...],
        absent: tuple[str, ...],
        full: bool,
        n_items: int | None,
        min_items: int,
        n_props: int | None,
        depth: int,
    ) -> Any:
        allowed = kinds(branch)
        wanted = _as_set(kind)
        if wanted is not None:
            allowed &= wanted
        if not allowed:
            return MISSING
        enumerated = values(branch)
        if enumerated is not None:
            for value in enumerated:
                if kind_of(value) in allowed and self.fits(branch, value):
                    return value
            return next((v for v in enumerated if kind_of(v) in allowed), MISSING)
        for each in self._order(branch, allowed):
            if each == "null":
                return None
            if each == "boolean":
                return False
            if each == "string":
                value = next(self.strings(branch), MISSING)
            elif each in NUMBER:
                value = next(self.numbers(branch, integer=each == "integer"), MISSING)
            elif each == "object":
                value = self._object(branch, present, absent, full, n_props, depth)
            else:
                value = self._array(branch, n_items, min_items, full, depth)
            if value is not MISSING:
                return value
        return MISSING

    @staticmethod
    def _order(branch: Conj, allowed: frozenset[str]) -> list[str]:
        def has(keywords: tuple[str, ...]) -> bool:
            return any(part.has(k) for part in branch for k in keywords)

        order: list[str] = []
        if has(OBJECT_KEYWORDS):
            order.append("object")
        if has(ARRAY_KEYWORDS):
            order.append("array")
        if has(STRING_KEYWORDS):
            order.append("string")
        if has(NUMBER_KEYWORDS):
            order.extend(("integer", "fraction"))
        order.extend(ALL_ORDER)
        seen: list[str] = []
        for each in order:
            if each in allowed and each not in seen:
                seen.append(each)
        return seen

    # --- strings -----------------------------------------------------------------------------

    def strings(self, conj: Conj, *, length: int | None = None) -> Iterator[str]:
        """Strings meeting the conjunction's length, pattern and format (of `length` if given)."""
        low, high = length_min(conj, "minLength"), length_max(conj, "maxLength")
        if length is not None:
            if length < low or (high is not None and length > high):
                return
            low = high = length
        if low > MAX_SIZE:
            return
        patterns = [p.get("pattern") for p in conj if isinstance(p.get("pattern"), str)]
        formats = [p.get("format") for p in conj if isinstance(p.get("format"), str)]

        def ok(text: str) -> bool:
            return (
                low <= len(text)
                and (high is None or len(text) <= high)
                and all(matches(p, text) for p in patterns)
                and all(format_samples.conforms(f, text) for f in formats)
            )

        seen: set[str] = set()
        for text in self._string_candidates(patterns, formats, low, high, length):
            if text not in seen:
                seen.add(text)
                if ok(text):
                    yield text

    @staticmethod
    def _string_candidates(
        patterns: list[str], formats: list[str], low: int, high: int | None, length: int | None
    ) -> Iterator[str]:
        for name in formats:
            yield from format_samples.samples(name)
        targets = [length] if length is not None else [None, low, high]
        for pattern in patterns:
            for target in targets:
                if target is None or target <= 4096:
                    yield from regex_sample.samples(pattern, length=target, count=6)
            for text in regex_sample.samples(pattern, count=3):
                if len(text) < low:
                    yield text + "a" * (low - len(text))
                    yield "a" * (low - len(text)) + text
        size = low if length is None else length
        for char in "a0A_é":
            yield char * size
        yield from ("a", "0", "", "aa", "a" * max(size, 1))

    # --- numbers -----------------------------------------------------------------------------

    def numbers(
        self,
        conj: Conj,
        *,
        integer: bool,
        above: Bound | None = None,
        below: Bound | None = None,
        not_multiple_of: Fraction | None = None,
    ) -> Iterator[int | float]:
        """Numbers meeting the conjunction's bounds and multipleOf; with `above`/`below`, only
        those that break that (reader) bound; with `not_multiple_of`, only non-multiples."""
        low, high = lower(conj), upper(conj)
        steps = [m for m, _ in multiples(conj)]

        def ok(value: Fraction) -> bool:
            if low is not None and (value < low[0] or (low[1] and value == low[0])):
                return False
            if high is not None and (value > high[0] or (high[1] and value == high[0])):
                return False
            if any((value / m).denominator != 1 for m in steps):
                return False
            if integer != (value.denominator == 1):
                return False
            if above is not None and not (value > above[0] or (above[1] and value == above[0])):
                return False
            if below is not None and not (value < below[0] or (below[1] and value == below[0])):
                return False
            return not (not_multiple_of is not None and (value / not_multiple_of).denominator == 1)

        seen: set[Fraction] = set()
        for value in self._number_candidates(low, high, steps, above, below):
            if value not in seen:
                seen.add(value)
                if ok(value):
                    yield int(value) if integer else float(value)

    @staticmethod
    def _number_candidates(
        low: Bound | None,
        high: Bound | None,
        steps: list[Fraction],
        above: Bound | None,
        below: Bound | None,
    ) -> Iterator[Fraction]:
        half, tenth = Fraction(1, 2), Fraction(1, 10)
        anchors: list[Fraction] = []
        for bound, sign in ((above, 1), (below, -1), (low, 1), (high, -1)):
            if bound is not None:
                anchors.append(bound[0])
                anchors.extend(bound[0] + sign * d for d in (1, half, tenth, Fraction(1, 1000)))
        anchors.extend(Fraction(v) for v in (0, 1, -1, 2, 7, 10, 100))
        for value in anchors:
            yield value
            yield Fraction(value.__floor__()) + half
        for step in steps[:2] or [Fraction(1)]:
            for anchor in anchors[:6] or [Fraction(0)]:
                start = (anchor / step).__floor__()
                for k in range(-2, 8):
                    yield (start + k) * step
                    yield (start + k) * step + half
                    yield (start + k) * step + tenth

    # --- objects and arrays ------------------------------------------------------------------

    def _object(
        self,
        branch: Conj,
        present: tuple[str, ...],
        absent: tuple[str, ...],
        full: bool,
        n_props: int | None,
        depth: int,
        deps_done: bool = False,
    ) -> Any:
        needed = [k for k in required(branch) if k not in absent]
        keys = needed + [k for k in present if k not in needed]
        if full:
            keys += [k for k in declared(branch) if k not in keys and k not in absent]
        follow = dependent_required(branch)
        index = 0
        while index < len(keys):
            for other in follow.get(keys[index], []):
                if other not in keys and other not in absent:
                    keys.append(other)
            index += 1
        obj: dict[str, Any] = {}
        for key in keys:
            value = self.instance(property_node(branch, key), depth=depth + 1)
            if value is MISSING:
                if key in present:
                    value = None
                elif key in needed:
                    return MISSING
                else:
                    continue
            obj[key] = value
        target = n_props if n_props is not None else length_min(branch, "minProperties")
        if target > MAX_SIZE:
            return MISSING
        self._fill(branch, obj, target, absent, depth)
        if n_props is not None and len(obj) > n_props:
            for key in [k for k in reversed(list(obj)) if k not in needed and k not in present]:
                if len(obj) <= n_props:
                    break
                del obj[key]
        if not deps_done:
            extra = [
                dep
                for part in branch
                for name, dep in dependent_schemas(part).items()
                if name in obj
            ]
            if extra:
                merged = branch + flatten_all(tuple(extra))
                return self._object(merged, present, absent, full, n_props, depth, True)
        return obj

    def _fill(
        self, branch: Conj, obj: dict[str, Any], target: int, absent: tuple[str, ...], depth: int
    ) -> None:
        names = [k for k in declared(branch) if k not in obj and k not in absent]
        names += [f"p{i}" for i in range(1, target + 2)]
        for name in names:
            if len(obj) >= target:
                return
            if name in obj or name in absent:
                continue
            value = self.instance(property_node(branch, name), depth=depth + 1)
            if value is not MISSING:
                obj[name] = value

    def _array(
        self, branch: Conj, n_items: int | None, min_items: int, full: bool, depth: int
    ) -> Any:
        low = max(length_min(branch, "minItems"), min_items)
        high = length_max(branch, "maxItems")
        matching = contains(branch)
        need = 0
        if matching:
            declared_min = [p.get("minContains") for p in branch if p.has("minContains")]
            need = max([1] + [int(v) for v in declared_min if isinstance(v, int)])
            low = max(low, need)
        size = n_items if n_items is not None else low
        if full and n_items is None:
            size = max([size] + [len(prefix(p)) for p in branch])
        if size > MAX_SIZE:
            return MISSING
        if high is not None and size > high:
            if n_items is not None:
                return MISSING
            size = high
        unique = any(p.get("uniqueItems") is True for p in branch)
        items: list[Any] = []
        keys: set[str] = set()
        for index in range(size):
            node = item_node(branch, index)
            if index < need:
                node = node + matching
            options: Iterable[Any] = (
                self.samples(node, limit=12) if unique else (self.instance(node, depth=depth + 1),)
            )
            chosen: Any = MISSING
            for option in options:
                if option is not MISSING and (not unique or canonical(option) not in keys):
                    chosen = option
                    break
            if chosen is MISSING:
                return MISSING
            items.append(chosen)
            keys.add(canonical(chosen))
        return items

    # --- variety -----------------------------------------------------------------------------

    def samples(self, conj: Conj, *, limit: int = 24, depth: int = 0) -> Iterator[Any]:
        """Distinct values the conjunction likely accepts, the minimal one first."""
        seen: set[str] = set()
        for value in self._sample_candidates(conj, depth):
            if value is MISSING:
                continue
            key = canonical(value)
            if key not in seen:
                seen.add(key)
                yield value
                if len(seen) >= limit:
                    return

    def _sample_candidates(self, conj: Conj, depth: int) -> Iterator[Any]:
        yield self.instance(conj, depth=depth)
        yield self.instance(conj, full=True, depth=depth)
        try:
            alternatives = branches(conj)[:6]
        except RecursionLimit:
            return
        for branch in alternatives:
            enumerated = values(branch)
            if enumerated is not None:
                yield from enumerated
                continue
            allowed = kinds(branch)
            for each in self._order(branch, allowed):
                yield self.instance(branch, kind="number" if each == "fraction" else each)
            if "string" in allowed:
                low, high = length_min(branch, "minLength"), length_max(branch, "maxLength")
                for size in (low, low + 1, high, (high or 1) - 1):
                    if size is not None and size >= 0:
                        yield next(self.strings(branch, length=size), MISSING)
                yield from take(self.strings(branch), 4)
            if "integer" in allowed:
                yield from take(self.numbers(branch, integer=True), 4)
            if "fraction" in allowed:
                yield from take(self.numbers(branch, integer=False), 2)
            if "boolean" in allowed:
                yield True
            if "array" in allowed:
                high = length_max(branch, "maxItems")
                yield self.instance(branch, kind="array", n_items=high, depth=depth)
                yield self.instance(branch, kind="array", min_items=1, depth=depth)
            if "object" in allowed:
                yield self.instance(branch, kind="object", full=True, depth=depth)


def take(items: Iterator[Any], count: int) -> Iterator[Any]:
    for index, item in enumerate(items):
        if index >= count:
            return
        yield item
