"""How deeply a JSON document nests, measured without recursion (a hostile document cannot
exhaust the interpreter's stack while it is being measured)."""

from __future__ import annotations

import re
from typing import Any

_STRUCTURE = re.compile(rb'\\.|["\[\]{}]', re.DOTALL)


def too_deep(value: Any, limit: int) -> bool:
    """Whether `value` nests containers more than `limit` levels."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        node, depth = stack.pop()
        if isinstance(node, dict):
            children: Any = node.values()
        elif isinstance(node, list):
            children = node
        else:
            continue
        if depth > limit:
            return True
        stack.extend((child, depth + 1) for child in children)
    return False


def raw_too_deep(raw: bytes, limit: int) -> bool:
    """The same for JSON text not parsed yet (brackets inside strings do not count)."""
    depth, in_string = 0, False
    for match in _STRUCTURE.finditer(raw):
        token = match.group()
        if token[0] == 0x5C:  # a backslash escape: only meaningful inside a string
            continue
        if token == b'"':
            in_string = not in_string
        elif not in_string:
            depth += 1 if token in (b"[", b"{") else -1
            if depth > limit:
                return True
    return False
