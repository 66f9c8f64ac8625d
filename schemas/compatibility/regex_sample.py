"""Strings that match a regular expression, for `pattern` and `patternProperties`.

Walks the parse tree of Python's own regex parser (the validators use Python's `re` too), so a
string built here is what `re.search` accepts, lookarounds and back-references aside. `variant`
picks other branches, characters and repetition counts; `length` steers repetitions towards a
target length.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator
from functools import lru_cache
from typing import Any

_parser: Any = importlib.import_module("re._parser")
_c: Any = importlib.import_module("re._constants")

_CATEGORY_CHARS = {
    "CATEGORY_DIGIT": "0123456789",
    "CATEGORY_NOT_DIGIT": "a_Z!",
    "CATEGORY_WORD": "a0_Z",
    "CATEGORY_NOT_WORD": " !-.",
    "CATEGORY_SPACE": " \t",
    "CATEGORY_NOT_SPACE": "a0_!",
}
_FALLBACK = "a0Z_!-. é"
_REPEAT_CAP = 40


class _Unsupported(Exception):
    pass


def samples(pattern: str, *, length: int | None = None, count: int = 12) -> Iterator[str]:
    """Up to `count` distinct strings matching `pattern` (fewer when the regex is unusual)."""
    yield from _samples(pattern, length, count)


@lru_cache(maxsize=1024)
def _samples(pattern: str, length: int | None, count: int) -> tuple[str, ...]:
    try:
        tree = _parser.parse(pattern)
    except Exception:  # re.error and friends: an invalid pattern has no samples
        return ()
    found: list[str] = []
    for variant in range(count * 2):
        try:
            text = _Builder(variant, length).build(list(tree))
        except (_Unsupported, RecursionError):
            break
        if text not in found:
            found.append(text)
            if len(found) >= count:
                break
    return tuple(found)


class _Builder:
    def __init__(self, variant: int, length: int | None) -> None:
        self.variant = variant
        self.length = length
        self.groups: dict[int, str] = {}

    def build(self, items: list[Any]) -> str:
        base = self._seq(items, extra=0)
        if self.length is None or len(base) >= self.length:
            return base
        return self._seq(items, extra=self.length - len(base))

    def _seq(self, items: list[Any], *, extra: int) -> str:
        out = []
        budget = [extra]
        for op, av in items:
            out.append(self._one(op, av, budget))
        return "".join(out)

    def _one(self, op: Any, av: Any, budget: list[int]) -> str:
        name = str(op)
        if name == "LITERAL":
            return chr(av)
        if name == "NOT_LITERAL":
            return next(ch for ch in _FALLBACK if ord(ch) != av)
        if name == "ANY":
            return "abc"[self.variant % 3]
        if name == "IN":
            return self._in(av)
        if name in ("MAX_REPEAT", "MIN_REPEAT", "POSSESSIVE_REPEAT"):
            return self._repeat(av, budget)
        if name == "SUBPATTERN":
            group, _, _, sub = av
            text = "".join(self._one(o, a, budget) for o, a in sub)
            if group is not None:
                self.groups[group] = text
            return text
        if name == "ATOMIC_GROUP":
            return "".join(self._one(o, a, budget) for o, a in av)
        if name == "BRANCH":
            _, alternatives = av
            chosen = alternatives[self.variant % len(alternatives)]
            return "".join(self._one(o, a, budget) for o, a in chosen)
        if name == "AT":
            return ""
        if name == "GROUPREF":
            return self.groups.get(av, "")
        if name == "CATEGORY":
            return self._category(av)
        raise _Unsupported(name)

    def _repeat(self, av: Any, budget: list[int]) -> str:
        low, high, sub = av
        high = low + _REPEAT_CAP if high is _c.MAXREPEAT else high
        count = min(high, low + self.variant // 3 % 3)
        if budget[0] > 0:
            one = "".join(self._one(o, a, [0]) for o, a in sub)
            width = max(len(one), 1)
            more = min(high - count, budget[0] // width)
            count += more
            budget[0] -= more * width
        return "".join("".join(self._one(o, a, budget) for o, a in sub) for _ in range(count))

    def _in(self, items: list[Any]) -> str:
        negate = any(str(op) == "NEGATE" for op, _ in items)
        choices: list[str] = []
        for op, av in items:
            name = str(op)
            if name == "LITERAL":
                choices.append(chr(av))
            elif name == "RANGE":
                low, high = av
                choices.extend(chr(c) for c in sorted({low, min(low + 1, high), high}))
            elif name == "CATEGORY":
                choices.extend(_CATEGORY_CHARS.get(str(av), "a"))
        if negate:
            allowed = [ch for ch in _FALLBACK + "0123456789xyz" if ch not in choices]
            if not allowed:
                raise _Unsupported("IN")
            return allowed[self.variant % len(allowed)]
        if not choices:
            raise _Unsupported("IN")
        return choices[self.variant % len(choices)]

    def _category(self, av: Any) -> str:
        chars = _CATEGORY_CHARS.get(str(av), "a")
        return chars[self.variant % len(chars)]
