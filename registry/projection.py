"""Keep only the response fields a grant allows (names or dotted paths; '*' keeps all)."""

from __future__ import annotations

from typing import Any

FieldTree = dict[str, "FieldTree"]  # an empty tree at a node keeps that value whole


def compile_fields(fields: list[str]) -> FieldTree | None:
    """None means every field; otherwise a tree of the kept paths."""
    if "*" in fields:
        return None
    tree: FieldTree = {}
    for path in fields:
        node = tree
        for part in path.split("."):
            if part in node and not node[part]:
                break  # this value, or an ancestor of it, is already kept whole
            node = node.setdefault(part, {})
        else:
            node.clear()  # keep this subtree whole, whatever narrower paths said before
    return tree


def project(value: Any, tree: FieldTree | None) -> Any:
    """The parts of `value` named by `tree`; lists are projected item by item."""
    if tree is None:
        return value
    if not tree:  # a grant naming no field shows no field
        return {} if isinstance(value, dict) else [] if isinstance(value, list) else None
    return _project(value, tree)


def _project(value: Any, tree: FieldTree) -> Any:
    if not tree:
        return value
    if isinstance(value, list):
        return [_project(item, tree) for item in value]
    if isinstance(value, dict):
        return {key: _project(value[key], sub) for key, sub in tree.items() if key in value}
    return value
