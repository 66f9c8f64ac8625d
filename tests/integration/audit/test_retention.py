"""Retention: old records move to archive files that verify offline; the live log still proves."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import json
import os
import subprocess
import sys
import textwrap
import zipfile
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, text

from audit import merkle, proofs
from audit.bundle import verify_bundle
from audit.canonical import leaf_hash
from audit.errors import ArchiveError, ProofError
from audit.log import AuditLog
from audit.notes import Signer, Verifier
from audit.records import Record, new_record_id
from audit.retention import archive, file_name, run_daily
from audit.tree import TreeStore
from audit.verify import verify_log
from audit.writer import AuditWriter
from gateway.cli import audit_retention as cli_audit_retention
from registry.types import utcnow
from tests.wait import wait_until_async

ORIGIN = "lgsp.test/audit"
OLD = timedelta(days=40)
REPO = Path(__file__).resolve().parents[3]


@pytest.fixture
def signer():
    return Signer.generate(ORIGIN)


def write(engine: Engine, rows: list[dict[str, Any]]) -> None:
    """Commit records through the hub's own writer (times as given: old ones for the test)."""

    async def main() -> None:
        writer = AuditWriter(engine)
        for row in rows:
            await writer.write(Record(**row))
        await writer.aclose()

    asyncio.run(main())


def records(n: int, *, age: timedelta, tag: str) -> list[dict[str, Any]]:
    base = utcnow() - age
    return [
        {"id": new_record_id(), "kind": "exchange", "time": base + timedelta(milliseconds=i),
         "request_id": f"{tag}-{i}", "service": "tra-cuu", "hub_status": 200,
         "subject_hash": hashlib.sha256(f"{tag}{i % 7}".encode()).hexdigest()}
        for i in range(n)
    ]  # fmt: skip


def checkpointed(engine: Engine, signer: Signer) -> AuditLog:
    """Start and stop the log: the key is registered, every record integrated and covered by a
    signed checkpoint."""
    log = AuditLog(engine, signers=[signer], origin=ORIGIN, checkpoint_seconds=0)

    async def main() -> None:
        await log.start()
        await log.stop()

    asyncio.run(main())
    return log


def seqs(engine: Engine) -> list[int]:
    with engine.connect() as connection:
        rows = connection.execute(text("SELECT seq FROM exchange_record ORDER BY seq")).all()
        return [int(row.seq) for row in rows]


def archive_rows(engine: Engine) -> list[Any]:
    with engine.connect() as connection:
        return list(connection.execute(text("SELECT * FROM audit_archive ORDER BY first_leaf")))


def latest_checkpoint(engine: Engine) -> tuple[int, bytes]:
    with engine.connect() as connection:
        row = connection.execute(
            text("SELECT size, root FROM audit_checkpoint ORDER BY size DESC LIMIT 1")
        ).one()
    return int(row.size), bytes(row.root)


def assert_live_records_prove(engine: Engine) -> int:
    """Every record still in the database is in the tree at its leaf, with a proof that holds
    against the latest checkpoint."""
    store = TreeStore(engine)
    size, root = latest_checkpoint(engine)
    nodes = store.nodes()
    with engine.connect() as connection:
        rows = [
            dict(r) for r in connection.execute(text("SELECT * FROM exchange_record")).mappings()
        ]
    proven = 0
    for row in rows:
        index = store.leaf_index(int(row["seq"]))
        if index is None or index >= size:
            continue  # written after the checkpoint
        proof = merkle.inclusion_proof(index, size, nodes)
        assert merkle.verify_inclusion(leaf_hash(row), index, size, proof, root), row["seq"]
        proven += 1
    return proven


def _first_line(path: Path) -> bytes:
    with zipfile.ZipFile(path) as bundle:
        return bundle.read("records.ndjson").split(b"\n", 1)[0]


def assert_verifies(path: Path, records: int) -> None:
    checked = verify_bundle(path)
    assert checked.ok, checked.message
    assert checked.records == records


def assert_append_only(engine: Engine) -> None:
    """An ordinary UPDATE or DELETE is still refused, archiving notwithstanding."""
    for statement in (
        "UPDATE exchange_record SET hub_status = 500",
        "DELETE FROM exchange_record",
    ):
        with engine.connect() as connection, pytest.raises(Exception, match="append-only"):
            connection.execute(text(statement))
    if engine.dialect.name == "postgresql":  # the archiving switch allows a DELETE only
        with engine.connect() as connection:
            connection.execute(text("SET LOCAL lgsp.archiving = 'on'"))
            with pytest.raises(Exception, match="append-only"):
                connection.execute(text("UPDATE exchange_record SET hub_status = 500"))


def test_old_records_move_to_files_that_verify_offline(engine, signer, tmp_path):
    write(engine, records(300, age=OLD, tag="old"))
    write(engine, records(20, age=timedelta(0), tag="new"))
    checkpointed(engine, signer)
    size_before, root_before = latest_checkpoint(engine)
    all_before = seqs(engine)

    results = archive(engine, older_than=timedelta(days=30), directory=tmp_path, max_records=128)

    # Three files, contiguous from leaf 0, together the 300 old records and nothing else.
    assert [(r.first_leaf, r.end_leaf) for r in results] == [(0, 128), (128, 256), (256, 300)]
    assert [r.path.name for r in results] == [file_name(0), file_name(128), file_name(256)]
    assert all(r.checkpoint_size == size_before for r in results)
    remaining = seqs(engine)
    archived = set(all_before) - set(remaining)
    assert archived == set(all_before[:300])
    rows = archive_rows(engine)
    assert [(r.first_leaf, r.end_leaf, r.records) for r in rows] == [
        (0, 128, 128), (128, 256, 128), (256, 300, 44)
    ]  # fmt: skip
    for result, row in zip(results, rows, strict=True):
        assert Path(row.path) == result.path
        assert hashlib.sha256(result.path.read_bytes()).hexdigest() == row.sha256 == result.sha256
        assert_verifies(result.path, result.records)  # offline: the file, nothing else
    # The command an auditor runs on another machine: no database, no network.
    offline = subprocess.run(
        [sys.executable, "-m", "gateway.cli", "audit", "verify-bundle", str(results[0].path)],
        cwd=REPO, capture_output=True, timeout=120, check=False, env={"PATH": os.environ["PATH"]},
    )  # fmt: skip
    assert offline.returncode == 0, offline.stdout + offline.stderr

    # Each file is announced by an `audit` record, which the log proves like any other.
    with engine.connect() as connection:
        announced = connection.execute(
            text("SELECT details FROM exchange_record WHERE action = 'archive' ORDER BY seq")
        ).scalars()
        details = [d if isinstance(d, dict) else json.loads(d) for d in announced]
    assert [(d["file"], d["first_leaf"], d["end_leaf"]) for d in details] == [
        (file_name(0), 0, 128), (file_name(128), 128, 256), (file_name(256), 256, 300)
    ]  # fmt: skip
    assert [d["sha256"] for d in details] == [r.sha256 for r in results]

    # The tree did not change under the archived leaves: it grows consistently from before.
    log = AuditLog(engine, signers=[signer], origin=ORIGIN, checkpoint_seconds=0)
    log.integrate(force_checkpoint=True)
    size_after, root_after = latest_checkpoint(engine)
    assert size_after == size_before + 3
    nodes = TreeStore(engine).nodes()
    proof = merkle.consistency_proof(size_before, size_after, nodes)
    assert merkle.verify_consistency(size_before, size_after, root_before, root_after, proof)
    assert assert_live_records_prove(engine) == len(remaining)
    # What /audit/proofs/inclusion serves: a live record's proof; an archived one is in its file.
    with engine.connect() as connection:
        live_id, archived_id = (
            connection.execute(
                text("SELECT id FROM exchange_record WHERE request_id = :r"), {"r": "new-3"}
            ).scalar_one(),
            json.loads(_first_line(results[0].path))["id"],
        )
    served = proofs.inclusion(engine, live_id)
    assert merkle.verify_inclusion(
        served.leaf_hash, served.leaf_index, size_after, served.proof, root_after
    )
    with pytest.raises(ProofError, match="archive file") as refused:
        proofs.inclusion(engine, archived_id)
    assert refused.value.status == 404
    assert_append_only(engine)

    # Nothing is old any more.
    assert archive(engine, older_than=timedelta(days=30), directory=tmp_path) == []


def test_live_verification_passes_after_archiving(engine, signer, tmp_path):
    write(engine, records(40, age=OLD, tag="old"))
    checkpointed(engine, signer)
    archive(engine, older_than=timedelta(days=30), directory=tmp_path)
    AuditLog(engine, signers=[signer], origin=ORIGIN, checkpoint_seconds=0).integrate(
        force_checkpoint=True
    )
    report = verify_log(engine, [Verifier.from_vkey(signer.vkey)], origin=ORIGIN)
    assert report.ok, report.as_dict()
    assert report.archived == 40
    assert report.records == report.leaves - 40


def register(engine: Engine, signer: Signer) -> None:
    """The signing key in audit_key, as the log's start would put it."""
    with engine.begin() as connection:
        connection.execute(
            text("INSERT INTO audit_key (key_id, name, vkey, created_at) "
                 "VALUES (:key_id, :name, :vkey, :now)"),
            {"key_id": signer.key_id, "name": signer.name, "vkey": signer.vkey, "now": utcnow()},
        )  # fmt: skip


def test_only_records_a_checkpoint_covers_are_archived(engine, signer, tmp_path):
    register(engine, signer)
    log = AuditLog(engine, signers=[signer], origin=ORIGIN, checkpoint_seconds=3600)
    write(engine, records(10, age=OLD, tag="covered"))
    assert log.integrate(force_checkpoint=True).checkpoint == 10
    # Ten more old records, in the tree but not yet in a checkpoint (the next one is not due).
    write(engine, records(10, age=OLD, tag="uncovered"))
    assert log.integrate().checkpoint is None
    assert log.store.state().size == 20

    results = archive(engine, older_than=timedelta(days=30), directory=tmp_path)

    assert [(r.first_leaf, r.end_leaf, r.checkpoint_size) for r in results] == [(0, 10, 10)]
    assert len(seqs(engine)) == 10 + 1  # the uncovered ones, and the `archive` record
    assert_verifies(results[0].path, 10)
    # Once a checkpoint covers them, they go too.
    log.integrate(force_checkpoint=True)
    results = archive(engine, older_than=timedelta(days=30), directory=tmp_path)
    assert [(r.first_leaf, r.end_leaf, r.checkpoint_size) for r in results] == [(10, 20, 21)]
    assert_verifies(results[0].path, 10)


def test_a_record_altered_behind_the_hubs_back_stops_archiving(engine, signer, tmp_path):
    write(engine, records(10, age=OLD, tag="old"))
    checkpointed(engine, signer)
    before = seqs(engine)
    with engine.begin() as connection:
        if engine.dialect.name == "postgresql":
            connection.execute(text("ALTER TABLE exchange_record DISABLE TRIGGER USER"))
            connection.execute(text("UPDATE exchange_record SET hub_status = 403 WHERE seq = 4"))
            connection.execute(text("ALTER TABLE exchange_record ENABLE TRIGGER USER"))
        else:
            connection.execute(text("DROP TRIGGER exchange_record_no_update"))
            connection.execute(text("UPDATE exchange_record SET hub_status = 403 WHERE seq = 4"))
    with pytest.raises(ArchiveError, match="leaf 3"):
        archive(engine, older_than=timedelta(days=30), directory=tmp_path)
    assert seqs(engine) == before
    assert archive_rows(engine) == []


def test_a_failure_inside_the_transaction_deletes_nothing(engine, signer, tmp_path):
    """The delete, the archive row and the triggers' removal (SQLite) roll back together."""
    write(engine, records(10, age=OLD, tag="old"))
    checkpointed(engine, signer)
    before = seqs(engine)
    # A trigger refusing the `archive` record makes the transaction fail after the delete.
    with engine.begin() as connection:
        if engine.dialect.name == "postgresql":
            connection.execute(text(
                "CREATE FUNCTION test_refuse() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
                "RAISE EXCEPTION 'refused for the test'; END $$"
            ))  # fmt: skip
            connection.execute(text(
                "CREATE TRIGGER test_refuse BEFORE INSERT ON exchange_record FOR EACH ROW "
                "WHEN (NEW.action = 'archive') EXECUTE FUNCTION test_refuse()"
            ))  # fmt: skip
        else:
            connection.execute(text(
                "CREATE TRIGGER test_refuse BEFORE INSERT ON exchange_record "
                "WHEN NEW.action = 'archive' BEGIN SELECT RAISE(ABORT, 'refused for the test'); END"
            ))  # fmt: skip
    with pytest.raises(Exception, match="refused for the test"):
        archive(engine, older_than=timedelta(days=30), directory=tmp_path)
    assert seqs(engine) == before
    assert archive_rows(engine) == []
    assert_append_only(engine)


def test_a_crash_between_file_and_delete_is_redone(engine, url, signer, tmp_path):
    write(engine, records(50, age=OLD, tag="old"))
    checkpointed(engine, signer)
    before = seqs(engine)
    # The process dies (os._exit: no cleanup at all) once the file is written, before the
    # transaction that deletes the records.
    script = textwrap.dedent("""
        import os, sys
        from datetime import timedelta
        from pathlib import Path
        import audit.retention as retention
        from gateway.db import make_engine
        retention._commit = lambda *args, **kwargs: os._exit(9)
        retention.archive(make_engine(sys.argv[1]), older_than=timedelta(days=30),
                          directory=Path(sys.argv[2]))
    """)
    crashed = subprocess.run(
        [sys.executable, "-c", script, url, str(tmp_path)], cwd=REPO, capture_output=True,
        timeout=120, check=False,
    )  # fmt: skip
    assert crashed.returncode == 9, crashed.stderr.decode()
    left = tmp_path / file_name(0)
    assert left.exists()  # written, fsynced, never registered
    assert seqs(engine) == before
    assert archive_rows(engine) == []
    assert [p.name for p in tmp_path.iterdir()] == [file_name(0)]  # no temporary left over

    results = archive(engine, older_than=timedelta(days=30), directory=tmp_path)

    assert [(r.first_leaf, r.end_leaf, r.path) for r in results] == [(0, 50, left)]
    assert hashlib.sha256(left.read_bytes()).hexdigest() == archive_rows(engine)[0].sha256
    assert_verifies(left, 50)
    assert len(seqs(engine)) == len(before) - 50 + 1


def test_two_archivers_do_not_both_archive(engine, signer, tmp_path):
    write(engine, records(20, age=OLD, tag="old"))
    checkpointed(engine, signer)
    from audit import retention

    with retention._exclusive(engine) as mine:
        assert mine
        # Another process (here: the same one asking again) finds the lock taken.
        assert archive(engine, older_than=timedelta(days=30), directory=tmp_path) == []
    assert len(archive(engine, older_than=timedelta(days=30), directory=tmp_path)) == 1


def test_the_cli_archives(engine, url, signer, tmp_path, monkeypatch, capsys):
    write(engine, records(5, age=OLD, tag="old"))
    checkpointed(engine, signer)
    monkeypatch.setenv("LGSP_DATABASE_URL", url)
    parser = argparse.ArgumentParser(prog="lgsp audit")
    cli_audit_retention.add_commands(parser.add_subparsers(dest="command", required=True))

    def run(*argv: str) -> int:
        args = parser.parse_args(argv)
        return int(args.func(args))

    monkeypatch.delenv("LGSP_AUDIT_RETENTION_DAYS", raising=False)
    assert run("archive") == 2
    assert "--older-than" in capsys.readouterr().err
    assert run("archive", "--older-than", "30", "--dir", str(tmp_path)) == 0
    out = capsys.readouterr().out
    assert f"{tmp_path / file_name(0)}  leaves 0-4  5 records" in out
    assert run("archive", "--older-than", "30", "--dir", str(tmp_path)) == 0
    assert capsys.readouterr().out.strip() == "nothing to archive"
    assert os.path.exists(tmp_path / file_name(0))


def test_an_altered_archive_file_fails_verification(engine, signer, tmp_path):
    write(engine, records(8, age=OLD, tag="old"))
    checkpointed(engine, signer)
    (result,) = archive(engine, older_than=timedelta(days=30), directory=tmp_path)
    with zipfile.ZipFile(result.path) as original:
        members = {name: original.read(name) for name in original.namelist()}
    lines = members["records.ndjson"].split(b"\n")
    lines[5] = lines[5].replace(b'"hub_status":200', b'"hub_status":404')
    members["records.ndjson"] = b"\n".join(lines)
    altered = tmp_path / "altered.zip"
    with zipfile.ZipFile(altered, "w") as out:
        for name, data in members.items():
            out.writestr(name, data)

    checked = verify_bundle(altered)

    assert checked.exit_code == 4  # a record is not in the checkpoint
    assert "line 6" in checked.message and "leaf 5" in checked.message
    # And a key the auditor pinned that did not sign it is refused.
    assert verify_bundle(result.path, [Signer.generate(ORIGIN).vkey]).exit_code == 3


def test_the_runtime_task_archives_on_its_first_run(engine, signer, tmp_path):
    write(engine, records(6, age=OLD, tag="old"))
    checkpointed(engine, signer)

    async def main() -> None:
        task = asyncio.create_task(
            run_daily(engine, retention_days=30, directory=tmp_path, first_after=0)
        )

        async def archived() -> bool:
            return bool(archive_rows(engine))

        try:
            await wait_until_async(archived, timeout=10, interval=0.05, what="an archive row")
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    asyncio.run(main())
    assert [(r.first_leaf, r.end_leaf) for r in archive_rows(engine)] == [(0, 6)]
