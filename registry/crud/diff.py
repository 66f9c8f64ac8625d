"""Field-by-field differences between two specs of one object: {field: [old, new]}."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

SECRET_CHANGED = "(changed)"  # noqa: S105 - what a diff shows in place of a secret
SECRET_HIDDEN = "(hidden)"  # noqa: S105


def diff(before: Mapping[str, Any], after: Mapping[str, Any]) -> dict[str, list[Any]]:
    keys = sorted(set(before) | set(after))
    return {k: [before.get(k), after.get(k)] for k in keys if before.get(k) != after.get(k)}


def created(after: Mapping[str, Any]) -> dict[str, list[Any]]:
    """A new object's changes: every field from nothing."""
    return {k: [None, v] for k, v in after.items() if v is not None}
