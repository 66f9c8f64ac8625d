"""The integrator: records become leaves, checkpoints are signed, the log's own events recorded.

Runs on SQLite and PostgreSQL, with the real writer, tiles and keys; the tree it builds is
checked against a tree computed from the records alone.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Coroutine
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, text

from audit import merkle, proofs
from audit.canonical import leaf_hash
from audit.errors import UnknownKey
from audit.keys import load_signers, rotate, write_signers
from audit.log import GAP_SECONDS, AuditLog
from audit.notes import Checkpoint, Verifier, open_note
from audit.records import ExchangeRecord, Record, new_record_id
from audit.tree import TreeStore
from audit.writer import AuditWriter
from gateway.db import make_engine, migrate
from registry.types import utcnow
from tests.conftest import BACKENDS

ORIGIN = "test.lgsp.example/audit"
RECORDS = ExchangeRecord.__table__  # type: ignore[attr-defined]


@pytest.fixture(params=BACKENDS)
def engine(request, database_urls):
    engine = make_engine(database_urls(request.param))
    migrate(engine)
    yield engine
    engine.dispose()


@pytest.fixture
def key_file(tmp_path: Path) -> Path:
    return tmp_path / "audit.key"


def _log(engine: Engine, key_file: Path, **kwargs: Any) -> AuditLog:
    signers = load_signers(key_file, name=ORIGIN, generate=True)
    return AuditLog(engine, signers=signers, origin=ORIGIN, **kwargs)


def _row(n: int, **extra: Any) -> dict[str, Any]:
    return {"id": new_record_id(), "kind": "exchange", "time": utcnow(), "request_id": f"r{n}",
            "hub_status": 200, "subject_hash": f"{n:064x}", **extra}  # fmt: skip


def _insert(engine: Engine, rows: list[dict[str, Any]]) -> None:
    with engine.begin() as connection:
        connection.execute(RECORDS.insert(), list(rows))


def _records_in_leaf_order(engine: Engine) -> list[dict[str, Any]]:
    store = TreeStore(engine)
    size = store.state().size
    seqs = store.seqs(0, size)
    with engine.connect() as connection:
        rows = {
            r["seq"]: dict(r)
            for r in connection.execute(RECORDS.select().order_by(RECORDS.c.seq)).mappings()
        }
    return [rows[s] for s in seqs]


def _latest(engine: Engine) -> proofs.StoredCheckpoint:
    with engine.connect() as connection:
        checkpoint = proofs.latest_checkpoint(connection)
    assert checkpoint is not None
    return checkpoint


def test_every_record_becomes_a_leaf_and_the_checkpoint_signs_the_root(engine, key_file):
    audit_log = _log(engine, key_file)
    _insert(engine, [_row(n) for n in range(700)])  # crosses two level-0 tiles
    first = audit_log.integrate(force_checkpoint=True)
    assert first.leaves == 700 and first.checkpoint == 700
    _insert(engine, [_row(n) for n in range(700, 1000)])
    assert audit_log.integrate().checkpoint is None  # not due yet: 5 s between checkpoints
    audit_log.integrate(force_checkpoint=True)

    records = _records_in_leaf_order(engine)
    assert [r["request_id"] for r in records] == [f"r{n}" for n in range(1000)]
    expected = merkle.root_from_leaves([leaf_hash(r) for r in records])
    checkpoint = _latest(engine)
    assert (checkpoint.size, checkpoint.root) == (1000, expected)
    # The note is a C2SP checkpoint signed by the key in the file, and only that key opens it.
    signer = load_signers(key_file, name=ORIGIN, generate=False)[0]
    body, key_ids = open_note(checkpoint.note, [Verifier.from_vkey(signer.vkey)])
    parsed = Checkpoint.parse(body)
    assert (parsed.origin, parsed.size, parsed.root) == (ORIGIN, 1000, expected)
    assert key_ids == [signer.key_id]
    other = load_signers(key_file.with_name("other.key"), name=ORIGIN, generate=True)[0]
    with pytest.raises(UnknownKey):
        open_note(checkpoint.note, [Verifier.from_vkey(other.vkey)])

    # Every record's proof against the checkpoint verifies; the consistency proof too.
    with engine.connect() as connection:
        found = proofs.inclusions(connection, [r["seq"] for r in records], checkpoint)
    for index, (record, item) in enumerate(zip(records, found, strict=True)):
        assert item is not None
        leaf_index, leaf, path = item
        assert leaf_index == index and leaf == leaf_hash(record)
        assert merkle.verify_inclusion(leaf, leaf_index, 1000, path, checkpoint.root)
    proof, root_from, root_to = proofs.consistency(engine, 700, 1000)
    assert root_to == checkpoint.root
    assert merkle.verify_consistency(700, 1000, root_from, root_to, proof)


def test_a_checkpoint_is_signed_when_due_and_only_when_the_tree_grew(engine, key_file):
    audit_log = _log(engine, key_file, checkpoint_seconds=5.0)
    assert audit_log.integrate(now=1000.0).checkpoint is None  # empty tree: nothing to sign
    _insert(engine, [_row(1)])
    assert audit_log.integrate(now=1000.0).checkpoint == 1  # the first one at once
    _insert(engine, [_row(2)])
    assert audit_log.integrate(now=1002.0).checkpoint is None
    assert _latest(engine).size == 1
    assert audit_log.integrate(now=1004.9).checkpoint is None
    assert audit_log.integrate(now=1005.5).checkpoint == 2  # due: 5 s since the last
    assert audit_log.integrate(now=1100.0).checkpoint is None  # nothing new: no checkpoint


def test_gaps_wait_for_late_commits_then_expire(engine, key_file):
    """PostgreSQL commits seqs out of order: a late record becomes the next leaf."""
    audit_log = _log(engine, key_file)
    _insert(engine, [{**_row(n), "seq": n} for n in (1, 2, 5)])
    result = audit_log.integrate(now=1000.0)
    assert result.leaves == 3 and result.gaps == 1  # 3..4 missing
    _insert(engine, [{**_row(4), "seq": 4}])  # commits late
    result = audit_log.integrate(now=1001.0)
    assert result.leaves == 1 and result.gaps == 1  # 3 still missing
    store = TreeStore(engine)
    assert store.seqs(0, 4) == [1, 2, 5, 4]
    assert store.leaf_index(4) == 3 and store.leaf_index(5) == 2 and store.leaf_index(3) is None
    result = audit_log.integrate(now=1000.0 + GAP_SECONDS + 1)
    assert result.gaps == 0 and result.dropped_gaps == [(3, 3)]
    _insert(engine, [{**_row(6), "seq": 6}])
    audit_log.integrate(now=1100.0, force_checkpoint=True)
    records = _records_in_leaf_order(engine)
    assert [r["seq"] for r in records] == [1, 2, 5, 4, 6]
    assert _latest(engine).root == merkle.root_from_leaves([leaf_hash(r) for r in records])


def test_processes_integrating_at_once_build_one_tree(engine, key_file, tmp_path):
    """Every replica runs passes; the state row's lock makes them take turns."""
    logs = [_log(engine, key_file), _log(engine, key_file)]
    stop = threading.Event()
    errors: list[BaseException] = []

    def integrate(audit_log: AuditLog) -> None:
        while not stop.is_set():
            try:
                audit_log.integrate()
            except BaseException as exc:  # reported below
                errors.append(exc)
                return

    threads = [threading.Thread(target=integrate, args=(lg,)) for lg in logs]
    for thread in threads:
        thread.start()
    for batch in range(20):
        _insert(engine, [_row(batch * 50 + n) for n in range(50)])
    stop.set()
    for thread in threads:
        thread.join()
    assert not errors
    logs[0].integrate(force_checkpoint=True)
    records = _records_in_leaf_order(engine)
    assert len(records) == 1000 and len({r["seq"] for r in records}) == 1000
    assert _latest(engine).root == merkle.root_from_leaves([leaf_hash(r) for r in records])


def _audit_events(engine: Engine) -> list[tuple[str, dict[str, Any]]]:
    with engine.connect() as connection:
        rows = connection.execute(
            RECORDS.select().where(RECORDS.c.kind == "audit").order_by(RECORDS.c.seq)
        ).mappings()
        return [(r["action"], r["details"]) for r in rows]


def _run(coroutine: Coroutine[Any, Any, None]) -> None:
    asyncio.run(coroutine)


def test_start_and_stop_are_signed_records_and_a_reconfiguration_is_recorded(engine, key_file):
    async def session(**kwargs) -> None:
        writer = AuditWriter(engine)
        audit_log = _log(engine, key_file, writer=writer, **kwargs)
        await audit_log.start()
        await writer.write(Record(**_row(1)))
        await audit_log.stop()
        await writer.aclose()

    _run(session(checkpoint_seconds=5.0))
    events = _audit_events(engine)
    assert [action for action, _ in events] == ["key-added", "start", "stop"]
    assert events[1][1]["config"]["checkpoint_ms"] == 5000
    assert events[1][1]["resume"]["consistent"] is True
    # The stop record is covered by the last checkpoint: nothing after it is unsigned.
    with engine.connect() as connection:
        total = connection.execute(text("SELECT count(*) FROM exchange_record")).scalar_one()
    assert _latest(engine).size == total

    _run(session(checkpoint_seconds=2.0))
    actions = [action for action, _ in _audit_events(engine)]
    assert actions == ["key-added", "start", "stop", "start", "reconfigure", "stop"]
    changes = _audit_events(engine)[4][1]["changes"]
    assert changes == {"checkpoint_ms": [5000, 2000]}


def test_a_restart_proves_the_stored_tree_extends_the_last_checkpoint(engine, key_file):
    audit_log = _log(engine, key_file)
    _insert(engine, [_row(n) for n in range(300)])
    audit_log.integrate(force_checkpoint=True)
    _insert(engine, [_row(n) for n in range(300, 310)])
    audit_log.integrate()
    resumed = audit_log.check_resume()
    assert resumed == {"size": 310, "checkpoint": 300, "consistent": True}

    # The hash of the first 256 leaves changed behind the hub's back (a level-1 tile entry):
    # the stored tree no longer extends the checkpoint. (A changed leaf hash alone is the
    # verifier's to find: it recomputes every leaf; this check reads only the top of the tree.)
    with engine.begin() as connection:
        tile = connection.execute(text("SELECT hashes FROM audit_tile WHERE level = 1 AND idx = 0"))
        data = bytearray(tile.scalar_one())
        data[5] ^= 1
        connection.execute(
            text("UPDATE audit_tile SET hashes = :h WHERE level = 1 AND idx = 0"),
            {"h": bytes(data)},
        )
    resumed = audit_log.check_resume()
    assert resumed["consistent"] is False and "differs" in resumed["problem"]


def test_a_rotated_key_is_handed_over_in_a_checkpoint_both_keys_sign(engine, key_file):
    async def session() -> None:
        writer = AuditWriter(engine)
        audit_log = _log(engine, key_file, writer=writer)
        await audit_log.start()
        await writer.write(Record(**_row(1)))
        await audit_log.stop()
        await writer.aclose()

    _run(session())
    old = load_signers(key_file, name=ORIGIN, generate=False)[0]
    new = rotate(key_file, name=ORIGIN)
    _run(session())

    events = _audit_events(engine)
    added = [d for action, d in events if action == "key-added"]
    assert added[-1]["key_id"] == new.key_id and added[-1]["previous_key_ids"] == [old.key_id]
    with engine.connect() as connection:
        notes = [
            r.note
            for r in connection.execute(text("SELECT note FROM audit_checkpoint ORDER BY id"))
        ]
        keys = connection.execute(text("SELECT key_id, retired_at FROM audit_key")).all()
    assert {k.key_id: k.retired_at is not None for k in keys} == {
        old.key_id: True,
        new.key_id: False,
    }
    verifiers = [Verifier.from_vkey(old.vkey), Verifier.from_vkey(new.vkey)]
    signed_by = [open_note(n, verifiers)[1] for n in notes]
    # Before the rotation only the old key signs; from the restart on, both keys in the file
    # sign, so a verifier that trusts only the old key follows the handover.
    handover = next(i for i, ids in enumerate(signed_by) if new.key_id in ids)
    assert all(ids == [old.key_id] for ids in signed_by[:handover])
    assert all(sorted(ids) == sorted([old.key_id, new.key_id]) for ids in signed_by[handover:])
    # Once the old key leaves the file, the new key signs alone.
    write_signers(key_file, [new])
    _run(session())
    with engine.connect() as connection:
        last = connection.execute(
            text("SELECT note FROM audit_checkpoint ORDER BY id DESC LIMIT 1")
        ).scalar_one()
    assert open_note(last, [Verifier.from_vkey(new.vkey)])[1] == [new.key_id]
    with pytest.raises(UnknownKey):
        open_note(last, [Verifier.from_vkey(old.vkey)])


def test_replicas_starting_together_on_a_new_database_add_the_key_once(engine, key_file):
    """`lgsp serve --workers 2` on a fresh database: both start, one `key-added` record."""
    load_signers(key_file, name=ORIGIN, generate=True)
    barrier = threading.Barrier(2)
    errors: list[BaseException] = []

    def replica() -> None:
        async def run() -> None:
            audit_log = _log(engine, key_file)
            barrier.wait()
            await audit_log.start()
            await audit_log.stop()

        try:
            asyncio.run(run())
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=replica) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    actions = [action for action, _ in _audit_events(engine)]
    assert actions.count("key-added") == 1
    assert actions.count("start") == 2 and actions.count("stop") == 2
