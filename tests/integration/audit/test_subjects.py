"""Data-subject reports: exactly one person's accesses, each proven against a signed checkpoint,
as JSON, CSV and PDF; the identifier is never kept or logged in clear (both backends)."""

from __future__ import annotations

import base64
import csv
import hashlib
import io
import json
import logging
import re
import secrets
import threading
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import inspect, text

from audit.canonical import canonical_json
from audit.merkle import verify_inclusion
from audit.reports import CSV_COLUMNS
from gateway.cli import audit_reports as cli_audit_reports
from tests.integration.audit.test_search import call, lgsp_audit, personal_world
from tests.integration.conftest import auditor_key
from tests.wait import wait_until


def person(digits: int = 12) -> str:
    return f"{secrets.randbelow(10**digits):0{digits}d}"


def report(auditor: Any, identifier: str, **params: Any) -> dict[str, Any]:
    answer = auditor.get(f"/audit/subjects/{identifier}", params=params)
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"] == "application/json"
    body: dict[str, Any] = answer.json()
    return body


def signed_report(hub: Any, auditor: Any, identifier: str, expected: int) -> dict[str, Any] | None:
    """The report if a signed checkpoint covers all `expected` accesses (the hub signs one
    every 5 s while records arrive; the test asks for one at once), else None."""
    hub.hub.runtime.audit_log.integrate(force_checkpoint=True)
    body = report(auditor, identifier)
    return body if body["count"] == expected and body["pending"] == 0 else None


def b64d(value: str) -> bytes:
    return base64.b64decode(value, validate=True)


def assert_proven(body: dict[str, Any]) -> None:
    checkpoint = body["checkpoint"]
    root, size = b64d(checkpoint["root"]), checkpoint["size"]
    # The note says what the report says, and is signed by one of the keys listed.
    lines = checkpoint["note"].split("\n")
    assert lines[1:3] == [str(size), checkpoint["root"]]
    assert checkpoint["key_id"] in {k["key_id"] for k in body["keys"]}
    try:
        from audit.notes import Verifier, open_note
    except ImportError:  # helper A's module not landed yet
        pass
    else:
        verifiers = [Verifier.from_vkey(k["vkey"]) for k in body["keys"]]
        _, signed_by = open_note(checkpoint["note"], verifiers)
        assert checkpoint["key_id"] in signed_by
    for access in body["accesses"]:
        if access["pending"]:
            assert access["proof"] is None and access["tree_size"] is None
            continue
        leaf = b64d(access["leaf_hash"])
        assert leaf == hashlib.sha256(b"\x00" + canonical_json(access["record"])).digest()
        proof = [b64d(h) for h in access["proof"]]
        assert access["tree_size"] == size
        assert verify_inclusion(leaf, access["leaf_index"], size, proof, root), access
        # and not for another leaf or root
        assert not verify_inclusion(leaf, access["leaf_index"] ^ 1, size, proof, root)


@pytest.fixture
def people(hub, make_world, upstream):
    """Person a: three accesses by one consumer (one refused), one by another agency's; b: two;
    c (an old 9-digit card): one."""
    first, second = personal_world(make_world, upstream), personal_world(make_world, upstream)
    a, b, c = person(), person(), person(9)
    assert call(first, a, "xac-minh") == 200
    assert call(first, b, "thong-ke") == 200
    assert call(first, a, "ban-hang") == 403
    assert call(second, a, "thong-ke") == 200
    assert call(first, b, "xac-minh") == 200
    assert call(first, a, "xac-minh") == 200
    assert call(second, c, "xac-minh") == 200
    return first, second, a, b, c


def test_the_report_lists_exactly_that_persons_accesses_each_proven(hub, people):
    first, second, a, b, c = people
    with hub.client(auditor_key(hub)) as auditor:
        body = wait_until(
            lambda: signed_report(hub, auditor, a, 4),
            timeout=30,
            interval=0.2,
            what="a report of 4 accesses, all under a signed checkpoint",
        )
        assert body["title"].startswith("Báo cáo truy cập dữ liệu cá nhân")
        assert body["subject"] == {
            "masked": a[:4] + "******" + a[-2:],
            "subject_hash": hub.hub.runtime.subject_hash(a),
        }
        assert a not in answer_text(auditor, a)
        accesses = body["accesses"]
        searched = auditor.get("/audit/exchanges", params={"subject": a}).json()["items"]
        assert [x["seq"] for x in accesses] == sorted(r["seq"] for r in searched)  # oldest first
        assert [x["consumer"] for x in accesses] == [first.consumer] * 2 + [second.consumer] + [
            first.consumer
        ]
        assert [x["outcome"] for x in accesses] == ["served", "refused", "served", "served"]
        assert [x["purpose"] for x in accesses] == ["xac-minh", "ban-hang", "thong-ke", "xac-minh"]
        refused = accesses[1]
        assert refused["hub_status"] == 403 and refused["provider_status"] is None
        served = accesses[0]
        assert served["agency"] == first.agency and served["agency_name"] == "Sở thử nghiệm"
        assert served["consumer_title"] == "Ứng dụng thử"
        assert served["service"] == first.service and served["version"] == "v1"
        assert served["route"] == "GET /cong-dan/{id}"
        assert served["grant_id"] == first.grant_id and served["provider_status"] == 200
        assert served["request_id"] and served["record"]["id"] == served["record_id"]
        assert accesses[2]["grant_id"] == second.grant_id
        assert_proven(body)
        # The same report with the identifier in the body (out of URLs and proxies' logs).
        posted = auditor.post("/audit/subjects", json={"identifier": a})
        assert posted.status_code == 200, posted.text
        assert posted.json()["accesses"] == accesses
        as_csv = auditor.post("/audit/subjects", json={"identifier": a, "format": "csv"})
        assert as_csv.headers["content-type"].startswith("text/csv")
        assert len(list(csv.DictReader(io.StringIO(as_csv.text)))) == 4

        others = wait_until(
            lambda: signed_report(hub, auditor, b, 2),
            timeout=30,
            interval=0.2,
            what="a report of 2 accesses, all under a signed checkpoint",
        )
        assert {x["record_id"] for x in others["accesses"]}.isdisjoint(
            x["record_id"] for x in accesses
        )
        assert_proven(others)
        old_card = wait_until(
            lambda: signed_report(hub, auditor, c, 1),
            timeout=30,
            interval=0.2,
            what="a report of 1 access, all under a signed checkpoint",
        )
        assert old_card["subject"]["masked"] == c[:3] + "****" + c[-2:]
        assert old_card["accesses"][0]["consumer"] == second.consumer
        assert report(auditor, person())["accesses"] == []  # someone never looked up

        # A period: from the second access on, until the last (exclusive).
        since, until = accesses[1]["time"], accesses[3]["time"]
        ranged = report(auditor, a, since=since, until=until)
        assert [x["seq"] for x in ranged["accesses"]] == [x["seq"] for x in accesses[1:3]]
        assert ranged["since"] == since and ranged["until"] == until


def answer_text(auditor: Any, identifier: str) -> str:
    return "".join(
        auditor.get(f"/audit/subjects/{identifier}", params={"format": f}).content.decode("latin-1")
        for f in ("json", "csv")
    )


def test_pages_prove_against_one_checkpoint_and_newer_accesses_are_pending(
    hub, make_world, upstream
):
    world = personal_world(make_world, upstream)
    who = person()
    for _ in range(3):
        assert call(world, who, "xac-minh") == 200
    with hub.client(auditor_key(hub)) as auditor:
        wait_until(
            lambda: signed_report(hub, auditor, who, 3),
            timeout=30,
            interval=0.2,
            what="a report of 3 accesses, all under a signed checkpoint",
        )
        first = report(auditor, who, limit=2)
        assert first["count"] == 2 and first["next_cursor"]
        pinned = first["checkpoint"]
        assert call(world, who, "xac-minh") == 200  # after the checkpoint the pages prove against
        newer = wait_until(
            lambda: signed_report(hub, auditor, who, 4),
            timeout=30,
            interval=0.2,
            what="a report of 4 accesses, all under a signed checkpoint",
        )
        assert newer["checkpoint"]["size"] > pinned["size"]

        second = report(auditor, who, limit=2, cursor=first["next_cursor"])
        assert second["checkpoint"] == pinned
        assert second["next_cursor"] is None
        proven, late = second["accesses"]
        assert not proven["pending"] and proven["tree_size"] == pinned["size"]
        assert late["pending"] and late["proof"] is None and late["leaf_index"] is None
        assert second["pending"] == 1
        assert_proven(first)
        assert_proven(second)
        assert [x["seq"] for x in first["accesses"] + second["accesses"]] == [
            x["seq"] for x in newer["accesses"]
        ]


def test_csv_and_pdf(hub, people):
    _, _, a, _, _ = people
    with hub.client(auditor_key(hub)) as auditor:
        body = wait_until(
            lambda: signed_report(hub, auditor, a, 4),
            timeout=30,
            interval=0.2,
            what="a report of 4 accesses, all under a signed checkpoint",
        )
        for params, headers in (({"format": "csv"}, {}), ({}, {"Accept": "text/csv"})):
            answer = auditor.get(f"/audit/subjects/{a}", params=params, headers=headers)
            assert answer.status_code == 200
            assert answer.headers["content-type"].startswith("text/csv")
            assert answer.headers["content-disposition"].startswith("attachment;")
            reader = csv.DictReader(io.StringIO(answer.text))
            assert tuple(reader.fieldnames or ()) == CSV_COLUMNS
            rows = list(reader)
            assert [r["record_id"] for r in rows] == [x["record_id"] for x in body["accesses"]]
            for row, access in zip(rows, body["accesses"], strict=True):
                assert row["proof"].split(" ") == access["proof"]
                assert row["leaf_hash"] == access["leaf_hash"]
                assert row["tree_size"] == str(body["checkpoint"]["size"])
                assert row["pending"] == "false"
                assert row["agency_name"] == "Sở thử nghiệm"
        for params, headers in (({"format": "pdf"}, {}), ({}, {"Accept": "application/pdf"})):
            answer = auditor.get(f"/audit/subjects/{a}", params=params, headers=headers)
            assert answer.status_code == 200
            assert answer.headers["content-type"] == "application/pdf"
            assert answer.content.startswith(b"%PDF-")
            assert answer.content.rstrip().endswith(b"%%EOF")
            keywords = re.search(rb"/Keywords \(([^)]*)\)", answer.content)
            assert keywords is not None
            assert b"accesses=4" in keywords.group(1)
            assert answer.headers["x-lgsp-accesses"] == "4"
            assert f"checkpoint_size={body['checkpoint']['size']}".encode() in keywords.group(1)
            assert a.encode() not in answer.content


def test_bad_identifiers_and_parameters_are_problems(hub):
    who = person()
    with hub.client(auditor_key(hub)) as auditor:
        for bad in ("abc", "12345", "1234567890123", "12345678901a", "0123 456789", "٠١٢٣٤٥٦٧٨٩٠١"):
            answer = auditor.get(f"/audit/subjects/{bad}")
            assert answer.status_code == 422, bad
            assert answer.headers["content-type"] == "application/problem+json"
            problem = answer.json()
            assert problem["errors"] == [
                {
                    "pointer": "/path/identifier",
                    "message": "must be a 12-digit personal identification number or a "
                    "9-digit identity card number",
                }
            ]
            assert bad not in answer.text
        for params, status, pointer in (
            ({"format": "xml"}, 422, "/query/format"),
            ({"limit": 0}, 422, "/query/limit"),
            ({"since": "not a time"}, 422, "/query/since"),
            (
                {"since": "2026-02-01T00:00:00Z", "until": "2026-01-01T00:00:00Z"},
                422,
                "/query/until",
            ),
            ({"cursor": "bm9wZQ"}, 400, "/query/cursor"),
            ({"cursor": base64.urlsafe_b64encode(b"r:999999999:1").decode()}, 400, "/query/cursor"),
        ):
            answer = auditor.get(f"/audit/subjects/{who}", params=params)
            assert answer.status_code == status, (params, answer.text)
            assert answer.headers["content-type"] == "application/problem+json"
            assert answer.json()["errors"][0]["pointer"] == pointer
            assert who not in answer.text
        assert auditor.post(f"/audit/subjects/{who}").status_code == 405
        for body, status, pointer in (
            ({"identifier": "abc"}, 422, "/identifier"),
            ({}, 422, "/identifier"),
            ({"identifier": who, "cursor": "x"}, 400, "/cursor"),
            ({"identifier": who, "format": "doc"}, 422, "/format"),
            ({"identifier": who, "limit": 10**6}, 422, "/limit"),
            ({"identifier": who, "subject": who}, 422, "/subject"),
            (
                {"identifier": who, "since": "2026-02-01T00:00:00Z", "until": "2026-01-01T00:00Z"},
                422,
                "/until",
            ),
        ):
            answer = auditor.post("/audit/subjects", json=body)
            assert answer.status_code == status, (body, answer.text)
            assert answer.json()["errors"][0]["pointer"] == pointer
            assert who not in answer.text
    with hub.admin() as admin:
        denied = admin.get(f"/audit/subjects/{who}")
        assert denied.status_code == 403
        assert denied.headers["content-type"] == "application/problem+json"
    with hub.client() as anonymous:
        assert anonymous.get(f"/audit/subjects/{who}").status_code == 401


def _database_text(hub: Any) -> bytes:
    """Everything the database holds, as bytes to search in."""
    engine = hub.hub.runtime.engine
    if engine.dialect.name == "sqlite":
        database = Path(engine.url.database)
        files = [database, *database.parent.glob(database.name + "-*")]
        return b"".join(f.read_bytes() for f in files if f.is_file())
    chunks = []
    with engine.connect() as connection:
        for table in inspect(connection).get_table_names():
            for (row,) in connection.execute(text(f'SELECT t::text FROM "{table}" t')):
                chunks.append(row.encode())
    return b"\n".join(chunks)


def test_the_identifier_is_never_kept_or_logged_in_clear(hub, make_world, upstream, caplog):
    """The hub's database and its logs never hold the identifier, from the call that reads the
    person's data to the reports that list it."""
    world = personal_world(make_world, upstream)
    who = person()
    caplog.set_level(logging.DEBUG)
    main = threading.get_ident()
    assert call(world, who, "xac-minh") == 200
    assert call(world, who, "ban-hang") == 403
    with hub.client(auditor_key(hub)) as auditor:
        body = wait_until(
            lambda: signed_report(hub, auditor, who, 2),
            timeout=30,
            interval=0.2,
            what="a report of 2 accesses, all under a signed checkpoint",
        )
        for params in ({"format": "csv"}, {"format": "pdf"}, {"limit": 1}):
            assert auditor.get(f"/audit/subjects/{who}", params=params).status_code == 200
        assert auditor.get("/audit/exchanges", params={"subject": who}).status_code == 200
        assert auditor.get(f"/audit/subjects/{who}", params={"cursor": "x"}).status_code == 400
    assert who not in str(body)
    hub_logs = [r for r in caplog.records if r.thread != main]  # not this test's own client
    assert all(who not in r.getMessage() for r in hub_logs)
    assert all(who not in (r.exc_text or "") for r in hub_logs)
    stored = _database_text(hub)
    assert hub.hub.runtime.subject_hash(who).encode() in stored  # the search looks where it keeps
    assert who.encode() not in stored


def test_the_subject_command(hub, people, tmp_path, capsys, monkeypatch):
    _, _, a, _, _ = people
    key = auditor_key(hub)
    with hub.client(key) as auditor:
        body = wait_until(
            lambda: signed_report(hub, auditor, a, 4),
            timeout=30,
            interval=0.2,
            what="a report of 4 accesses, all under a signed checkpoint",
        )
    connect = ("--hub", hub.url, "--key", key)
    monkeypatch.setattr(cli_audit_reports, "PAGE", 3)  # two pages, one document

    monkeypatch.setattr("sys.stdin", io.StringIO(a + "\n"))  # the identifier kept off argv
    assert lgsp_audit("subject", "-", "-o", str(tmp_path / "r.json"), *connect) == 0
    document = json.loads((tmp_path / "r.json").read_text(encoding="utf-8"))
    assert document["count"] == 4 and document["pending"] == 0
    assert [x["record_id"] for x in document["accesses"]] == [
        x["record_id"] for x in body["accesses"]
    ]
    assert document["checkpoint"]["size"] >= body["checkpoint"]["size"]
    assert_proven(document)
    assert "4 accesses" in capsys.readouterr().err

    assert lgsp_audit("subject", a, "--format", "csv", "-o", str(tmp_path / "r.csv"), *connect) == 0
    with open(tmp_path / "r.csv", newline="", encoding="utf-8") as f:
        assert len(list(csv.DictReader(f))) == 4
    assert "4 accesses" in capsys.readouterr().err
    assert lgsp_audit("subject", a, "--format", "pdf", "-o", str(tmp_path / "r.pdf"), *connect) == 0
    document_bytes = (tmp_path / "r.pdf").read_bytes()
    assert document_bytes.startswith(b"%PDF-") and b"accesses=4" in document_bytes
    said = capsys.readouterr().err
    assert "4 accesses" in said and f"{len(document_bytes) / 1e3:.1f} KB" in said, said

    assert lgsp_audit("subject", "12AB", *connect) == 1
    assert "/identifier" in capsys.readouterr().err
    monkeypatch.delenv("LGSP_KEY", raising=False)
    assert lgsp_audit("subject", a, "--hub", hub.url) == 2
    assert "--key" in capsys.readouterr().err
