"""Alterations made behind the hub's back, straight in the database, and what `verify_log` says.

Each test starts from the same real log (SQLite and PostgreSQL): 373 leaves in two tiles (the
log's key-added, start and stop records, then 40, 30 and 300 exchange records), a checkpoint
after each batch (sizes 2, 3, 43, 73, 373).
The attacker turns the append-only triggers off first, as anyone with the database's owner role
can; the verifier must name the kind of alteration and the first leaf it touched.
"""

from __future__ import annotations

import asyncio
import base64
import time
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text

from audit.notes import Checkpoint, Signer
from audit.records import ExchangeRecord, Record
from audit.tree import TreeStore, pack_seqs, unpack_seqs
from audit.verify import EXIT_CODES, Kind
from audit.writer import AuditWriter
from tests.integration.audit.logs import ORIGIN, Log, record

RECORDS = ExchangeRecord.__table__  # type: ignore[attr-defined]
COLUMNS = [c.name for c in RECORDS.columns if c.name != "seq"]
SIZE = 373  # 3 + 40 + 30 + 300


def assert_found(report: Any, kind: Kind, leaf: int | None = None) -> None:
    assert not report.ok, "the alteration went unnoticed"
    first = report.first
    assert first.kind is kind, report.problems
    if leaf is not None:
        assert first.leaf_index == leaf, report.problems
    assert report.exit_code == EXIT_CODES[kind]


def row(log: Log, leaf: int) -> dict[str, Any]:
    with log.engine.connect() as connection:
        found = connection.execute(RECORDS.select().where(RECORDS.c.seq == log.seq(leaf)))
        return dict(found.mappings().one())


def test_the_log_is_intact_before_the_attack(log: Log) -> None:
    assert TreeStore(log.engine).state().size == SIZE
    assert log.verify().ok


# --------------------------------------------------------------------------- records


@pytest.mark.parametrize(
    ("leaf", "change"),
    [
        (57, "consumer = 'ung-dung-khac'"),  # another application took the data
        (300, "hub_status = 403"),  # in the second (partial) tile
        (60, "subject_hash = NULL"),  # the subject erased from the record
        (61, "details = '{\"n\": 1}'"),
    ],
)
def test_a_modified_record_is_named_with_its_leaf(log: Log, leaf: int, change: str) -> None:
    seq = log.seq(leaf)
    with log.attacker() as connection:
        connection.execute(
            text(f"UPDATE exchange_record SET {change} WHERE seq = :seq"), {"seq": seq}
        )

    report = log.verify()

    assert_found(report, Kind.MODIFIED, leaf)
    assert report.first.seq == seq and report.first.record_id == row(log, leaf)["id"]


def test_a_time_moved_by_one_microsecond_is_a_modification(log: Log) -> None:
    original = row(log, 100)
    moved = original["time"].replace(microsecond=(original["time"].microsecond + 1) % 1_000_000)
    with log.attacker() as connection:
        connection.execute(
            RECORDS.update().where(RECORDS.c.seq == original["seq"]).values(time=moved)
        )

    assert_found(log.verify(), Kind.MODIFIED, 100)


def test_a_deleted_record_is_named_with_its_leaf(log: Log) -> None:
    seq = log.seq(57)
    with log.attacker() as connection:
        connection.execute(text("DELETE FROM exchange_record WHERE seq = :seq"), {"seq": seq})

    report = log.verify()

    assert_found(report, Kind.DELETED, 57)
    assert report.first.seq == seq
    assert len(report.problems) == 1  # the other records are fine


def test_a_deletion_hidden_by_renumbering_is_still_a_deletion(log: Log) -> None:
    seq = log.seq(57)
    with log.attacker() as connection:
        connection.execute(text("DELETE FROM exchange_record WHERE seq = :seq"), {"seq": seq})
        connection.execute(
            text("UPDATE exchange_record SET seq = seq + 1000000 WHERE seq > :seq"), {"seq": seq}
        )
        connection.execute(
            text("UPDATE exchange_record SET seq = seq - 1000001 WHERE seq > 1000000")
        )

    assert_found(log.verify(), Kind.DELETED, 57)


def test_a_record_inserted_with_the_later_ones_renumbered(log: Log) -> None:
    seq = log.seq(57)
    forged = record(9999, consumer="ung-dung-gia")
    with log.attacker() as connection:
        connection.execute(
            text("UPDATE exchange_record SET seq = seq + 1000000 WHERE seq >= :seq"),
            {"seq": seq},
        )
        connection.execute(
            text("UPDATE exchange_record SET seq = seq - 999999 WHERE seq >= 1000000")
        )
        connection.execute(RECORDS.insert(), [{**forged, "seq": seq}])

    report = log.verify()

    assert_found(report, Kind.INSERTED, 57)
    assert report.first.record_id == forged["id"]


def test_a_record_inserted_into_a_seq_the_log_skipped(log: Log) -> None:
    """PostgreSQL skips sequence values (rolled-back transactions); the tree records which
    seqs it has, so a record slipped into a skipped one later is found."""
    skipped = _skip_a_seq(log)
    log.write(2)
    after = time.time() + 61  # the integrator stops waiting for the skipped seq
    log.checkpoint(now=time.time())
    log.checkpoint(now=after)
    assert log.verify().ok
    forged = record(9999, consumer="ung-dung-gia")
    with log.attacker() as connection:
        connection.execute(RECORDS.insert(), [{**forged, "seq": skipped}])

    report = log.verify()

    assert_found(report, Kind.INSERTED, SIZE)  # before the leaf of the next seq
    assert report.first.seq == skipped and report.first.record_id == forged["id"]


def _skip_a_seq(log: Log) -> int:
    with log.engine.begin() as connection:
        if log.backend == "postgresql":
            return int(
                connection.execute(
                    text("SELECT nextval(pg_get_serial_sequence('exchange_record', 'seq'))")
                ).scalar_one()
            )
        # SQLite hands out max(seq) + 1: take one past it, as a rolled-back writer would
        last = int(connection.execute(text("SELECT max(seq) FROM exchange_record")).scalar_one())
        connection.execute(RECORDS.insert(), [{**record(0), "seq": last + 2}])
        return last + 1


@pytest.mark.parametrize("other", [90, 21])
def test_two_records_swapped_are_reordered(log: Log, other: int) -> None:
    first, second = row(log, 20), row(log, other)
    with log.attacker() as connection:
        for target, source in ((first, second), (second, first)):
            connection.execute(
                RECORDS.update()
                .where(RECORDS.c.seq == target["seq"])
                .values(
                    {c: source[c] for c in COLUMNS if c != "id"} | {"id": f"tmp-{c_id(target)}"}
                )
            )
        for target, source in ((first, second), (second, first)):
            connection.execute(
                RECORDS.update().where(RECORDS.c.seq == target["seq"]).values(id=source["id"])
            )

    report = log.verify()

    assert_found(report, Kind.REORDERED, 20)
    assert {p.leaf_index for p in report.problems} == {20, other}
    assert f"leaf {other}" in report.first.message


def c_id(row_: dict[str, Any]) -> str:
    return str(row_["id"])[-12:]


def test_a_truncated_log_is_named_where_the_records_end(log: Log) -> None:
    with log.attacker() as connection:
        connection.execute(
            text("DELETE FROM exchange_record WHERE seq >= :seq"), {"seq": log.seq(300)}
        )

    report = log.verify()

    assert_found(report, Kind.TRUNCATED, 300)
    assert len([p for p in report.problems if p.kind is Kind.TRUNCATED]) == 1


# --------------------------------------------------------------------------- checkpoints


def test_an_old_checkpoint_replayed(log: Log) -> None:
    with log.engine.begin() as connection:  # an INSERT: the triggers do not even object
        connection.execute(
            text(
                "INSERT INTO audit_checkpoint (size, root, time, key_id, note) "
                "SELECT size, root, time, key_id, note FROM audit_checkpoint WHERE size = 43"
            )
        )
        replayed: int = connection.execute(
            text("SELECT max(id) FROM audit_checkpoint")
        ).scalar_one()

    report = log.verify()

    assert_found(report, Kind.REPLAYED)
    assert report.first.checkpoint_id == replayed and report.first.checkpoint_size == 43


def test_newer_checkpoints_deleted_are_caught_by_the_state_file(log: Log, tmp_path: Path) -> None:
    state = tmp_path / "verified.json"
    assert log.verify(state_file=state).ok
    with log.attacker() as connection:
        connection.execute(text("DELETE FROM audit_checkpoint WHERE size > 43"))

    report = log.verify(state_file=state)

    assert_found(report, Kind.REPLAYED)
    assert "rolled back" in report.first.message and str(SIZE) in report.first.message
    assert f'"size": {SIZE}' in state.read_text()  # a failed run does not move the state on


def test_a_rewritten_log_does_not_match_the_state_file(log: Log, tmp_path: Path) -> None:
    """Someone with the signing key rebuilds the tree after editing a record: every checkpoint
    is well signed, but the root at the remembered size is not the one verified before."""
    state = tmp_path / "verified.json"
    assert log.verify(state_file=state).ok
    with log.attacker() as connection:
        connection.execute(
            text("UPDATE exchange_record SET hub_status = 500 WHERE seq = :seq"),
            {"seq": log.seq(10)},
        )
        for table in ("audit_tile", "audit_checkpoint"):
            connection.execute(text(f"DELETE FROM {table}"))
        connection.execute(
            text("UPDATE audit_tree SET size = 0, last_seq = 0, frontier = :e"),
            {"e": b""},
        )
    log.checkpoint()
    assert log.verify().ok  # on its own, the rewritten log holds together

    report = log.verify(state_file=state)

    assert_found(report, Kind.REPLAYED)
    assert f"at size {SIZE}" in report.first.message


def test_a_checkpoint_signed_by_an_unknown_key(log: Log) -> None:
    stranger = Signer.generate(ORIGIN)
    state = TreeStore(log.engine).state()
    body = Checkpoint(ORIGIN, state.size, state.root, _now()).body()
    with log.engine.begin() as connection:
        connection.execute(
            text(
                "INSERT INTO audit_checkpoint (size, root, time, key_id, note) "
                "VALUES (:size, :root, :time, :key_id, :note)"
            ),
            {"size": state.size, "root": state.root, "time": _now(), "key_id": stranger.key_id,
             "note": stranger.sign_note(body)},
        )  # fmt: skip
        forged: int = connection.execute(text("SELECT max(id) FROM audit_checkpoint")).scalar_one()

    report = log.verify()

    assert_found(report, Kind.UNKNOWN_KEY)
    assert report.first.checkpoint_id == forged
    assert stranger.key_id in report.first.message


def test_a_checkpoint_whose_signature_was_altered(log: Log) -> None:
    with log.engine.connect() as connection:
        latest = connection.execute(
            text("SELECT id, note FROM audit_checkpoint ORDER BY id DESC LIMIT 1")
        ).one()
    body, _, signature = latest.note.rstrip("\n").rpartition(" ")
    raw = bytearray(base64.b64decode(signature))
    raw[10] ^= 0x01  # inside the Ed25519 signature, after the 4-byte key id
    note = f"{body} {base64.b64encode(bytes(raw)).decode()}\n"
    with log.attacker() as connection:
        connection.execute(
            text("UPDATE audit_checkpoint SET note = :note WHERE id = :id"),
            {"note": note, "id": latest.id},
        )

    report = log.verify()

    assert_found(report, Kind.BAD_SIGNATURE)
    assert report.first.checkpoint_id == latest.id


def test_a_checkpoint_claiming_more_than_was_signed(log: Log) -> None:
    with log.engine.connect() as connection:
        latest = connection.execute(
            text("SELECT id, note FROM audit_checkpoint ORDER BY id DESC LIMIT 1")
        ).one()
    note = latest.note.replace(f"\n{SIZE}\n", f"\n{SIZE + 1}\n", 1)
    with log.attacker() as connection:
        connection.execute(
            text("UPDATE audit_checkpoint SET note = :note, size = :size WHERE id = :id"),
            {"note": note, "size": SIZE + 1, "id": latest.id},
        )

    assert_found(log.verify(), Kind.BAD_SIGNATURE)


# --------------------------------------------------------------------------- tree storage


def _tile(log: Log, idx: int) -> tuple[bytes, bytes]:
    with log.engine.connect() as connection:
        found = connection.execute(
            text("SELECT hashes, seqs FROM audit_tile WHERE level = 0 AND idx = :idx"),
            {"idx": idx},
        ).one()
    return bytes(found.hashes), bytes(found.seqs)


def _set_tile(log: Log, idx: int, **values: bytes) -> None:
    with log.engine.begin() as connection:
        for column, value in values.items():
            connection.execute(
                text(f"UPDATE audit_tile SET {column} = :v WHERE level = 0 AND idx = :idx"),
                {"v": value, "idx": idx},
            )


def test_an_altered_leaf_hash_in_a_tile(log: Log) -> None:
    hashes, _ = _tile(log, 0)
    altered = bytearray(hashes)
    altered[57 * 32] ^= 0xFF
    _set_tile(log, 0, hashes=bytes(altered))

    report = log.verify()

    assert_found(report, Kind.TREE_ALTERED, 57)
    assert report.records == SIZE  # the records themselves were proven


def test_an_altered_seq_in_a_tile(log: Log) -> None:
    _, seqs = _tile(log, 0)
    numbers = unpack_seqs(seqs)
    numbers[57] = numbers[58]
    _set_tile(log, 0, seqs=pack_seqs(numbers))

    assert_found(log.verify(), Kind.TREE_ALTERED, 57)


def test_a_deleted_tile(log: Log) -> None:
    with log.engine.begin() as connection:
        connection.execute(text("DELETE FROM audit_tile WHERE level = 0 AND idx = 1"))

    report = log.verify()

    assert_found(report, Kind.TREE_ALTERED, 256)
    assert report.records == SIZE  # the records were found in seq order without the tile


def test_an_alteration_is_caught_in_a_log_still_being_written(log: Log) -> None:
    """Records keep arriving after the attack: the later checkpoints are no excuse."""
    seq = log.seq(57)
    with log.attacker() as connection:
        connection.execute(text("UPDATE exchange_record SET purpose = 'khac' WHERE seq = :seq"),
                           {"seq": seq})  # fmt: skip
    asyncio.run(_write_more(log))
    log.checkpoint()

    assert_found(log.verify(), Kind.MODIFIED, 57)


async def _write_more(log: Log) -> None:
    writer = AuditWriter(log.engine)
    try:
        await asyncio.gather(*(writer.write(Record(**record(n))) for n in range(50)))
    finally:
        await writer.aclose()


def _now() -> Any:
    from datetime import UTC, datetime

    return datetime.now(UTC).replace(microsecond=0)


def test_an_altered_entry_above_the_leaves(log: Log) -> None:
    """Level-1 tiles are what inclusion proofs are computed from: a wrong one is caught too."""
    with log.engine.begin() as connection:
        entry: bytes = connection.execute(
            text("SELECT hashes FROM audit_tile WHERE level = 1 AND idx = 0")
        ).scalar_one()
        connection.execute(
            text("UPDATE audit_tile SET hashes = :h WHERE level = 1 AND idx = 0"),
            {"h": bytes(32 - len(b"x")) + b"x" + bytes(entry)[32:]},
        )

    report = log.verify()

    assert_found(report, Kind.TREE_ALTERED, 0)
    assert "tile level 1, entry 0" in report.first.message
