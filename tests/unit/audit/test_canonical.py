"""audit.canonical: the exact bytes a record's Merkle leaf commits to."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import create_engine, select, text

from audit.canonical import (
    COLUMNS,
    canonical_json,
    format_time,
    leaf_bytes,
    leaf_hash,
    record_document,
)
from audit.records import ExchangeRecord, RecordKind


def record(**overrides: Any) -> dict[str, Any]:
    row: dict[str, Any] = {
        "seq": 42,
        "id": "019ab5f2-3c4d-7e8f-9a0b-1c2d3e4f5a6b",
        "kind": RecordKind.EXCHANGE,
        "time": datetime(2026, 11, 24, 3, 20, 5, 123456),
        "request_id": "req-1",
        "trace_id": None,
        "consumer": "so-tu-phap",
        "agency": "000.00.15.H29",
        "service": "cong-dan",
        "version": "v1",
        "route": "POST /cong-dan/xac-thuc",
        "purpose": "xac-minh-cu-tru",
        "grant_id": 7,
        "subject_hash": "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
        "provider_status": 200,
        "hub_status": 200,
        "latency_us": 1234,
        "request_sha256": "a" * 64,
        "error": None,
        "details": {"ghi_chú": 'Lai Châu "tỉnh"\n', "b": [1, True, None, 1.5], "a": {}},
    }
    row.update(overrides)
    return row


# The golden vector: if this changes, every leaf of every log changes. Do not edit it; add a
# version ("v": 2) instead.
GOLDEN = (
    '{"agency":"000.00.15.H29","consumer":"so-tu-phap",'
    '"details":{"a":{},"b":[1,true,null,"1.5"],"ghi_chú":"Lai Châu \\"tỉnh\\"\\n"},'
    '"grant_id":7,"hub_status":200,"id":"019ab5f2-3c4d-7e8f-9a0b-1c2d3e4f5a6b",'
    '"kind":"exchange","latency_us":1234,"provider_status":200,"purpose":"xac-minh-cu-tru",'
    '"request_id":"req-1",'
    '"request_sha256":"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",'
    '"route":"POST /cong-dan/xac-thuc","seq":42,"service":"cong-dan",'
    '"subject_hash":"9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",'
    '"time":"2026-11-24T03:20:05.123456Z","v":1,"version":"v1"}'
).encode()
GOLDEN_LEAF = "c045d4f735a8eb5e79cf10697461fcce232cf20c9f6ed3a2abe6cdd8b32681b4"


def test_golden_record() -> None:
    assert leaf_bytes(record()) == GOLDEN
    assert leaf_hash(record()) == hashlib.sha256(b"\x00" + GOLDEN).digest()
    assert leaf_hash(record()).hex() == GOLDEN_LEAF


def test_sqlite_and_postgresql_forms_give_the_same_bytes() -> None:
    """The same record as SQLite returns it (raw and through SQLAlchemy) and as PostgreSQL does
    (a naive or an aware datetime, details as a dict)."""
    engine = create_engine("sqlite://")
    ExchangeRecord.__table__.create(engine)  # type: ignore[attr-defined]
    row = record(time=datetime(2026, 11, 24, 3, 20, 5, 123456, tzinfo=UTC))
    with engine.begin() as connection:
        connection.execute(ExchangeRecord.__table__.insert(), [row])  # type: ignore[attr-defined]
    with engine.connect() as connection:
        raw = dict(connection.execute(text("SELECT * FROM exchange_record")).mappings().one())
        typed = dict(
            connection.execute(select(ExchangeRecord.__table__)).mappings().one()  # type: ignore[attr-defined]
        )
    engine.dispose()
    assert raw["time"] == "2026-11-24 03:20:05.123456"  # SQLite's text form
    assert isinstance(raw["details"], str)
    assert isinstance(typed["time"], datetime) and isinstance(typed["details"], dict)
    hanoi = timezone(timedelta(hours=7))
    postgres_aware = record(time=datetime(2026, 11, 24, 10, 20, 5, 123456, tzinfo=hanoi))
    postgres_utc = record(time=datetime(2026, 11, 24, 3, 20, 5, 123456, tzinfo=UTC))
    for form in (raw, typed, record(), postgres_aware, postgres_utc):
        assert leaf_bytes(form) == GOLDEN


def test_time_forms() -> None:
    expected = "2026-11-24T03:20:05.000000Z"
    assert format_time("2026-11-24 03:20:05") == expected  # SQLite without microseconds
    assert format_time("2026-11-24 03:20:05.000000") == expected
    assert format_time("2026-11-24T03:20:05Z") == expected
    assert format_time("2026-11-24T10:20:05+07:00") == expected
    assert format_time(datetime(2026, 11, 24, 3, 20, 5)) == expected
    assert format_time(expected) == expected
    assert format_time(datetime(999, 1, 2, 3, 4, 5, 6)) == "0999-01-02T03:04:05.000006Z"
    with pytest.raises(ValueError):
        format_time("24/11/2026")


def test_none_columns_are_left_out_so_new_nullable_columns_change_no_leaf() -> None:
    bare = {"seq": 1, "id": "x", "kind": "exchange", "time": "2026-01-01 00:00:00"}
    with_nones = {**bare, **{column: None for column in COLUMNS - set(bare)}}
    assert leaf_bytes(with_nones) == leaf_bytes(bare)
    assert leaf_bytes(bare) == (
        b'{"id":"x","kind":"exchange","seq":1,"time":"2026-01-01T00:00:00.000000Z","v":1}'
    )
    assert "details" not in record_document({**bare, "details": "null"})
    assert record_document({**bare, "details": "{}"})["details"] == {}


def test_every_column_is_hashed() -> None:
    columns = {c.name for c in ExchangeRecord.__table__.columns}  # type: ignore[attr-defined]
    assert columns == COLUMNS
    assert "seq" in COLUMNS and "details" in COLUMNS
    base = record()
    for column in sorted(COLUMNS - {"time", "kind", "details"}):
        changed = record(**{column: 9 if isinstance(base.get(column), int) else "changed"})
        assert leaf_hash(changed) != leaf_hash(base), column


def test_record_document_is_idempotent_and_refuses_strangers() -> None:
    document = record_document(record())
    assert document["v"] == 1 and document["kind"] == "exchange"
    assert record_document(document) == document
    assert leaf_bytes(document) == GOLDEN
    with pytest.raises(ValueError, match="not columns"):
        record_document({**record(), "payload": "secret"})
    with pytest.raises(ValueError, match="version"):
        record_document({**record(), "v": 2})


def test_kinds_are_their_string_values() -> None:
    for kind in RecordKind:
        assert record_document(record(kind=kind))["kind"] == kind.value
        assert leaf_bytes(record(kind=kind)) == leaf_bytes(record(kind=kind.value))


# --- canonical_json ---------------------------------------------------------------------------


def test_canonical_json_escapes_only_what_json_requires() -> None:
    # RFC 8785 §3.2.2.2: \b \f \n \r \t, other controls as lower-case \u00xx, " and \;
    # everything else, "/" and U+2028 and DEL included, as is.
    value = '\b\f\n\r\t\x00\x1f"\\/\x7f\u2028é😀'
    assert canonical_json(value) == (
        '"\\b\\f\\n\\r\\t\\u0000\\u001f\\"\\\\/\x7f\u2028é😀"'.encode()
    )


def test_canonical_json_shapes() -> None:
    assert canonical_json({"b": 1, "a": [True, False, None], "c": {"y": -2, "x": 10**30}}) == (
        b'{"a":[true,false,null],"b":1,"c":{"x":1000000000000000000000000000000,"y":-2}}'
    )
    assert canonical_json({"é": 1, "z": 2, "A": 3, "a": 4}) == '{"A":3,"a":4,"z":2,"é":1}'.encode()
    assert canonical_json((1, 2)) == b"[1,2]"
    assert canonical_json([]) == b"[]" and canonical_json({}) == b"{}"


def test_floats_are_strings() -> None:
    assert canonical_json(1.5) == b'"1.5"'
    assert canonical_json(2.0) == b'"2.0"'
    assert canonical_json([float("nan"), float("inf"), 1e-7]) == b'["nan","inf","1e-07"]'


def test_what_has_no_canonical_form() -> None:
    with pytest.raises(TypeError, match="keys must be strings"):
        canonical_json({1: "a"})
    with pytest.raises(TypeError, match="no canonical JSON form"):
        canonical_json({"a": b"bytes"})
    with pytest.raises(TypeError, match="no canonical JSON form"):
        canonical_json(datetime(2026, 1, 1))
    with pytest.raises(UnicodeEncodeError):
        canonical_json("\ud800")  # a lone surrogate is not UTF-8


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=20,
)


@settings(max_examples=300, deadline=None)
@given(JSON)
def test_canonical_json_round_trips_and_is_a_fixed_point(value: Any) -> None:
    try:
        data = canonical_json(value)
    except UnicodeEncodeError:  # lone surrogates in generated text
        return
    parsed = json.loads(data)
    assert parsed == value
    assert canonical_json(parsed) == data
    assert data == json.dumps(
        value, sort_keys=True, separators=(",", ":"), ensure_ascii=False
    ).encode("utf-8")
