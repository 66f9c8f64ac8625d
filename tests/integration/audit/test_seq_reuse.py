"""A seq names one record for good (issue 11): after archiving every record the log goes on above
the archived seqs."""

from __future__ import annotations

import base64
import secrets
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text

from audit import merkle
from audit.canonical import leaf_hash
from gateway import cli
from tests.conftest import BACKENDS, RunningHub, start_hub
from tests.integration.conftest import auditor_key, random_agency
from tests.wait import wait_until


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
