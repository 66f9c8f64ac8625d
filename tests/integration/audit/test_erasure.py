"""Erasure: a subject's message payloads go; the audit log, its proofs and reports stay whole."""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import hmac
import json
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, text
from sqlmodel import Session

from audit import merkle, reports
from audit.canonical import leaf_hash
from audit.erasure import erase, holds, tombstone
from audit.errors import ErasureError
from audit.log import AuditLog
from audit.notes import Verifier, open_note
from audit.records import Record, RecordKind, new_record_id
from audit.tree import TreeStore
from audit.writer import AuditWriter
from gateway.cli import audit_retention as cli_audit_retention
from registry.types import utcnow

ORIGIN = "lgsp.test/audit"
KEY = "test-subject-key"
PERSON = "012090001234"
OTHER = "012090009999"


def subject_hash(identifier: str) -> str:
    return hmac.new(KEY.encode(), identifier.encode(), hashlib.sha256).hexdigest()


# What producers sent: the person at several depths, as a key, nearby but not equal, and others.
VALUES: dict[str, tuple[str | None, Any]] = {
    "deep": (None, {"ho_so": {"cong_dan": {"so_dinh_danh": PERSON, "ten": "Lò Văn Minh"}}}),
    "listed": (None, {"nguoi_lien_quan": [OTHER, PERSON]}),
    "keyed": (PERSON, {"trang_thai": "da_tiep_nhan", "ghi_chu": "Mường Lay"}),
    "number": (None, {"so": 12090001234}),  # not the identifier: the leading zero is lost
    "within": (None, {"ghi_chu": f"ho so {PERSON}-A"}),  # a longer string, not the identifier
    "other": (OTHER, {"so_dinh_danh": OTHER, "ten": "Quàng Thị Hoa"}),
}
ERASED = {"deep", "listed", "keyed"}


def insert_messages(engine: Engine) -> None:
    """The payloads, as the outbox, the embedded broker's log and dead letters hold them."""
    now = utcnow()
    with engine.begin() as connection:
        for offset, (name, (key, value)) in enumerate(VALUES.items()):
            body = json.dumps(value, ensure_ascii=False)
            message_id = new_record_id()
            connection.execute(
                text("INSERT INTO message (id, topic, partition, key, producer, idempotency_key, "
                     "request_id, value, created_at) VALUES (:id, 'ho-so', 0, :key, 'dvc', :name, "
                     "'r', :value, :now)"),
                {"id": message_id, "key": key, "name": name, "value": body, "now": now},
            )  # fmt: skip
            connection.execute(
                text('INSERT INTO broker_log (topic, partition, "offset", message_id, key, value, '
                     "headers, timestamp_ms) VALUES ('ho-so', 0, :offset, :id, :key, :value, "
                     "'{}', 0)"),
                {"offset": offset, "id": message_id, "key": key, "value": body},
            )  # fmt: skip
            connection.execute(
                text('INSERT INTO dead_letter (subscription, message_id, topic, partition, '
                     '"offset", key, value, headers, reason, attempts, first_attempt_at, '
                     "last_attempt_at, created_at, state, redeliveries) VALUES ('mot-cua', :id, "
                     "'ho-so', 0, :offset, :key, :value, '{}', 'gave up', 5, :now, :now, :now, "
                     "'dead', 0)"),
                {"offset": offset, "id": message_id, "key": key, "value": body, "now": now},
            )  # fmt: skip


def payloads(engine: Engine, table: str) -> dict[str, tuple[str | None, str]]:
    """name → (key, value) of each row of `table`, named by the value it started as."""
    with engine.connect() as connection:
        id_column = "id" if table == "message" else "message_id"
        rows = connection.execute(
            text(f"SELECT {id_column} AS message_id, key, value FROM {table}")
        ).all()
        ids: dict[str, str] = {
            row.id: row.idempotency_key
            for row in connection.execute(text("SELECT id, idempotency_key FROM message"))
        }
    return {ids[r.message_id]: (r.key, r.value) for r in rows}


def write_records(engine: Engine) -> None:
    """The person's accesses, recorded as the data plane does: the subject as a keyed hash."""

    async def main() -> None:
        writer = AuditWriter(engine)
        for i, who in enumerate([PERSON, OTHER, PERSON, PERSON, OTHER]):
            await writer.write(
                Record(kind=RecordKind.EXCHANGE, request_id=f"req-{i}",
                       service="tra-cuu-cong-dan", version="v1", consumer="mot-cua",
                       agency="000.00.12.H12", purpose="giai-quyet-tthc",
                       subject_hash=subject_hash(who), hub_status=200,
                       request_sha256=hashlib.sha256(who.encode()).hexdigest())
            )  # fmt: skip
        await writer.aclose()

    asyncio.run(main())


def proofs(engine: Engine) -> tuple[int, bytes, str, dict[int, tuple[bytes, list[bytes]]]]:
    """The latest checkpoint, and each record's leaf hash and inclusion proof against it."""
    store = TreeStore(engine)
    with engine.connect() as connection:
        checkpoint = connection.execute(
            text("SELECT size, root, note FROM audit_checkpoint ORDER BY size DESC LIMIT 1")
        ).one()
        rows = [
            dict(r) for r in connection.execute(text("SELECT * FROM exchange_record")).mappings()
        ]
    size, root = int(checkpoint.size), bytes(checkpoint.root)
    nodes = store.nodes()
    out: dict[int, tuple[bytes, list[bytes]]] = {}
    for row in rows:
        index = store.leaf_index(int(row["seq"]))
        if index is not None and index < size:
            out[index] = (leaf_hash(row), merkle.inclusion_proof(index, size, nodes))
    return size, root, checkpoint.note, out


def test_erasure_removes_payloads_and_keeps_every_proof(engine, url, tmp_path):
    from audit.notes import Signer

    signer = Signer.generate(ORIGIN)
    insert_messages(engine)
    write_records(engine)
    log = AuditLog(engine, signers=[signer], origin=ORIGIN, checkpoint_seconds=0)

    async def cycle() -> None:
        await log.start()
        await log.stop()

    asyncio.run(cycle())
    size, root, note, before = proofs(engine)
    assert len(before) == size >= 5
    originals = {t: payloads(engine, t) for t in ("message", "broker_log", "dead_letter")}

    result = erase(
        engine, identifier=f" {PERSON} ", subject_hash=subject_hash(PERSON), actor="dpo",
        reason="yêu cầu xóa dữ liệu số 12/2026", vacuum=True,
    )  # fmt: skip

    assert (result.messages, result.broker_log, result.dead_letters) == (3, 3, 3)
    assert result.compacted
    for table, rows in originals.items():
        after = payloads(engine, table)
        for name, (key, value) in rows.items():
            if name in ERASED:
                assert after[name][1] == tombstone(value)
                assert json.loads(after[name][1]) == {
                    "erased": True, "sha256": hashlib.sha256(value.encode()).hexdigest()
                }  # fmt: skip
                expected_key = f"erased-{subject_hash(PERSON)}" if key == PERSON else key
                assert after[name][0] == expected_key
            else:
                assert after[name] == (key, value), (table, name)

    # The leaves did not change: every proof and the checkpoint hold as before.
    again_size, again_root, again_note, after_proofs = proofs(engine)
    assert (again_size, again_root, again_note) == (size, root, note)
    for index, (leaf, proof) in before.items():
        assert after_proofs[index] == (leaf, proof)
        assert merkle.verify_inclusion(leaf, index, size, proof, root)
    assert merkle.root_at(size, TreeStore(engine).nodes()) == root
    _, signers = open_note(note, [Verifier.from_vkey(signer.vkey)])
    assert signers == [signer.key_id]

    # The erasure is itself a record, under the subject's hash, without the identifier.
    with engine.connect() as connection:
        record = (
            connection.execute(text("SELECT * FROM exchange_record WHERE action = 'erase'"))
            .mappings()
            .one()
        )
    assert record["kind"] == "audit" and record["actor"] == "dpo"
    assert record["subject_hash"] == subject_hash(PERSON)
    details = (
        record["details"] if isinstance(record["details"], dict) else json.loads(record["details"])
    )
    assert details == {"reason": "yêu cầu xóa dữ liệu số 12/2026", "messages": 3,
                       "broker_log": 3, "dead_letters": 3}  # fmt: skip
    assert PERSON not in json.dumps(dict(record), default=str)

    # The subject report still finds the person's accesses by the keyed hash, and the erasure.
    with Session(engine) as session:
        found, more = reports.page(
            session, where=reports.subject_filter(subject_hash(PERSON), since=None, until=None),
            after=0, limit=100,
        )  # fmt: skip
    assert not more
    assert [r.request_id for r in found if r.kind == "exchange"] == ["req-0", "req-2", "req-3"]
    assert [r.action for r in found if r.kind == "audit"] == ["erase"]

    # The log goes on, consistent with what it signed before.
    log.integrate(force_checkpoint=True)
    new_size, new_root, _, _ = proofs(engine)
    assert new_size == size + 1
    proof = merkle.consistency_proof(size, new_size, TreeStore(engine).nodes())
    assert merkle.verify_consistency(size, new_size, root, new_root, proof)

    # Gone from the database's files too (SQLite: with its WAL; PostgreSQL: the tables' files).
    # (The "within" payload still holds the identifier inside a longer text: not erased.)
    for name in ERASED:
        erased_text = json.dumps(VALUES[name][1], ensure_ascii=False).encode()
        assert_not_on_disk(engine, erased_text)
    assert_not_on_disk(engine, "Lò Văn Minh".encode())


def assert_not_on_disk(engine: Engine, needle: bytes) -> None:
    if engine.dialect.name == "sqlite":
        assert engine.url.database is not None
        database = Path(engine.url.database)
        files = [p for p in database.parent.iterdir() if p.name.startswith(database.name)]
    else:
        with engine.connect() as connection:
            directory = Path(connection.execute(text("SHOW data_directory")).scalar_one())
            connection.execute(text("CHECKPOINT"))
            files = [
                directory / connection.execute(
                    text("SELECT pg_relation_filepath(:t)"), {"t": table}
                ).scalar_one()
                for table in ("message", "broker_log", "dead_letter")
            ]  # fmt: skip
    assert files
    for path in files:
        if path.is_file():
            found = needle in path.read_bytes()
            assert not found, f"{needle!r} is still in {path}"


def test_erasing_twice_finds_nothing_new(engine, monkeypatch):
    monkeypatch.setattr("audit.erasure.PAGE", 2)  # several pages per table
    insert_messages(engine)
    first = erase(engine, identifier=PERSON, subject_hash=subject_hash(PERSON), actor="dpo",
                  reason="request 1")  # fmt: skip
    second = erase(engine, identifier=PERSON, subject_hash=subject_hash(PERSON), actor="dpo",
                   reason="request 1, again")  # fmt: skip
    assert first.total == 9
    # The keyed rows still carry nothing of the person; nothing else matches.
    assert second.total == 0
    with engine.connect() as connection:
        kinds = connection.execute(
            text("SELECT count(*) FROM exchange_record WHERE action = 'erase'")
        ).scalar_one()
    assert kinds == 2


def test_an_identifier_needing_json_escapes_is_found_by_a_full_scan(engine, monkeypatch):
    monkeypatch.setattr("audit.erasure.PAGE", 2)  # several pages per table
    insert_messages(engine)
    odd = 'Nguyễn "Văn" A'
    with engine.begin() as connection:
        connection.execute(
            text("INSERT INTO message (id, topic, partition, producer, request_id, value, "
                 "created_at) VALUES (:id, 't', 0, 'p', 'r', :value, :now)"),
            {"id": new_record_id(), "value": json.dumps({"ten": odd}), "now": utcnow()},
        )  # fmt: skip
    result = erase(engine, identifier=odd, subject_hash=subject_hash(odd), actor="dpo",
                   reason="request")  # fmt: skip
    assert result.messages == 1


def test_bad_requests_are_refused(engine):
    with pytest.raises(ErasureError, match="empty"):
        erase(engine, identifier="  ", subject_hash=subject_hash(PERSON), actor="a", reason="r")
    with pytest.raises(ErasureError, match="HMAC"):
        erase(engine, identifier=PERSON, subject_hash=PERSON, actor="a", reason="r")
    with pytest.raises(ErasureError, match="reason"):
        erase(engine, identifier=PERSON, subject_hash=subject_hash(PERSON), actor="a", reason=" ")


def test_holds_looks_at_every_depth_and_only_for_equal_values():
    assert holds({"a": [{"b": PERSON}]}, PERSON)
    assert holds([1, 2, 12345], "12345")
    assert not holds({"a": True}, "True")
    assert not holds({PERSON: "key, not value"}, PERSON)
    assert not holds({"a": f"{PERSON} "}, PERSON)


def test_the_cli_erases_under_the_hubs_subject_hash(engine, url, monkeypatch, capsys):
    insert_messages(engine)
    monkeypatch.setenv("LGSP_DATABASE_URL", url)
    monkeypatch.setenv("LGSP_SUBJECT_HMAC_KEY", KEY)
    parser = argparse.ArgumentParser(prog="lgsp audit")
    cli_audit_retention.add_commands(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["erase", PERSON, "--reason", "đơn yêu cầu 7", "--actor", "dpo"])
    assert args.func(args) == 0
    out = capsys.readouterr().out
    assert "erased 3 messages, 3 broker log entries, 3 dead letters" in out
    with engine.connect() as connection:
        record = connection.execute(
            text("SELECT subject_hash, actor FROM exchange_record WHERE action = 'erase'")
        ).one()
    assert tuple(record) == (subject_hash(PERSON), "dpo")
    args = parser.parse_args(["erase", " ", "--reason", "x"])
    assert args.func(args) == 1
