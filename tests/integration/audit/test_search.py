"""Auditors' search: every filter, counts that agree with the rows, streamed exports (both
backends)."""

from __future__ import annotations

import argparse
import csv
import io
import json
import secrets
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import text
from sqlmodel import Session

import audit.queries
from audit.queries import CountBy, ExchangeFilter, counts
from audit.records import ExchangeRecord
from gateway.api.audit.records import CSV_COLUMNS
from gateway.cli import audit_reports as cli_audit_reports
from tests.integration.conftest import APPROVE, World, auditor_key

ROUTE = {"method": "GET", "path": "/cong-dan/{id}", "upstream_path": "/citizen/{id}"}
PURPOSES = ["xac-minh", "thong-ke"]


def personal_world(make_world: Any, upstream: str) -> World:
    world: World = make_world(
        base_url=upstream,
        routes=[ROUTE],
        grant={"purposes": PURPOSES},
        decision=APPROVE,
        personal_data=True,
        subject_pointer="/path/id",
    )
    return world


def call(world: World, identifier: str, purpose: str | None, **headers: str) -> int:
    if purpose:
        headers["X-Purpose"] = purpose
    return world.call("GET", f"/cong-dan/{identifier}", headers=headers).status_code


def everything(auditor: Any, **filters: Any) -> list[dict[str, Any]]:
    """Every record matching the filters, following the cursor."""
    out: list[dict[str, Any]] = []
    cursor = None
    while True:
        params = {**filters, "limit": 1000, **({"cursor": cursor} if cursor else {})}
        answer = auditor.get("/audit/exchanges", params=params)
        assert answer.status_code == 200, answer.text
        out += answer.json()["items"]
        cursor = answer.json()["next_cursor"]
        if cursor is None:
            return out


@pytest.fixture
def two_worlds(hub, make_world, upstream):
    """Two consumers of two agencies calling their services about three people."""
    first, second = personal_world(make_world, upstream), personal_world(make_world, upstream)
    people = [f"0{secrets.randbelow(10**11):011d}" for _ in range(3)]
    trace = secrets.token_hex(16)
    assert call(first, people[0], "xac-minh") == 200
    assert call(first, people[0], "xac-minh") == 200
    assert call(first, people[1], "thong-ke") == 200
    assert call(first, people[1], "ban-hang") == 403  # purpose not granted
    assert call(first, people[2], None) == 403  # purpose required
    assert call(first, people[2], "xac-minh", traceparent=f"00-{trace}-{'1' * 16}-01") == 200
    assert call(second, people[0], "thong-ke") == 200
    assert call(second, people[2], "xac-minh") == 200
    return first, second, people, trace


def test_each_filter_narrows_to_exactly_the_matching_records(hub, two_worlds):
    first, second, people, trace = two_worlds
    with hub.client(auditor_key(hub)) as auditor:
        mine = everything(auditor, service=first.service)
        assert len(mine) == 6
        checks: list[tuple[dict[str, Any], Any]] = [
            ({"purpose": "xac-minh"}, lambda r: r["purpose"] == "xac-minh"),
            ({"purpose": "ban-hang"}, lambda r: r["purpose"] == "ban-hang"),
            ({"status": 403}, lambda r: r["hub_status"] == 403),
            ({"status_class": 2}, lambda r: 200 <= r["hub_status"] < 300),
            ({"status_class": 4}, lambda r: 400 <= r["hub_status"] < 500),
            ({"consumer": first.consumer}, lambda r: r["consumer"] == first.consumer),
            ({"agency": first.agency}, lambda r: r["agency"] == first.agency),
            ({"version": "v1"}, lambda r: r["version"] == "v1"),
            ({"grant_id": first.grant_id}, lambda r: r["grant_id"] == first.grant_id),
            ({"trace_id": trace}, lambda r: r["trace_id"] == trace),
            ({"trace_id": trace.upper()}, lambda r: r["trace_id"] == trace),
            ({"kind": "exchange"}, lambda r: r["kind"] == "exchange"),
        ]
        for person in people:
            hashed = hub.hub.runtime.subject_hash(person)
            checks.append(({"subject": person}, lambda r, h=hashed: r["subject_hash"] == h))
        for request in (mine[0], mine[3]):
            rid = request["request_id"]
            checks.append(({"request_id": rid}, lambda r, rid=rid: r["request_id"] == rid))
        middle = sorted(r["time"] for r in mine)[2]
        checks.append(({"since": middle}, lambda r: r["time"] >= middle))
        checks.append(({"until": middle}, lambda r: r["time"] < middle))
        for params, wanted in checks:
            found = everything(auditor, service=first.service, **params)
            expected = [r for r in mine if wanted(r)]
            assert [r["seq"] for r in found] == [r["seq"] for r in expected], params
            assert expected, params  # no filter is checked against nothing

        # Across services: the other consumer's record of person 0 is found by subject alone.
        both = everything(auditor, subject=people[0])
        assert Counter(r["consumer"] for r in both) == {first.consumer: 2, second.consumer: 1}
        assert everything(auditor, service=first.service, consumer=second.consumer) == []
        assert everything(auditor, grant_id=second.grant_id, consumer=first.consumer) == []


def test_counts_agree_with_the_rows(hub, two_worlds):
    first, second, people, _ = two_worlds
    with hub.client(auditor_key(hub)) as auditor:
        for filters in (
            {"service": first.service},
            {"subject": people[0]},
            {"subject": people[2], "status_class": 2},
            {"agency": second.agency},
        ):
            rows = everything(auditor, **filters)
            keys: tuple[tuple[str, Callable[[dict[str, Any]], object]], ...] = (
                ("consumer", lambda r: r["consumer"]),
                ("service", lambda r: r["service"]),
                ("agency", lambda r: r["agency"]),
                ("status", lambda r: r["hub_status"]),
                ("day", lambda r: r["time"][:10]),
            )
            for by, key in keys:
                answer = auditor.get("/audit/exchanges/counts", params={**filters, "by": by})
                assert answer.status_code == 200, answer.text
                body = answer.json()
                assert body["by"] == by
                got = {c["key"]: c["count"] for c in body["counts"]}
                assert got == dict(Counter(key(r) for r in rows)), (filters, by)
                assert body["total"] == len(rows)
                numbers = [c["count"] for c in body["counts"]]
                if by == "day":
                    assert [c["key"] for c in body["counts"]] == sorted(got)
                else:
                    assert numbers == sorted(numbers, reverse=True)

        bad = auditor.get("/audit/exchanges/counts", params={"by": "week"})
        assert bad.status_code == 422
        assert bad.json()["errors"][0]["pointer"] == "/query/by"
        missing = auditor.get("/audit/exchanges/counts")
        assert missing.status_code == 422
        assert missing.json()["errors"][0]["pointer"] == "/query/by"


def _insert(engine: Any, service: str, times: list[datetime]) -> None:
    with Session(engine) as session:
        for moment in times:
            session.add(ExchangeRecord(service=service, time=moment, hub_status=200))
        session.commit()


def test_days_are_utc_days_computed_by_the_database(hub, unique):
    """Records on either side of midnight UTC (07:00 in Vietnam) fall on their UTC day, also
    when the database session runs in another time zone."""
    service = unique("svc-days")
    times = [
        datetime(2026, 3, 1, 23, 59, 59, 999999, tzinfo=UTC),
        datetime(2026, 3, 2, 0, 0, 0, tzinfo=UTC),
        datetime(2026, 3, 2, 16, 59, tzinfo=UTC),  # 23:59 in Hanoi
        datetime(2026, 3, 2, 17, 1, tzinfo=UTC),  # 00:01 the next day in Hanoi
    ]
    engine = hub.hub.runtime.engine
    _insert(engine, service, times)
    expected = [("2026-03-01", 1), ("2026-03-02", 3)]
    with hub.client(auditor_key(hub)) as auditor:
        answer = auditor.get("/audit/exchanges/counts", params={"service": service, "by": "day"})
    assert [(c["key"], c["count"]) for c in answer.json()["counts"]] == expected
    with Session(engine) as session:
        if engine.dialect.name == "postgresql":
            session.connection().execute(text("SET TIME ZONE 'Asia/Ho_Chi_Minh'"))
        found = counts(session, where=ExchangeFilter(service=service), by=CountBy.DAY)
    assert found == expected
    # since/until cut at the instant, whatever the zone the caller writes it in
    with hub.client(auditor_key(hub)) as auditor:
        answer = auditor.get(
            "/audit/exchanges/counts",
            params={"service": service, "by": "day", "since": "2026-03-02T07:00:00+07:00"},
        )
    assert answer.json()["total"] == 3


def _export(auditor: Any, format: str, **filters: Any) -> tuple[Any, bytes]:
    with auditor.stream(
        "GET", "/audit/exchanges/export", params={**filters, "format": format}
    ) as answer:
        body = b"".join(answer.iter_bytes())
    return answer, body


@pytest.mark.parametrize("page", [1000, 2])
def test_export_streams_every_row_exactly_once(hub, two_worlds, monkeypatch, page):
    first, _, people, _ = two_worlds
    monkeypatch.setattr(audit.queries, "EXPORT_PAGE", page)
    with hub.client(auditor_key(hub)) as auditor:
        listed = everything(auditor, service=first.service)
        expected = sorted(r["seq"] for r in listed)

        answer, body = _export(auditor, "ndjson", service=first.service)
        assert answer.status_code == 200
        assert answer.headers["content-type"] == "application/x-ndjson"
        assert "attachment" in answer.headers["content-disposition"]
        lines = body.decode().splitlines()
        rows = [json.loads(line) for line in lines]
        assert [r["seq"] for r in rows] == expected  # oldest first, each once
        by_seq = {r["seq"]: r for r in listed}
        assert all(r == by_seq[r["seq"]] for r in rows)  # the same record as the search shows

        answer, body = _export(auditor, "csv", service=first.service)
        assert answer.status_code == 200
        assert answer.headers["content-type"].startswith("text/csv")
        reader = csv.DictReader(io.StringIO(body.decode()))
        assert tuple(reader.fieldnames or ()) == CSV_COLUMNS
        table = list(reader)
        assert [int(r["seq"]) for r in table] == expected
        for row in table:
            record = by_seq[int(row["seq"])]
            assert row["id"] == record["id"]
            assert row["hub_status"] == str(record["hub_status"])
            assert row["purpose"] == (record["purpose"] or "")
            assert row["subject_hash"] == record["subject_hash"]
            assert row["time"].endswith("Z") and row["time"][:19] == record["time"][:19]

        # Filters apply as in the search; no match: the header alone.
        answer, body = _export(auditor, "csv", subject=people[1], service=first.service)
        assert len(list(csv.DictReader(io.StringIO(body.decode())))) == 2
        answer, body = _export(auditor, "ndjson", service=f"none-{secrets.token_hex(3)}")
        assert answer.status_code == 200 and body == b""


def test_the_export_is_a_snapshot_and_the_csv_defuses_formulas(hub, unique):
    """Records written while an export streams are not in it; cells a spreadsheet would run as
    formulas are quoted."""
    service = unique("svc-export")
    engine = hub.hub.runtime.engine
    now = datetime.now(UTC)
    _insert(engine, service, [now - timedelta(seconds=n) for n in range(5)])
    with Session(engine) as session:
        session.add(ExchangeRecord(service=service, purpose="=HYPERLINK(1)", hub_status=200))
        session.commit()
    with hub.client(auditor_key(hub)) as auditor:
        with auditor.stream(
            "GET", "/audit/exchanges/export", params={"service": service, "format": "ndjson"}
        ) as answer:
            _insert(engine, service, [now])  # after the export started
            rows = [json.loads(line) for line in answer.iter_lines() if line]
        assert len(rows) == 6
        _, body = _export(auditor, "csv", service=service)
    table = list(csv.DictReader(io.StringIO(body.decode())))
    assert len(table) == 7
    assert [r["purpose"] for r in table if r["purpose"]] == ["'=HYPERLINK(1)"]


def test_bad_parameters_and_roles(hub):
    with hub.client(auditor_key(hub)) as auditor:
        for path, params, pointer in (
            ("/audit/exchanges/export", {"format": "xml"}, "/query/format"),
            ("/audit/exchanges", {"grant_id": "abc"}, "/query/grant_id"),
            ("/audit/exchanges", {"status_class": 9}, "/query/status_class"),
            ("/audit/exchanges/counts", {"by": "day", "since": "yesterday"}, "/query/since"),
            (
                "/audit/exchanges/export",
                {"since": "2026-01-02T00:00:00Z", "until": "2026-01-01T00:00:00Z"},
                "/query/until",
            ),
        ):
            answer = auditor.get(path, params=params)
            assert answer.status_code == 422, (path, params)
            assert answer.headers["content-type"] == "application/problem+json"
            assert answer.json()["errors"][0]["pointer"] == pointer
    with hub.admin() as admin:
        for path in ("/audit/exchanges/counts?by=day", "/audit/exchanges/export"):
            denied = admin.get(path)
            assert denied.status_code == 403
            assert denied.headers["content-type"] == "application/problem+json"
    with hub.client() as anonymous:
        assert anonymous.get("/audit/exchanges/export").status_code == 401


def test_the_search_command(hub, two_worlds, tmp_path, capsys):
    first, second, people, _ = two_worlds
    key = auditor_key(hub)
    connect = ("--hub", hub.url, "--key", key)
    with hub.client(key) as auditor:
        listed = everything(auditor, service=first.service)

    out = tmp_path / "found.csv"
    assert (
        lgsp_audit(
            "search", "--service", first.service, "--format", "csv", "-o", str(out), *connect
        )
        == 0
    )
    with open(out, newline="", encoding="utf-8") as f:
        table = list(csv.DictReader(f))
    assert sorted(int(r["seq"]) for r in table) == sorted(r["seq"] for r in listed)
    assert f"{len(listed)} records" in capsys.readouterr().err

    assert lgsp_audit("search", "--subject", people[0], "--purpose", "thong-ke", *connect) == 0
    captured = capsys.readouterr()
    (only,) = [json.loads(line) for line in captured.out.splitlines()]
    assert only["consumer"] == second.consumer
    assert "1 records" in captured.err

    assert lgsp_audit("search", "--service", first.service, "--count-by", "status", *connect) == 0
    table_text = capsys.readouterr().out.splitlines()
    assert table_text[0].split() == ["status", "count"]
    assert table_text[-1].split() == ["total", str(len(listed))]
    assert {tuple(line.split()) for line in table_text[1:-1]} == {("200", "4"), ("403", "2")}

    assert lgsp_audit("search", "--status-class", "9", *connect) == 1
    assert "/query/status_class" in capsys.readouterr().err
    assert lgsp_audit("search", "--hub", "http://127.0.0.1:9", "--key", key) == 2


def lgsp_audit(*argv: str) -> int:
    parser = argparse.ArgumentParser(prog="lgsp audit")
    cli_audit_reports.add_commands(parser.add_subparsers(dest="audit_command", required=True))
    args = parser.parse_args(list(argv))
    code: int = args.func(args)
    return code
