"""Evidence bundles: a filter's records with their proofs, checkable offline by anyone.

A bundle is one zip file (format `lgsp-audit-bundle/1`, described in `README`, which every bundle
carries as README.txt). `export_bundle` writes it from the database as the records come, a page at
a time; `verify_bundle` checks it with nothing but this module, `audit.merkle`, `audit.notes` and
`cryptography`: no database, no network. Its result carries an exit code per failure class:

    0 valid
    2 malformed or unreadable bundle (not a zip, a member missing, bad JSON, wrong format)
    3 the checkpoint's signature is invalid, or by a key that is not trusted (or a bad key)
    4 a record is not in the checkpoint: its leaf hash does not verify with its inclusion proof
    5 an earlier checkpoint is not consistent with the bundle's checkpoint
    6 the parts disagree: counts, the manifest and the checkpoint, a proof and its record
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import dataclasses
import hashlib
import json
import os
import shutil
import tempfile
import zipfile
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import IntEnum
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, Protocol, cast

from audit import merkle
from audit.canonical import leaf_bytes
from audit.errors import ExportError, NoteError
from audit.notes import Checkpoint, Verifier, open_note

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine

    from audit.queries import ExchangeFilter

FORMAT = "lgsp-audit-bundle/1"
MEMBERS = ("manifest.json", "records.ndjson", "proofs.ndjson", "checkpoint.txt", "keys.txt")
PAGE = 500

Progress = Callable[[int, int], None]  # (records written, records matching)


class Outcome(IntEnum):
    VALID = 0
    MALFORMED = 2
    SIGNATURE = 3
    INCLUSION = 4
    CONSISTENCY = 5
    MISMATCH = 6


@dataclass(slots=True)
class ExportResult:
    path: Path
    records: int
    pending: int  # matching records no checkpoint covers yet (left out)
    mismatched: list[str]  # ids of records whose content is not their leaf (bundle won't verify)
    checkpoint_size: int


@dataclass(slots=True)
class BundleResult:
    outcome: Outcome
    message: str
    records: int = 0  # records whose inclusion was verified
    checkpoint_size: int | None = None
    origin: str | None = None
    key_ids: list[str] = field(default_factory=list)  # trusted keys that signed the checkpoint
    earlier: int = 0  # earlier checkpoints proven consistent

    @property
    def ok(self) -> bool:
        return self.outcome is Outcome.VALID

    @property
    def exit_code(self) -> int:
        return int(self.outcome)


# --------------------------------------------------------------------------- writing


class SignedCheckpoint(Protocol):
    """What a bundle needs of a stored checkpoint (audit.proofs.StoredCheckpoint and the like)."""

    @property
    def size(self) -> int: ...
    @property
    def root(self) -> bytes: ...
    @property
    def time(self) -> datetime: ...
    @property
    def key_id(self) -> str: ...
    @property
    def note(self) -> str: ...


@dataclass(frozen=True, slots=True)
class Earlier:
    """An earlier checkpoint (its signed note) and the proof that the bundle's extends it."""

    size: int
    note: str
    proof: Sequence[bytes]


class BundleWriter:
    """Writes one bundle (format `lgsp-audit-bundle/1`) to `path`, the one writer of the layout:

        with BundleWriter(path, checkpoint, vkeys, origin=origin) as writer:
            writer.add(row, line, leaf_index, leaf_hash, proof)  # per record, in order
            writer.finish(description=filter_for_the_manifest, pending=..., earlier=...)

    Records go straight into the zip, their proofs into a temporary file until `finish` copies
    them after the records (a zip member is written whole, one at a time), then the checkpoint,
    the keys, earlier checkpoints, the manifest and the README. Writing to a temporary name,
    syncing and renaming are the caller's (see `partial_path`).
    """

    def __init__(
        self, path: Path, checkpoint: SignedCheckpoint, vkeys: Sequence[str], *, origin: str
    ) -> None:
        self.path = path
        self.records = 0
        self._checkpoint = checkpoint
        self._vkeys = list(vkeys)
        self._origin = origin
        self._stack = contextlib.ExitStack()

    def __enter__(self) -> BundleWriter:
        with contextlib.ExitStack() as stack:
            self._zip = stack.enter_context(zipfile.ZipFile(self.path, "w", zipfile.ZIP_DEFLATED))
            self._proofs = stack.enter_context(tempfile.TemporaryFile())
            self._out = stack.enter_context(self._zip.open("records.ndjson", "w", force_zip64=True))
            self._stack = stack.pop_all()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stack.close()

    def add(
        self,
        row: Mapping[str, Any],
        line: bytes,
        leaf_index: int,
        leaf_hash: bytes,
        proof: Sequence[bytes],
    ) -> None:
        """The next record: its leaf bytes (`line`), leaf and inclusion proof."""
        self.records += 1
        self._out.write(line + b"\n")
        self._proofs.write(
            _json_line(
                {
                    "line": self.records,
                    "record_id": row["id"],
                    "seq": row["seq"],
                    "leaf_index": leaf_index,
                    "leaf_hash": _b64(leaf_hash),
                    "proof": [_b64(h) for h in proof],
                }
            )
        )

    def finish(
        self,
        *,
        description: dict[str, Any],
        pending: int = 0,
        earlier: Sequence[Earlier] = (),
    ) -> None:
        """Write the other members; `description` is the manifest's filter."""
        self._out.close()
        self._proofs.seek(0)
        with self._zip.open("proofs.ndjson", "w", force_zip64=True) as out:
            shutil.copyfileobj(self._proofs, out)
        checkpoint = self._checkpoint
        self._zip.writestr("checkpoint.txt", checkpoint.note)
        self._zip.writestr("keys.txt", "".join(k + "\n" for k in self._vkeys))
        for item in earlier:
            self._zip.writestr(f"checkpoints/{item.size}.txt", item.note)
        if earlier:
            self._zip.writestr(
                "checkpoints/consistency.ndjson",
                b"".join(
                    _json_line(
                        {"from": e.size, "to": checkpoint.size, "proof": [_b64(h) for h in e.proof]}
                    )
                    for e in earlier
                ),
            )
        manifest = {
            "format": FORMAT,
            "origin": self._origin,
            "created_at": _now(),
            "filter": description,
            "checkpoint": {
                "size": checkpoint.size,
                "root": _b64(checkpoint.root),
                "time": iso_utc(checkpoint.time),
                "key_id": checkpoint.key_id,
            },
            "counts": {
                "records": self.records,
                "proofs": self.records,
                "checkpoints": len(earlier),
                "keys": len(self._vkeys),
            },
            "pending": pending,
            "hashing": "RFC 9162: leaf = SHA-256(0x00 || line), node = "
            "SHA-256(0x01 || left || right)",
        }
        self._zip.writestr("manifest.json", json.dumps(manifest, indent=2) + "\n")
        self._zip.writestr("README.txt", README)


def partial_path(target: Path) -> Path:
    """Where a bundle is written before it is renamed to `target`."""
    return target.with_name(f".{target.name}.{os.getpid()}.partial")


# --------------------------------------------------------------------------- export


def export_bundle(
    engine: Engine,
    path: Path | str,
    *,
    where: ExchangeFilter,
    origin: str,
    size: int | None = None,
    earlier: Sequence[int] = (),
    description: dict[str, Any] | None = None,
    progress: Progress | None = None,
) -> ExportResult:
    """Write the records matching `where` that checkpoint `size` (default: the latest) covers,
    with their inclusion proofs, to the zip file `path` (written beside it, then renamed).

    `earlier`: sizes of earlier checkpoints to include with consistency proofs. `description`:
    the filter as the user gave it, for the manifest (a subject is there only as its hash).
    """
    from sqlalchemy import func, select, text

    from audit.proofs import checkpoint_of_size, inclusions, latest_checkpoint
    from audit.queries import narrow
    from audit.records import ExchangeRecord

    table = ExchangeRecord.__table__  # type: ignore[attr-defined]
    target = Path(path)
    with engine.connect() as connection:
        checkpoint = (
            latest_checkpoint(connection) if size is None else checkpoint_of_size(connection, size)
        )
        if checkpoint is None:
            raise ExportError(
                "the log has no signed checkpoint yet"
                if size is None
                else f"no checkpoint of size {size}"
            )
        vkeys = text("SELECT vkey FROM audit_key ORDER BY created_at, key_id")
        keys = [str(row[0]) for row in connection.execute(vkeys).all()]
        consistent = _earlier(connection, checkpoint.size, earlier)
        query = cast(Any, narrow(cast(Any, select(table)), where))
        total = int(
            connection.execute(
                cast(Any, narrow(cast(Any, select(func.count()).select_from(table)), where))
            ).scalar_one()
        )
        temporary = partial_path(target)
        pending = 0
        mismatched: list[str] = []
        try:
            with BundleWriter(temporary, checkpoint, keys, origin=origin) as writer:
                after = 0
                while True:
                    rows = [
                        dict(r)
                        for r in connection.execute(
                            query.where(table.c.seq > after).order_by(table.c.seq).limit(PAGE)
                        ).mappings()
                    ]
                    if not rows:
                        break
                    after = int(rows[-1]["seq"])
                    found = inclusions(connection, [int(r["seq"]) for r in rows], checkpoint)
                    for row, included in zip(rows, found, strict=True):
                        if included is None:
                            pending += 1
                            continue
                        index, leaf, proof = included
                        line = leaf_bytes(row)
                        if merkle.hash_leaf(line) != leaf:
                            mismatched.append(str(row["id"]))
                        writer.add(row, line, index, leaf, proof)
                    if progress is not None:
                        progress(writer.records + pending, total)
                writer.finish(
                    description=description if description is not None else _describe(where),
                    pending=pending,
                    earlier=consistent,
                )
            os.replace(temporary, target)
        finally:
            temporary.unlink(missing_ok=True)
    return ExportResult(target, writer.records, pending, mismatched, checkpoint.size)


def _earlier(connection: Any, size: int, sizes: Sequence[int]) -> list[Earlier]:
    """The earlier checkpoints of `sizes` (below `size`), each with its consistency proof."""
    from audit.proofs import checkpoint_of_size
    from audit.tree import read_tile

    nodes = merkle.tile_nodes(lambda level, idx: read_tile(connection, level, idx))
    found = []
    for m in sorted({s for s in sizes if 0 < s < size}):
        earlier = checkpoint_of_size(connection, m)
        if earlier is None:
            raise ExportError(f"no checkpoint of size {m}")
        found.append(Earlier(m, earlier.note, merkle.consistency_proof(m, size, nodes)))
    return found


def _describe(where: ExchangeFilter) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for item in dataclasses.fields(where):
        value = getattr(where, item.name)
        if value is not None:
            out[item.name] = iso_utc(value) if isinstance(value, datetime) else str(value)
    return out


# --------------------------------------------------------------------------- verification


class _Failed(Exception):
    def __init__(self, outcome: Outcome, message: str) -> None:
        super().__init__(message)
        self.outcome = outcome


def verify_bundle(path: Path | str, trusted_vkeys: Sequence[str] | None = None) -> BundleResult:
    """Check a bundle offline. `trusted_vkeys`: the keys to trust (e.g. pinned from the hub's
    /audit/keys); without them, the bundle's own keys.txt is trusted, and the result names the
    key ids that signed so the auditor can compare them with the hub's published ones."""
    result = BundleResult(Outcome.VALID, "")
    try:
        with zipfile.ZipFile(path) as bundle:
            _verify(bundle, trusted_vkeys, result)
    except _Failed as failure:
        result.outcome = failure.outcome
        result.message = str(failure)
        return result
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, EOFError) as exc:
        result.outcome = Outcome.MALFORMED
        result.message = f"unreadable bundle: {exc}"
        return result
    result.message = (
        f"valid: {result.records} records included in the checkpoint of size "
        f"{result.checkpoint_size} of {result.origin}, signed by {', '.join(result.key_ids)}"
        + (f"; {result.earlier} earlier checkpoints consistent with it" if result.earlier else "")
    )
    return result


def _verify(bundle: zipfile.ZipFile, trusted: Sequence[str] | None, result: BundleResult) -> None:
    names = set(bundle.namelist())
    missing = [m for m in MEMBERS if m not in names]
    if missing:
        raise _Failed(Outcome.MALFORMED, f"not a bundle: {', '.join(missing)} missing")
    manifest = _manifest(bundle)
    verifiers = _verifiers(bundle, trusted)
    checkpoint, key_ids = _open_checkpoint(_text(bundle, "checkpoint.txt"), verifiers, "checkpoint")
    result.checkpoint_size, result.origin, result.key_ids = (
        checkpoint.size,
        checkpoint.origin,
        key_ids,
    )
    expected = manifest["checkpoint"]
    if (
        expected.get("size") != checkpoint.size
        or expected.get("root") != _b64(checkpoint.root)
        or manifest.get("origin") != checkpoint.origin
    ):
        raise _Failed(
            Outcome.MISMATCH,
            f"the manifest's checkpoint (size {expected.get('size')}, origin "
            f"{manifest.get('origin')!r}) is not checkpoint.txt's (size {checkpoint.size}, "
            f"origin {checkpoint.origin!r})",
        )
    result.records = _verify_records(bundle, checkpoint, manifest)
    result.earlier = _verify_earlier(bundle, checkpoint, verifiers, manifest)


def _manifest(bundle: zipfile.ZipFile) -> dict[str, Any]:
    try:
        manifest = json.loads(bundle.read("manifest.json"))
    except ValueError as exc:
        raise _Failed(Outcome.MALFORMED, f"manifest.json is not JSON: {exc}") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        found = manifest.get("format") if isinstance(manifest, dict) else None
        raise _Failed(Outcome.MALFORMED, f"manifest.json: format {found!r}, expected {FORMAT!r}")
    if not isinstance(manifest.get("checkpoint"), dict) or not isinstance(
        manifest.get("counts"), dict
    ):
        raise _Failed(Outcome.MALFORMED, "manifest.json lacks its checkpoint or counts")
    return manifest


def _verifiers(bundle: zipfile.ZipFile, trusted: Sequence[str] | None) -> list[Verifier]:
    source = "the trusted keys given"
    if trusted is None:
        trusted = [line.strip() for line in _text(bundle, "keys.txt").splitlines() if line.strip()]
        source = "keys.txt"
    verifiers = []
    for number, vkey in enumerate(trusted, 1):
        try:
            verifiers.append(Verifier.from_vkey(vkey))
        except ValueError as exc:
            raise _Failed(
                Outcome.SIGNATURE, f"{source}, key {number}: not a valid verifier key ({exc})"
            ) from None
    if not verifiers:
        raise _Failed(Outcome.SIGNATURE, f"{source}: no key to check the checkpoint with")
    return verifiers


def _open_checkpoint(
    note: str, verifiers: list[Verifier], what: str
) -> tuple[Checkpoint, list[str]]:
    split = note.rfind("\n\n")
    try:
        checkpoint = Checkpoint.parse(note[: split + 1] if split >= 0 else note)
    except ValueError as exc:
        raise _Failed(Outcome.MALFORMED, f"{what} is not a checkpoint: {exc}") from None
    try:
        _, key_ids = open_note(note, verifiers)
    except NoteError as exc:
        raise _Failed(Outcome.SIGNATURE, f"{what}: {exc}") from None
    return checkpoint, key_ids


def _verify_records(
    bundle: zipfile.ZipFile, checkpoint: Checkpoint, manifest: dict[str, Any]
) -> int:
    count = 0
    with bundle.open("records.ndjson") as records, bundle.open("proofs.ndjson") as proofs:
        record_lines, proof_lines = _lines(records), _lines(proofs)
        while True:
            line = next(record_lines, None)
            proof_line = next(proof_lines, None)
            if line is None or proof_line is None:
                if line is not None or proof_line is not None:
                    more = "records.ndjson" if line is not None else "proofs.ndjson"
                    raise _Failed(
                        Outcome.MISMATCH,
                        f"{more} has more lines than the other ({count} matched)",
                    )
                break
            count += 1
            proof = _proof(proof_line, count)
            record_id = proof["record_id"]
            leaf = merkle.hash_leaf(line)
            if not merkle.verify_inclusion(
                leaf, proof["leaf_index"], checkpoint.size, proof["hashes"], checkpoint.root
            ):
                raise _Failed(
                    Outcome.INCLUSION,
                    f"records.ndjson line {count} (record {record_id}, leaf "
                    f"{proof['leaf_index']}): its leaf hash does not verify with its inclusion "
                    f"proof against the checkpoint of size {checkpoint.size}",
                )
            try:
                found = json.loads(line).get("id")
            except (ValueError, AttributeError):
                found = None
            if found != record_id:
                raise _Failed(
                    Outcome.MISMATCH,
                    f"proofs.ndjson line {count} names record {record_id}, but records.ndjson "
                    f"line {count} is record {found}",
                )
    counts = manifest["counts"]
    if counts.get("records") != count or counts.get("proofs") != count:
        raise _Failed(
            Outcome.MISMATCH,
            f"the manifest counts {counts.get('records')} records and {counts.get('proofs')} "
            f"proofs; the bundle holds {count} of each",
        )
    return count


def _proof(raw: bytes, number: int) -> dict[str, Any]:
    try:
        data = json.loads(raw)
        index = data["leaf_index"]
        record_id = data["record_id"]
        hashes = [base64.b64decode(h, validate=True) for h in data["proof"]]
        if not isinstance(index, int) or isinstance(index, bool) or not isinstance(record_id, str):
            raise TypeError("leaf_index is an integer, record_id a string")
    except (ValueError, KeyError, TypeError, binascii.Error) as exc:
        raise _Failed(
            Outcome.MALFORMED, f"proofs.ndjson line {number} is not a proof: {exc}"
        ) from None
    return {"leaf_index": index, "record_id": record_id, "hashes": hashes}


def _verify_earlier(
    bundle: zipfile.ZipFile,
    checkpoint: Checkpoint,
    verifiers: list[Verifier],
    manifest: dict[str, Any],
) -> int:
    count = 0
    if "checkpoints/consistency.ndjson" in bundle.namelist():
        with bundle.open("checkpoints/consistency.ndjson") as lines:
            for raw in _lines(lines):
                count += 1
                try:
                    data = json.loads(raw)
                    m, n = int(data["from"]), int(data["to"])
                    proof = [base64.b64decode(h, validate=True) for h in data["proof"]]
                    note = _text(bundle, f"checkpoints/{m}.txt")
                except (ValueError, KeyError, TypeError, binascii.Error) as exc:
                    raise _Failed(
                        Outcome.MALFORMED, f"checkpoints/consistency.ndjson line {count}: {exc}"
                    ) from None
                earlier, _ = _open_checkpoint(note, verifiers, f"checkpoints/{m}.txt")
                if earlier.size != m or n != checkpoint.size or earlier.origin != checkpoint.origin:
                    raise _Failed(
                        Outcome.MISMATCH,
                        f"checkpoints/consistency.ndjson line {count}: from {m} to {n}, but the "
                        f"checkpoints are of sizes {earlier.size} and {checkpoint.size}",
                    )
                if not merkle.verify_consistency(m, n, earlier.root, checkpoint.root, proof):
                    raise _Failed(
                        Outcome.CONSISTENCY,
                        f"the checkpoint of size {m} is not consistent with the bundle's "
                        f"checkpoint of size {n}: the log was not only appended to in between",
                    )
    if manifest["counts"].get("checkpoints", 0) != count:
        raise _Failed(
            Outcome.MISMATCH,
            f"the manifest counts {manifest['counts'].get('checkpoints')} earlier checkpoints; "
            f"the bundle holds {count}",
        )
    return count


def _lines(stream: IO[bytes]) -> Iterator[bytes]:
    """Lines without their newline; a last line must end with one too (else: truncated)."""
    for raw in stream:
        if not raw.endswith(b"\n"):
            raise _Failed(Outcome.MALFORMED, "a line does not end with a newline (truncated?)")
        yield raw[:-1]


def _text(bundle: zipfile.ZipFile, name: str) -> str:
    try:
        return bundle.read(name).decode("utf-8")
    except KeyError:
        raise _Failed(Outcome.MALFORMED, f"{name} is missing") from None
    except UnicodeDecodeError:
        raise _Failed(Outcome.MALFORMED, f"{name} is not UTF-8") from None


def _json_line(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode() + b"\n"


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def iso_utc(moment: datetime | str | None) -> str | None:
    """`moment` (naive: UTC; a string: ISO 8601) as bundles write times: 2026-11-24T03:00:00Z."""
    if moment is None:
        return None
    if isinstance(moment, str):
        moment = datetime.fromisoformat(moment)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def sha256_file(path: Path | str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as data:
        for block in iter(lambda: data.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


README = """\
LGSP audit evidence bundle (format lgsp-audit-bundle/1)
=======================================================

This zip file holds audit records of an LGSP hub and the proofs that each of them is in the
hub's append-only audit log, as of a checkpoint the hub signed. It can be checked offline:

    lgsp audit verify-bundle THIS.zip [--key VKEY]

exit codes: 0 valid; 2 malformed bundle; 3 checkpoint signature invalid or by an untrusted key;
4 a record is not included (its line and id are named); 5 an earlier checkpoint is inconsistent;
6 counts or manifest disagree. Or by hand, with any RFC 9162 implementation:

Files
-----
manifest.json    format, origin (the log's name), created_at, filter (a data subject appears only
                 as its keyed hash), checkpoint {size, root, time, key_id}, counts {records,
                 proofs, checkpoints, keys}, pending (matching records not yet in a checkpoint).
records.ndjson   one record per line. Each line is exactly the bytes the log hashed (canonical
                 JSON: sorted keys, no spaces, UTF-8, no floats, "v": 1), followed by "\\n".
proofs.ndjson    line N is the proof for line N of records.ndjson: {"line", "record_id", "seq",
                 "leaf_index", "leaf_hash", "proof": [base64 hashes, leaf to root]}.
checkpoint.txt   the signed checkpoint (C2SP signed note + tlog-checkpoint): the lines
                 <origin>, <tree size>, <base64 root>, "time <RFC 3339>Z", a blank line, then
                 signature lines "\u2014 <key name> <base64(4-byte key id || Ed25519 signature)>";
                 the signature is over the text before the blank line, newline included.
keys.txt         the hub's public keys, one per line: <name>+<key id hex>+<base64(0x01 || key)>.
                 Compare them with the keys the hub publishes at /audit/keys (or pin them).
checkpoints/     optional: earlier checkpoints <size>.txt and consistency.ndjson lines
                 {"from": m, "to": n, "proof": [...]} proving the bundle's checkpoint (size n)
                 extends each of them (RFC 9162 section 2.1.4).
README.txt       this text.

Checking by hand
----------------
1. Signature: take checkpoint.txt's text up to and including the line before the blank line.
   For a signature line by key K (keys.txt), base64-decode it: the first 4 bytes must equal K's
   key id, the other 64 bytes are an Ed25519 signature of that text by K's 32-byte public key
   (keys.txt: base64 after the second '+', minus its first byte 0x01).
2. The checkpoint's second line is the tree size n, its third the root hash r (base64).
3. For each line L of records.ndjson (without its newline): leaf = SHA-256(0x00 || L). With the
   same line of proofs.ndjson, verify the inclusion of leaf at leaf_index in the tree of size n
   with root r and the proof's hashes (RFC 9162 section 2.1.3.2; node = SHA-256(0x01 || left ||
   right)). For example with Python's pymerkle, Google's trillian / transparency-dev merkle
   packages (proof.VerifyInclusion), or the 20-line algorithm in the RFC.
4. The record's "seq", "id", "time", "subject_hash" (HMAC-SHA256 of the subject's identifier
   under the hub's subject key) and the other fields are then proven to be as the hub logged them.
"""
