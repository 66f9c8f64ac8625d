"""The typed record every writer takes has exactly the columns of `exchange_record`."""

from __future__ import annotations

from audit.records import RECORD_FIELDS, ExchangeRecord, Record, RecordKind


def test_record_fields_are_the_table_columns() -> None:
    columns = [c.name for c in ExchangeRecord.__table__.columns if c.name != "seq"]  # type: ignore[attr-defined]
    assert sorted(RECORD_FIELDS) == sorted(columns)


def test_a_record_gets_an_id_and_a_time_of_its_own() -> None:
    first, second = Record(kind=RecordKind.EXCHANGE), Record(kind=RecordKind.EXCHANGE)
    assert first.id != second.id
    assert first.time.tzinfo is not None
    assert set(first.row()) == set(RECORD_FIELDS)
