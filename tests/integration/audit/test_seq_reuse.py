"""A seq names one record for good (issue 11): after archiving every record the log goes on above
the archived seqs, and a record put at a seq the tree already gave out stops the integrator and
fails verification, rather than being proven as another record."""

from __future__ import annotations

import base64
import secrets
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text

from audit import merkle
from audit.canonical import leaf_hash
from audit.records import ExchangeRecord
from audit.retention import archive
from audit.tree import TreeStore
from audit.verify import EXIT_CODES, Kind
from gateway import cli
from tests.conftest import BACKENDS, RunningHub, start_hub
from tests.integration.audit.logs import Log, record
from tests.integration.conftest import auditor_key, random_agency
from tests.wait import wait_until

RECORDS = ExchangeRecord.__table__  # type: ignore[attr-defined]


@pytest.fixture(params=BACKENDS)
def own_hub(
    request: pytest.FixtureRequest, database_urls: Callable[[str], str]
) -> Iterator[RunningHub]:
    """A hub of its own: these tests archive its whole log."""
    yield from start_hub(database_urls(request.param), audit_checkpoint_seconds=0.5)


def count(hub: RunningHub) -> int:
    with hub.hub.runtime.engine.connect() as connection:
        return int(connection.execute(text("SELECT count(*) FROM exchange_record")).scalar_one())


def make_records(hub: RunningHub, n: int) -> list[str]:
    """`n` registry-change records (agencies created); their request ids."""
    requests = [secrets.token_hex(8) for _ in range(n)]
    with hub.admin() as admin:
        for request_id in requests:
            answer = admin.post(
                "/admin/agencies",
                json={"code": random_agency(), "name": "Sở thử"},
                headers={"X-Request-Id": request_id},
            )
            assert answer.status_code == 201, answer.text
    return requests


def readyz(hub: RunningHub) -> dict[str, Any]:
    with hub.client() as client:
        answer: dict[str, Any] = client.get("/readyz").json()
    return answer


def signed(hub: RunningHub, size: int) -> dict[str, Any] | None:
    """/readyz's audit part once the tree has `size` leaves and a checkpoint signs them all."""
    audit: dict[str, Any] = readyz(hub)["audit"]
    return audit if audit["tree_size"] == audit["checkpoint_size"] == size else None


def archive_everything(hub: RunningHub, directory: Path, monkeypatch: pytest.MonkeyPatch) -> int:
    """`lgsp audit archive --older-than 0` once every record is signed; how many it archived."""
    auditor_key(hub)  # made now, its record archived with the others
    total = count(hub)
    wait_until(lambda: signed(hub, total), what=f"a checkpoint of all {total} records")
    monkeypatch.setenv("LGSP_DATABASE_URL", hub.settings.database_url)
    assert cli.main(["audit", "archive", "--older-than", "0", "--dir", str(directory)]) == 0
    assert count(hub) == 1  # the `archive` record alone
    return total


def verify(hub: RunningHub, monkeypatch: pytest.MonkeyPatch, capsys: Any) -> tuple[int, str]:
    """`lgsp audit verify` against the hub's database and keys: (exit code, what it printed)."""
    with hub.client(auditor_key(hub)) as auditor:
        keys = [k["vkey"] for k in auditor.get("/audit/keys").json()["keys"]]
    monkeypatch.setenv("LGSP_DATABASE_URL", hub.settings.database_url)
    capsys.readouterr()
    code = cli.main(["audit", "verify", "--quiet", *(f"--key={k}" for k in keys)])
    return code, capsys.readouterr().out


def b64(value: str) -> bytes:
    return base64.b64decode(value)


def test_after_archiving_everything_new_records_are_integrated_proven_and_verified(
    own_hub: RunningHub, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: Any
) -> None:
    hub = own_hub
    make_records(hub, 5)
    archived = archive_everything(hub, tmp_path, monkeypatch)

    [request_id] = make_records(hub, 1)
    size = archived + 2  # the `archive` record and the new one
    wait_until(
        lambda: signed(hub, size), timeout=20, what=f"the new records in a checkpoint of {size}"
    )

    with hub.client(auditor_key(hub)) as auditor:
        [new] = auditor.get("/audit/exchanges", params={"request_id": request_id}).json()["items"]
        answer = auditor.get("/audit/proofs/inclusion", params={"record": new["id"]})
    assert answer.status_code == 200, answer.text
    proof = answer.json()
    assert proof["seq"] > archived and proof["leaf_index"] == archived + 1
    assert b64(proof["leaf_hash"]) == leaf_hash(new)
    assert merkle.verify_inclusion(
        leaf_hash(new),
        proof["leaf_index"],
        proof["tree_size"],
        [b64(p) for p in proof["proof"]],
        b64(proof["checkpoint"]["root"]),
    )
    exit_code, out = verify(hub, monkeypatch, capsys)
    assert exit_code == 0, out
    assert f"leaves checked: {size} (2 records hashed, {archived} archived)" in out


def test_a_record_forced_in_at_an_archived_seq_stops_the_hub_integrating(
    own_hub: RunningHub, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: Any
) -> None:
    """What SQLite did before AUTOINCREMENT, done by hand: /readyz says why the tree stopped,
    no proof names the archived record's leaf for it, `lgsp audit verify` exits 20."""
    hub = own_hub
    make_records(hub, 3)
    archived = archive_everything(hub, tmp_path, monkeypatch)
    wait_until(lambda: signed(hub, archived + 1), what="the `archive` record signed")
    seq = TreeStore(hub.hub.runtime.engine).seqs(0, 1)[0]  # leaf 0's, archived
    forced = record(1, seq=seq)
    with hub.hub.runtime.engine.begin() as connection:
        connection.execute(RECORDS.insert(), [forced])

    stopped = wait_until(
        lambda: readyz(hub)["audit"]["integration_stopped"],
        what="/readyz to say the integration stopped",
    )
    assert f"record seq {seq} (id {forced['id']}) has the seq of archived leaf 0" in stopped
    assert readyz(hub)["status"] == "degraded"
    with hub.client(auditor_key(hub)) as auditor:
        answer = auditor.get("/audit/proofs/inclusion", params={"record": forced["id"]})
    assert answer.status_code == 500 and answer.json()["type"].endswith("log-inconsistent")
    exit_code, out = verify(hub, monkeypatch, capsys)
    assert exit_code == EXIT_CODES[Kind.SEQ_REUSED] == 20
    assert f"[seq-reused] record seq {seq} (id {forced['id']})" in out


# --------------------------------------------------------------------------- a log, no hub


def test_verify_and_the_integrator_name_a_record_at_an_archived_seq(
    log: Log, tmp_path: Path
) -> None:
    leaves = log.checkpoint()
    results = archive(log.engine, older_than=timedelta(0), directory=tmp_path)
    assert sum(r.records for r in results) == leaves  # every leaf was archived
    size = log.checkpoint()  # and the `archive` record folded in after them
    assert size == leaves + 1 and log.verify().ok
    seq = log.seq(100)
    forced = record(1, seq=seq, consumer="ung-dung-gia")
    with log.attacker() as connection:
        connection.execute(RECORDS.insert(), [forced])

    report = log.verify()

    assert report.exit_code == 20 and report.first is not None
    assert report.first.kind is Kind.SEQ_REUSED
    assert (report.first.seq, report.first.leaf_index, report.first.record_id) == (
        seq,
        100,
        forced["id"],
    )
    log.write(3)  # new records, after the forced one: not folded in while it is there
    assert log.audit.integrate(force_checkpoint=True).leaves == 0
    assert log.audit.halted is not None and f"record seq {seq} " in log.audit.halted
    assert log.checkpoint() == size
    with log.attacker() as connection:
        connection.execute(text("DELETE FROM exchange_record WHERE id = :id"), forced)
    assert log.audit.integrate(force_checkpoint=True).leaves == 3
    assert log.audit.halted is None


def test_the_newest_record_at_a_seq_the_tree_gave_out_stops_the_integrator(log: Log) -> None:
    """SQLite without AUTOINCREMENT, once the newest records are gone, hands out the seq after
    the last one left: below the tree's last seq, the seq of another record's leaf."""
    size = log.checkpoint()
    seq = log.seq(size - 10)
    forced = record(1, consumer="ung-dung-gia", request_id=secrets.token_hex(4))
    with log.attacker() as connection:
        connection.execute(text("DELETE FROM exchange_record WHERE seq >= :seq"), {"seq": seq})
        connection.execute(RECORDS.insert(), [{**forced, "seq": seq}])

    assert log.audit.integrate(force_checkpoint=True).leaves == 0

    assert log.audit.halted is not None
    assert f"record seq {seq} (id {forced['id']}) is not the record the tree holds at leaf " in (
        log.audit.halted
    )
    assert not log.verify().ok
