"""The canonical bytes of an exchange record: what the audit log's Merkle leaf commits to.

`canonical_json` writes JSON the one way: object keys sorted (Python `str` order, i.e. by code
point; all our keys are ASCII), no insignificant whitespace, UTF-8 with non-ASCII as-is, only
the escapes JSON requires (control characters as lower-case \\uXXXX except \\b \\f \\n \\r \\t),
integers in decimal. There are no floats: a Python float is written as a JSON string holding
`repr(value)`. For our data these are the bytes of RFC 8785 (JCS).

`record_document` is the record as hashed: every column of `exchange_record` whose value is not
None (so a nullable column added later changes no old leaf), `time` as
`YYYY-MM-DDTHH:MM:SS.ffffffZ`, `kind` as its string, `details` as the stored JSON object, plus
`"v": 1`, the version of this form. It takes a row as SQLite gives it (time as text, details
maybe JSON text) or as PostgreSQL gives it (time a datetime, naive meaning UTC), and is
idempotent: a record document is accepted as a row and gives itself back.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from datetime import UTC, datetime
from enum import Enum
from typing import Any

from audit.records import ExchangeRecord

VERSION = 1

# The columns of exchange_record, read off the table so that a new column is hashed too.
COLUMNS: frozenset[str] = frozenset(c.name for c in ExchangeRecord.__table__.columns)  # type: ignore[attr-defined]

_encoder = json.JSONEncoder(
    ensure_ascii=False, allow_nan=False, sort_keys=True, separators=(",", ":")
)


def _plain(value: Any) -> Any:
    """`value` as plain JSON types, floats turned into strings; refuses anything else."""
    if value is None or isinstance(value, bool | int | str):
        if isinstance(value, Enum):
            return value.value if isinstance(value.value, str | int) else str(value)
        return value
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, Mapping):
        out = {}
        for key, item in value.items():
            if not isinstance(key, str):
                raise TypeError(f"object keys must be strings, not {type(key).__name__}")
            out[key] = _plain(item)
        return out
    if isinstance(value, list | tuple):
        return [_plain(item) for item in value]
    raise TypeError(f"{type(value).__name__} has no canonical JSON form")


def canonical_json(value: Any) -> bytes:
    """The canonical bytes of `value`: dicts, lists, str, int, bool, None (floats as strings)."""
    return _encoder.encode(_plain(value)).encode("utf-8")


def format_time(value: datetime | str) -> str:
    """`YYYY-MM-DDTHH:MM:SS.ffffffZ` in UTC, from a datetime (naive = UTC) or ISO 8601 text
    (SQLite's 'YYYY-MM-DD HH:MM:SS[.ffffff]', or already canonical)."""
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    if not isinstance(value, datetime):
        raise TypeError(f"time must be a datetime or ISO 8601 text, not {type(value).__name__}")
    if value.tzinfo is not None:
        value = value.astimezone(UTC)
    return (
        f"{value.year:04d}-{value.month:02d}-{value.day:02d}T"
        f"{value.hour:02d}:{value.minute:02d}:{value.second:02d}.{value.microsecond:06d}Z"
    )


def record_document(row: Mapping[str, Any]) -> dict[str, Any]:
    """The record as hashed (see the module docstring). Unknown keys are refused."""
    unknown = set(row) - COLUMNS - {"v"}
    if unknown:
        raise ValueError(f"not columns of exchange_record: {', '.join(sorted(unknown))}")
    if row.get("v", VERSION) != VERSION:
        raise ValueError(f"canonical form version {row['v']!r}, expected {VERSION}")
    doc: dict[str, Any] = {}
    for name, value in row.items():
        if value is None or name == "v":
            continue
        if name == "time":
            value = format_time(value)
        elif name == "details" and isinstance(value, str | bytes):
            value = json.loads(value)
            if value is None:
                continue
        elif isinstance(value, Enum):
            value = value.value
        doc[name] = value
    doc["v"] = VERSION
    return doc


_SIMPLE = (str, int)  # exact types only: bool, enums and floats take the general path


def leaf_bytes(row: Mapping[str, Any]) -> bytes:
    doc = record_document(row)
    # The columns hold strings and integers; only `details` needs the recursive walk. This
    # halves the cost of hashing a record (the integrator hashes every one).
    for name, value in doc.items():
        if name == "details":
            doc[name] = _plain(value)
        elif type(value) not in _SIMPLE:
            return canonical_json(doc)
    return _encoder.encode(doc).encode("utf-8")


def leaf_hash(row: Mapping[str, Any]) -> bytes:
    """The record's Merkle leaf hash: SHA-256(0x00 ‖ leaf_bytes(row)) (RFC 9162)."""
    return hashlib.sha256(b"\x00" + leaf_bytes(row)).digest()
