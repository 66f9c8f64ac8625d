"""The auditors' API and the append-only exchange log, on SQLite and PostgreSQL."""

from __future__ import annotations

import pytest
import sqlalchemy
from sqlalchemy import text

from tests.integration.conftest import APPROVE, audit_records, auditor_key

ROUTE = {"method": "GET", "path": "/cong-dan/{id}", "upstream_path": "/citizen/{id}"}


def test_only_auditors_read_the_log(hub):
    with hub.admin() as admin:
        denied = admin.get("/audit/exchanges")
    assert denied.status_code == 403
    assert denied.headers["content-type"] == "application/problem+json"
    with hub.client() as anonymous:
        assert anonymous.get("/audit/exchanges").status_code == 401
    with hub.client(auditor_key(hub)) as auditor:
        assert auditor.get("/audit/exchanges").status_code == 200
        # Read-only: no method changes a record.
        for method in ("POST", "PUT", "PATCH", "DELETE"):
            assert auditor.request(method, "/audit/exchanges").status_code == 405


def test_filters_and_cursor_pagination(hub, make_world, upstream):
    world = make_world(
        base_url=upstream,
        routes=[ROUTE],
        grant={},
        decision=APPROVE,
        personal_data=False,
        subject_pointer="/path/id",
    )
    for n in range(7):
        assert world.call("GET", f"/cong-dan/01209000{n:04d}").status_code == 200
    world.call("GET", "/nothing")  # one 404

    with hub.client(auditor_key(hub)) as auditor:
        pages, cursor = [], None
        while True:
            params = {
                "service": world.service,
                "limit": 3,
                **({"cursor": cursor} if cursor else {}),
            }
            answer = auditor.get("/audit/exchanges", params=params)
            assert answer.status_code == 200, answer.text
            pages.append(answer.json()["items"])
            cursor = answer.json()["next_cursor"]
            if cursor is None:
                break
        assert [len(p) for p in pages] == [3, 3, 2]
        seqs = [r["seq"] for p in pages for r in p]
        assert seqs == sorted(seqs, reverse=True) and len(set(seqs)) == 8

        assert len(audit_records(hub, service=world.service, status=404)) == 1
        assert len(audit_records(hub, service=world.service, status_class=2)) == 7
        assert len(audit_records(hub, consumer=world.consumer)) == 8
        assert len(audit_records(hub, agency=world.agency)) == 8
        (one,) = audit_records(hub, subject="012090000003")
        assert one["service"] == world.service
        first = min(seqs)
        (by_id,) = [r for p in pages for r in p if r["seq"] == first]
        assert auditor.get(f"/audit/exchanges/{by_id['id']}").json()["seq"] == first
        since = by_id["time"]
        assert len(audit_records(hub, service=world.service, since=since)) == 8
        assert audit_records(hub, service=world.service, until=since) == []

        bad = auditor.get("/audit/exchanges", params={"cursor": "garbage!"})
        assert bad.status_code == 400 and bad.json()["errors"][0]["pointer"] == "/query/cursor"
        bad_range = auditor.get(
            "/audit/exchanges",
            params={"since": "2026-01-02T00:00:00Z", "until": "2026-01-01T00:00:00Z"},
        )
        assert bad_range.status_code == 422
        bad_status = auditor.get("/audit/exchanges", params={"status": "abc"})
        assert bad_status.status_code == 422
        assert bad_status.json()["errors"][0]["pointer"] == "/query/status"
        assert auditor.get("/audit/exchanges/nope").status_code == 404


def test_registry_changes_are_recorded(hub, make_world, upstream):
    world = make_world(base_url=upstream, routes=[ROUTE], grant={}, decision=APPROVE)
    changes = audit_records(hub, kind="registry_change", limit=1000)
    mine = [
        c
        for c in changes
        if world.connector == c["object_key"] or world.service in (c["object_key"] or "")
    ]
    assert {c["action"] for c in mine} >= {"create"}
    assert all(c["actor"] for c in changes)
    grant = [
        c for c in changes if c["object_type"] == "grant" and world.consumer in c["object_key"]
    ]
    assert {c["action"] for c in grant} >= {"create", "approve"}


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE exchange_record SET hub_status = 200",
        "DELETE FROM exchange_record",
        "UPDATE audit_checkpoint SET size = 0",
        "DELETE FROM audit_checkpoint",
    ],
)
def test_the_database_refuses_to_change_records(hub, make_world, upstream, statement):
    """Refused by the hub's own triggers, which say which log is append-only."""
    world = make_world(base_url=upstream, routes=[ROUTE], grant={}, decision=APPROVE)
    world.call("GET", "/cong-dan/1")
    engine = hub.hub.runtime.engine
    table = "audit checkpoints" if "audit_checkpoint" in statement else "exchange records"
    with pytest.raises(sqlalchemy.exc.DatabaseError, match=f"{table} are append-only"):
        with engine.begin() as connection:
            connection.execute(text(statement))
    assert len(world.records()) == 1
