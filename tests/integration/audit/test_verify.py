"""`verify_log` and `lgsp audit verify` on an intact log: what it checks, trusts and remembers.

The log helpers are in logs.py, the fixtures (`log`, `fresh_log`) in conftest.py.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import text

from audit.log import AuditLog
from audit.notes import Signer, Verifier
from audit.tree import TreeStore
from audit.verify import Kind, verify_log
from gateway.cli import audit_verify as cli_audit_verify
from registry.types import utcnow
from tests.integration.audit.logs import ORIGIN, Log

# --------------------------------------------------------------------------- intact logs


def test_an_intact_log_verifies_with_every_record_hashed(log: Log) -> None:
    report = log.verify()

    assert report.ok, report.problems
    assert report.exit_code == 0
    size = TreeStore(log.engine).state().size
    assert report.latest is not None and report.latest.size == size
    assert report.leaves == size and report.records == size  # nothing skipped
    assert report.checkpoint_rows >= 4 and report.checkpoints == report.checkpoint_rows
    assert report.trusted_keys == [log.signer.key_id]


def test_an_empty_log_has_nothing_to_prove(fresh_log: Log) -> None:
    report = fresh_log.verify()

    assert report.ok, report.problems  # its start and stop records, signed on stop
    assert report.records >= 2


def test_records_after_the_latest_checkpoint_are_noted_not_failed(log: Log) -> None:
    log.write(5)
    log.audit.integrate()  # into the tree, not yet signed

    report = log.verify()

    assert report.ok, report.problems
    assert any("not signed yet" in note for note in report.notes)


def test_a_verifier_without_the_hubs_key_trusts_nothing(log: Log) -> None:
    stranger = Signer.generate(ORIGIN)

    report = verify_log(log.engine, [Verifier.from_vkey(stranger.vkey)], origin=ORIGIN)

    assert report.first is not None and report.first.kind is Kind.UNKNOWN_KEY
    assert report.exit_code == 16
    assert log.signer.key_id in report.first.message


def rotate(log: Log) -> Signer:
    """A restart with a new key first in the key file and the old one after it."""
    new = Signer.generate(ORIGIN)
    rotated = AuditLog(log.engine, signers=[new, log.signer], origin=ORIGIN)

    async def restart() -> None:
        await rotated.start()
        await rotated.stop()

    asyncio.run(restart())
    log.audit = rotated
    return new


def test_a_rotated_key_is_learned_from_the_log_itself(fresh_log: Log) -> None:
    """The new key's `key-added` record is covered by a checkpoint the old key co-signed: an
    auditor who pinned only the old key trusts the new one from there on."""
    log = fresh_log
    log.write(20)
    log.checkpoint()
    new = rotate(log)
    log.write(10)
    log.checkpoint()  # signed by the new key alone

    pinned_old = log.verify()
    assert pinned_old.ok, pinned_old.problems
    assert pinned_old.trusted_keys == [log.signer.key_id, new.key_id]

    pinned_new = verify_log(log.engine, [Verifier.from_vkey(new.vkey)], origin=ORIGIN)
    assert pinned_new.first is not None and pinned_new.first.kind is Kind.UNKNOWN_KEY


def test_a_record_altered_before_a_rotation_is_named_not_the_new_key(fresh_log: Log) -> None:
    """The handover record is proven by its tile even when an earlier record was altered."""
    log = fresh_log
    log.write(20)
    log.checkpoint()
    rotate(log)
    log.write(10)
    log.checkpoint()
    with log.attacker() as connection:
        connection.execute(
            text("UPDATE exchange_record SET hub_status = 500 WHERE seq = :seq"),
            {"seq": log.seq(7)},
        )

    report = log.verify()

    assert [(p.kind, p.leaf_index) for p in report.problems] == [(Kind.MODIFIED, 7)]


def test_the_state_file_remembers_the_last_verified_checkpoint(log: Log, tmp_path: Path) -> None:
    state = tmp_path / "verified.json"

    assert log.verify(state_file=state).ok
    remembered = state.read_text()
    assert f'"size": {TreeStore(log.engine).state().size}' in remembered

    log.write(3)
    size = log.checkpoint()
    assert log.verify(state_file=state).ok
    assert f'"size": {size}' in state.read_text()


# --------------------------------------------------------------------------- the CLI


def _cli(monkeypatch: pytest.MonkeyPatch, log: Log, *argv: str) -> int:
    monkeypatch.setenv("LGSP_DATABASE_URL", log.url)
    monkeypatch.setenv("LGSP_AUDIT_ORIGIN", ORIGIN)
    return cli_audit_verify.main(list(argv))


def test_cli_verify_prints_a_summary_and_exits_0(
    log: Log, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    code = _cli(monkeypatch, log, "verify", "--key", log.signer.vkey, "--quiet")

    out = capsys.readouterr().out
    assert code == 0, out
    assert "audit log verified: OK" in out
    assert f"latest verified checkpoint: size {TreeStore(log.engine).state().size}" in out


def test_cli_verify_uses_the_hubs_key_file_by_default(
    log: Log, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    key_file = tmp_path / "audit.key"
    key_file.write_text(log.signer.skey + "\n")
    monkeypatch.setenv("LGSP_AUDIT_KEY_FILE", str(key_file))

    assert _cli(monkeypatch, log, "verify", "--quiet") == 0, capsys.readouterr()


def test_cli_verify_exit_code_names_the_failure(
    log: Log, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    keys = tmp_path / "keys.txt"
    keys.write_text(f"current {log.signer.vkey}\n")
    with log.attacker() as connection:
        connection.execute(
            text("UPDATE exchange_record SET hub_status = 403 WHERE seq = :seq"),
            {"seq": log.seq(57)},
        )

    code = _cli(monkeypatch, log, "verify", "--keys-file", str(keys), "--json", "--quiet")

    out = capsys.readouterr().out
    assert code == 10, out
    assert '"kind": "modified"' in out and '"leaf_index": 57' in out


def test_cli_verify_without_any_key_says_how_to_give_one(
    log: Log, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("LGSP_AUDIT_KEY_FILE", str(tmp_path / "absent.key"))

    assert _cli(monkeypatch, log, "verify") == 1
    assert "--key VKEY" in capsys.readouterr().err


# --------------------------------------------------------------------------- archived ranges


def test_archived_leaves_are_proven_by_their_tiles(log: Log, tmp_path: Path) -> None:
    """Retention moves records out of the database; their leaves stay proven by the tiles."""
    from audit.retention import archive

    later = utcnow() + timedelta(days=31)
    results = archive(log.engine, older_than=timedelta(days=30), directory=tmp_path, now=later)
    gone = sum(r.end_leaf - r.first_leaf for r in results)
    assert gone == 373
    log.checkpoint()  # covers the `archive` record

    report = log.verify()

    assert report.ok, report.problems
    assert report.archived == gone and report.records == report.leaves - gone
    assert any("archived" in note and "proven by the signed checkpoints" in note
               for note in report.notes)  # fmt: skip

    hashes = _level0_tile(log)
    altered = bytearray(hashes)
    altered[10 * 32] ^= 0x01  # an archived leaf's hash
    with log.engine.begin() as connection:
        connection.execute(
            text("UPDATE audit_tile SET hashes = :h WHERE level = 0 AND idx = 0"),
            {"h": bytes(altered)},
        )

    tampered = log.verify()

    assert tampered.first is not None and tampered.first.kind is Kind.TREE_ALTERED
    assert "archived leaf" in tampered.first.message and tampered.exit_code == 18


def test_an_archive_row_the_log_never_recorded_hides_no_deletion(log: Log) -> None:
    """Deleting records and adding an audit_archive row for them is still a deletion: only a
    range an `archive` record of the log names counts as archived."""
    seqs = [log.seq(leaf) for leaf in range(5)]
    with log.attacker() as connection:
        connection.execute(
            text(
                "INSERT INTO audit_archive (first_leaf, end_leaf, min_seq, max_seq, "
                "checkpoint_size, path, sha256, records, created_at) VALUES (0, 5, :low, :high, "
                ":size, 'audit-000000000000.zip', :sha, 5, CURRENT_TIMESTAMP)"
            ),
            {"low": min(seqs), "high": max(seqs), "size": log.checkpoint(), "sha": "0" * 64},
        )
        connection.execute(
            text("DELETE FROM exchange_record WHERE seq BETWEEN :low AND :high"),
            {"low": min(seqs), "high": max(seqs)},
        )

    report = log.verify()

    assert report.archived == 0
    assert report.first is not None and report.first.kind is Kind.DELETED
    assert report.first.leaf_index == 0 and report.exit_code == 11


def _level0_tile(log: Log) -> bytes:
    with log.engine.connect() as connection:
        return bytes(
            connection.execute(
                text("SELECT hashes FROM audit_tile WHERE level = 0 AND idx = 0")
            ).scalar_one()
        )
