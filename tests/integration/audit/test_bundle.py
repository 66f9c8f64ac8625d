"""Evidence bundles: exported from a real log (SQLite and PostgreSQL), checked offline.

An auditor takes the zip to another machine: `lgsp audit verify-bundle` must need no database
and no network, an independent RFC 9162 verifier (written here from the RFC's text) must agree,
and each kind of damage must come out under its own exit code.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import shutil
import subprocess
import sys
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from sqlalchemy import text

from audit.bundle import FORMAT, verify_bundle
from audit.notes import Signer
from gateway.cli import audit_verify as cli_audit_verify
from tests.conftest import BACKENDS, RunningHub
from tests.integration.audit.logs import (
    ORIGIN,
    SUBJECT_KEY,
    Log,
    new_log,
    populate,
    subject_hash,
)
from tests.integration.conftest import auditor_key, ok, random_agency
from tests.wait import wait_until

SUBJECT = "012090000003"  # the subject of records 3, 10, 17, ... (see logs.record)
REPO = Path(__file__).resolve().parents[3]


@pytest.fixture(scope="module", params=BACKENDS)
def log(request: pytest.FixtureRequest, database_urls: Callable[[str], str]) -> Iterator[Log]:
    made = populate(new_log(request.param, database_urls(request.param)))
    made.write(4)  # committed and in the tree, but after the latest checkpoint
    made.audit.integrate()
    yield made
    made.engine.dispose()


def export(log: Log, out: Path, *args: str, monkeypatch: pytest.MonkeyPatch) -> int:
    monkeypatch.setenv("LGSP_DATABASE_URL", log.url)
    monkeypatch.setenv("LGSP_AUDIT_ORIGIN", ORIGIN)
    monkeypatch.setenv("LGSP_SUBJECT_HMAC_KEY", SUBJECT_KEY)
    return cli_audit_verify.main(["export", "-o", str(out), "--quiet", *args])


@pytest.fixture(scope="module")
def bundle(log: Log, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A subject's records, with the checkpoint of size 43 included for consistency."""
    out = tmp_path_factory.mktemp("bundle") / "subject.zip"
    with pytest.MonkeyPatch.context() as monkeypatch:
        assert export(log, out, "--subject", SUBJECT, "--checkpoint", "43",
                      monkeypatch=monkeypatch) == 0  # fmt: skip
    return out


def in_database(log: Log) -> tuple[int, int]:
    """(records of the subject in the latest checkpoint, those after it)."""
    with log.engine.connect() as connection:
        size: int = connection.execute(text("SELECT max(size) FROM audit_checkpoint")).scalar_one()
        seqs: list[int] = list(
            connection.execute(
                text("SELECT seq FROM exchange_record WHERE subject_hash = :h"),
                {"h": subject_hash(SUBJECT)},
            ).scalars()
        )
    from audit.tree import TreeStore

    store = TreeStore(log.engine)
    leaves = [store.leaf_index(seq) for seq in seqs]
    covered = sum(1 for leaf in leaves if leaf is not None and leaf < size)
    return covered, len(seqs) - covered


def test_an_export_holds_the_subjects_checkpointed_records(log: Log, bundle: Path) -> None:
    covered, pending = in_database(log)
    assert covered > 50 and pending > 0

    with zipfile.ZipFile(bundle) as z:
        manifest = json.loads(z.read("manifest.json"))
        lines = z.read("records.ndjson").splitlines()
        names = set(z.namelist())

    assert manifest["format"] == FORMAT and manifest["origin"] == ORIGIN
    assert manifest["counts"] == {"records": covered, "proofs": covered, "checkpoints": 1,
                                  "keys": 1}  # fmt: skip
    assert manifest["pending"] == pending
    assert manifest["filter"] == {"subject_hash": subject_hash(SUBJECT)}
    assert SUBJECT not in bundle.read_bytes().decode("latin-1")  # only its keyed hash
    assert {json.loads(line)["subject_hash"] for line in lines} == {subject_hash(SUBJECT)}
    assert {"README.txt", "checkpoint.txt", "keys.txt", "checkpoints/43.txt",
            "checkpoints/consistency.ndjson"} <= names  # fmt: skip


def test_a_bundle_verifies_offline_on_another_machine(bundle: Path, tmp_path: Path) -> None:
    """A copy, a process with no LGSP_* settings and another working directory: no database."""
    elsewhere = tmp_path / "auditor"
    elsewhere.mkdir()
    copy = elsewhere / "evidence.zip"
    shutil.copy(bundle, copy)
    env = {k: v for k, v in os.environ.items() if not k.startswith("LGSP_")}
    env["PYTHONPATH"] = str(REPO)

    done = subprocess.run(
        [sys.executable, "-m", "gateway.cli", "audit", "verify-bundle", str(copy)],
        cwd=elsewhere, env=env, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip

    assert done.returncode == 0, done.stderr
    assert "valid:" in done.stdout and "records included in the checkpoint" in done.stdout
    assert sorted(p.name for p in elsewhere.iterdir()) == ["evidence.zip"]  # no database made


def test_a_bundle_verifies_with_the_pinned_key(log: Log, bundle: Path) -> None:
    result = verify_bundle(bundle, trusted_vkeys=[log.signer.vkey])

    assert result.ok, result.message
    assert result.key_ids == [log.signer.key_id]
    assert result.records == in_database(log)[0] and result.earlier == 1


def test_an_empty_export_is_a_valid_bundle(log: Log, tmp_path: Path, monkeypatch) -> None:
    out = tmp_path / "none.zip"
    assert export(log, out, "--consumer", "nobody", monkeypatch=monkeypatch) == 0

    result = verify_bundle(out)

    assert result.ok and result.records == 0


def test_an_export_of_everything_with_a_time_range(log: Log, tmp_path: Path, monkeypatch) -> None:
    out = tmp_path / "all.zip"
    assert export(log, out, "--since", "2000-01-01T00:00:00Z", "--kind", "exchange",
                  monkeypatch=monkeypatch) == 0  # fmt: skip

    result = verify_bundle(out)

    assert result.ok, result.message
    assert result.records == 370


# --------------------------------------------------------------------------- independent check


def _rfc9162_verify_inclusion(
    leaf: bytes, index: int, size: int, path: list[bytes], root: bytes
) -> bool:
    """RFC 9162 section 2.1.3.2, step by step as the RFC words it."""
    if index >= size:
        return False
    fn, sn, r = index, size - 1, leaf
    for p in path:
        if sn == 0:
            return False
        if fn % 2 == 1 or fn == sn:
            r = hashlib.sha256(b"\x01" + p + r).digest()
            if fn % 2 == 0:
                while fn % 2 == 0 and fn != 0:
                    fn >>= 1
                    sn >>= 1
        else:
            r = hashlib.sha256(b"\x01" + r + p).digest()
        fn >>= 1
        sn >>= 1
    return sn == 0 and r == root


def _rfc9162_verify_consistency(
    first: int, second: int, first_hash: bytes, second_hash: bytes, proof: list[bytes]
) -> bool:
    """RFC 9162 section 2.1.4.2."""
    if first == second:
        return first_hash == second_hash and not proof
    if first & (first - 1) == 0:  # an exact power of 2
        proof = [first_hash, *proof]
    fn, sn = first - 1, second - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = proof[0]
    for c in proof[1:]:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            fr = hashlib.sha256(b"\x01" + c + fr).digest()
            sr = hashlib.sha256(b"\x01" + c + sr).digest()
            if not fn & 1:
                while not fn & 1 and fn != 0:
                    fn >>= 1
                    sn >>= 1
        else:
            sr = hashlib.sha256(b"\x01" + sr + c).digest()
        fn >>= 1
        sn >>= 1
    return fr == first_hash and sr == second_hash and sn == 0


def _open_note_by_hand(note: str, vkey: str) -> list[str]:
    """The note's text lines, after checking its Ed25519 signature with cryptography only."""
    text_part, _, signatures = note.rpartition("\n\n")
    body = text_part + "\n"
    name, key_id, material = vkey.split("+", 2)
    public = base64.b64decode(material)
    assert public[0] == 0x01
    for line in signatures.splitlines():
        dash, signer_name, encoded = line.split(" ")
        raw = base64.b64decode(encoded)
        if dash == "\u2014" and signer_name == name and raw[:4].hex() == key_id:
            Ed25519PublicKey.from_public_bytes(public[1:]).verify(raw[4:], body.encode())
            return body.splitlines()
    raise AssertionError("no signature by the key")


def test_an_independent_rfc9162_implementation_agrees(bundle: Path) -> None:
    with zipfile.ZipFile(bundle) as z:
        [vkey] = z.read("keys.txt").decode().split()
        origin, size, root, *_ = _open_note_by_hand(z.read("checkpoint.txt").decode(), vkey)
        records = z.read("records.ndjson").split(b"\n")[:-1]
        proofs = [json.loads(line) for line in z.read("proofs.ndjson").splitlines()]
        [consistency] = [json.loads(z.read("checkpoints/consistency.ndjson"))]
        earlier = _open_note_by_hand(z.read("checkpoints/43.txt").decode(), vkey)

    assert origin == ORIGIN and len(records) == len(proofs) > 0
    for line, proof in zip(records, proofs, strict=True):
        leaf = hashlib.sha256(b"\x00" + line).digest()
        path = [base64.b64decode(h) for h in proof["proof"]]
        assert _rfc9162_verify_inclusion(
            leaf, proof["leaf_index"], int(size), path, base64.b64decode(root)
        ), proof["record_id"]
        assert json.loads(line)["id"] == proof["record_id"]
    # and the bundle's checkpoint extends the earlier one
    assert consistency["from"] == int(earlier[1]) == 43 and consistency["to"] == int(size)
    assert _rfc9162_verify_consistency(
        43,
        int(size),
        base64.b64decode(earlier[2]),
        base64.b64decode(root),
        [base64.b64decode(h) for h in consistency["proof"]],
    )
    # a wrong leaf does not verify with the same implementation (it can fail)
    wrong = hashlib.sha256(b"\x00" + records[0] + b" ").digest()
    first = proofs[0]
    assert not _rfc9162_verify_inclusion(
        wrong, first["leaf_index"], int(size), [base64.b64decode(h) for h in first["proof"]],
        base64.b64decode(root),
    )  # fmt: skip


# --------------------------------------------------------------------------- damage


def _rewrite(
    source: Path, target: Path, member: str, change: Callable[[bytes], bytes | None]
) -> Path:
    """A copy of the bundle with one member changed (None: left out)."""
    with zipfile.ZipFile(source) as old, zipfile.ZipFile(target, "w") as new:
        for info in old.infolist():
            data = old.read(info.filename)
            if info.filename == member:
                changed = change(data)
                if changed is None:
                    continue
                data = changed
            new.writestr(info.filename, data)
    return target


def _line(n: int, change: Callable[[bytes], bytes]) -> Callable[[bytes], bytes]:
    def apply(data: bytes) -> bytes:
        lines = data.split(b"\n")
        lines[n] = change(lines[n])
        return b"\n".join(lines)

    return apply


def _json_change(edit: Callable[[dict[str, Any]], None]) -> Callable[[bytes], bytes]:
    def apply(data: bytes) -> bytes:
        value = json.loads(data)
        edit(value)
        return json.dumps(value).encode()

    return apply


def _flip_signature(data: bytes) -> bytes:
    note = data.decode()
    head, _, encoded = note.rstrip("\n").rpartition(" ")
    raw = bytearray(base64.b64decode(encoded))
    raw[20] ^= 0x40
    return f"{head} {base64.b64encode(bytes(raw)).decode()}\n".encode()


def _swap_lines(data: bytes) -> bytes:
    lines = data.split(b"\n")
    lines[0], lines[1] = lines[1], lines[0]
    return b"\n".join(lines)


def _drop_last_line(data: bytes) -> bytes:
    return b"".join(data.splitlines(keepends=True)[:-1])


STRANGER = Signer.generate(ORIGIN)
ZERO = base64.b64encode(bytes(32)).decode().encode()

DAMAGE: list[tuple[str, str, Callable[[bytes], bytes | None], int, str]] = [
    # (what, member, change, exit code, in the message)
    ("a record byte", "records.ndjson",
     _line(1, lambda b: b.replace(b'"hub_status":200', b'"hub_status":201')), 4, "line 2"),
    ("a proof hash", "proofs.ndjson",
     _line(0, lambda b: b.replace(b'"proof":["', b'"proof":["' + ZERO + b'","', 1)), 4, "line 1"),
    ("two records swapped", "records.ndjson", _swap_lines, 4, "line 1"),
    ("the checkpoint signature", "checkpoint.txt", _flip_signature, 3, "invalid signature"),
    ("the checkpoint's size", "checkpoint.txt", lambda b: b.replace(b"\n373\n", b"\n374\n"),
     3, "invalid signature"),
    ("the key", "keys.txt", lambda b: STRANGER.vkey.encode() + b"\n", 3, "no signature"),
    ("a key's bytes", "keys.txt", lambda b: b.replace(b"+", b"+A", 2), 3, "key 1"),
    ("the manifest's count", "manifest.json",
     _json_change(lambda m: m["counts"].update(records=m["counts"]["records"] + 1)), 6, "counts"),
    ("the manifest's checkpoint", "manifest.json",
     _json_change(lambda m: m["checkpoint"].update(size=1)), 6, "manifest"),
    ("the manifest's format", "manifest.json",
     _json_change(lambda m: m.update(format="other/9")), 2, "format"),
    ("the manifest's JSON", "manifest.json", lambda b: b[:-5], 2, "not JSON"),
    ("a missing proofs file", "proofs.ndjson", lambda b: None, 2, "proofs.ndjson"),
    ("a record left out", "records.ndjson", _drop_last_line, 6, "more lines"),
    ("a proof naming another record", "proofs.ndjson",
     _line(0, lambda b: b.replace(b'"record_id":"', b'"record_id":"0', 1)), 6, "names record"),
    ("an inconsistent earlier checkpoint", "checkpoints/consistency.ndjson",
     lambda b: b.replace(b'"proof":["', b'"proof":["' + ZERO + b'","', 1), 5, "not consistent"),
    ("a proof that is not JSON", "proofs.ndjson", _line(2, lambda b: b[:-3]), 2, "line 3"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("member", "change", "code", "said"),
    [pytest.param(*d[1:], id=d[0]) for d in DAMAGE],
)
def test_each_kind_of_damage_has_its_exit_code(
    bundle: Path, tmp_path: Path, capsys, member: str, change, code: int, said: str
) -> None:
    damaged = _rewrite(bundle, tmp_path / "damaged.zip", member, change)
    assert damaged.read_bytes() != bundle.read_bytes()

    assert cli_audit_verify.main(["verify-bundle", str(damaged)]) == code
    assert said in capsys.readouterr().err


def test_a_record_that_fails_is_named_by_line_and_id(bundle: Path, tmp_path: Path) -> None:
    damaged = _rewrite(bundle, tmp_path / "d.zip", "records.ndjson", DAMAGE[0][2])
    with zipfile.ZipFile(bundle) as z:
        second = json.loads(z.read("proofs.ndjson").splitlines()[1])["record_id"]

    result = verify_bundle(damaged)

    assert result.exit_code == 4
    assert f"line 2 (record {second}" in result.message


def test_a_truncated_zip_is_unreadable(bundle: Path, tmp_path: Path) -> None:
    cut = tmp_path / "cut.zip"
    data = bundle.read_bytes()
    cut.write_bytes(data[: len(data) // 2])

    assert verify_bundle(cut).exit_code == 2
    assert verify_bundle(tmp_path / "absent.zip").exit_code == 2


def test_a_key_the_auditor_does_not_trust(bundle: Path, capsys) -> None:
    code = cli_audit_verify.main(["verify-bundle", str(bundle), "--key", STRANGER.vkey])

    assert code == 3
    assert "no signature by a trusted key" in capsys.readouterr().err


def test_an_export_against_an_older_checkpoint(log: Log, tmp_path: Path, monkeypatch) -> None:
    out = tmp_path / "old.zip"
    assert export(log, out, "--subject", SUBJECT, "--size", "73", monkeypatch=monkeypatch) == 0

    result = verify_bundle(out, trusted_vkeys=[log.signer.vkey])

    assert result.ok and result.checkpoint_size == 73
    assert 0 < result.records < in_database(log)[0]


def test_an_export_against_a_size_never_signed_fails_cleanly(
    log: Log, tmp_path: Path, monkeypatch, capsys
) -> None:
    assert export(log, tmp_path / "x.zip", "--size", "5", monkeypatch=monkeypatch) == 1
    assert "no checkpoint of size 5" in capsys.readouterr().err
    assert not (tmp_path / "x.zip").exists()


# --------------------------------------------------------------------------- a running hub


def test_evidence_from_a_running_hub(
    hub: RunningHub, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A change made through the admin API, proven once a checkpoint covers it, exported from
    the hub's database and checked against the keys the hub publishes; the live log verifies."""
    code = random_agency()
    with hub.admin() as admin:
        ok(admin.post("/admin/agencies", json={"code": code, "name": "Sở kiểm thử bằng chứng"}))
    with hub.client(auditor_key(hub)) as client:
        items = client.get(
            "/audit/exchanges", params={"kind": "registry_change", "limit": 100}
        ).json()["items"]
        [change] = [i for i in items if i["object_key"] == code]

        def proven() -> httpx.Response | None:
            """The inclusion proof's answer, once not 409 (no checkpoint covers the record yet)."""
            answer = client.get("/audit/proofs/inclusion", params={"record": change["id"]})
            return None if answer.status_code == 409 else answer

        answer = wait_until(
            proven, timeout=30, interval=0.3, what="a checkpoint covering the change (not 409)"
        )
        assert answer.status_code == 200, answer.text
        vkeys = [k["vkey"] for k in client.get("/audit/keys").json()["keys"]]
    monkeypatch.setenv("LGSP_DATABASE_URL", hub.settings.database_url)
    monkeypatch.setenv("LGSP_AUDIT_ORIGIN", hub.settings.audit_origin)
    monkeypatch.setenv("LGSP_AUDIT_KEY_FILE", str(hub.settings.audit_key_file))
    out = tmp_path / "hub.zip"
    since = change["time"][:19]

    assert cli_audit_verify.main(["export", "-o", str(out), "--kind", "registry_change",
                                  "--since", since, "--quiet"]) == 0  # fmt: skip
    result = verify_bundle(out, trusted_vkeys=vkeys)

    assert result.ok, result.message
    with zipfile.ZipFile(out) as z:
        ids = [json.loads(line)["id"] for line in z.read("records.ndjson").splitlines()]
    assert change["id"] in ids
    assert cli_audit_verify.main(["verify", "--quiet", *(f"--key={k}" for k in vkeys)]) == 0
