"""`verify_log`: check the live database against the signed checkpoints; name what was altered.

Nothing stored beside the records is trusted until a signed root vouches for it. One pass walks the
leaves in order (the order the level-0 tiles give, a tile at a time: no table is loaded whole) and
folds two frontiers: one of the leaf hashes recomputed from the records (`audit.canonical`), one
of the leaf hashes the tiles hold. At each checkpoint (taken in size order) both roots meet the
signed one:

- records' root right: every record below that size is as signed; a tile that disagrees is
  **tree storage altered**;
- tiles' root right, records' wrong: the tiles are proven (collision resistance), so the first
  leaf whose record does not hash to its tile entry is the first bad record, and the proven tiles
  tell what happened to it: **modified** (same seq, other content), **deleted** (its seq is gone),
  **truncated** (no record from there on), **reordered** (it holds another leaf's content, or its
  content moved to another seq), **inserted** (a record not in the tree, or one put in before it
  with the later ones renumbered);
- both wrong: records and tiles were rewritten alike (or the checkpoint is of another tree); the
  bad leaf lies between the last checkpoint that held and this one.

Checkpoints are checked on their own too: the signature (keys pinned by the caller, plus keys the
log introduced in a `key-added` record covered by a checkpoint an already trusted key signed),
the origin, and their order: in id order, size and time never go back (a **replayed** checkpoint
does). A state file remembers the last verified checkpoint, so that a later run sees a rollback of
the whole checkpoint table (a smaller latest size, or another root at the remembered size).

Archived leaves (retention) have no record in the table: their hashes are the tiles', proven like
any other tile by the checkpoints after them, and the report says which ranges those are. A record
found at an archived leaf's seq is a **reused seq**: the database handed out a seq the log had
already used (SQLite before AUTOINCREMENT, once archiving emptied the table; a sequence set back),
so the seq names two records and the tree can prove only the archived one. Tiles
above level 0 (what inclusion proofs are computed from) are recomputed from the proven level-0
entries as they fill up.

What no verification of the database alone can see: a record added with a seq above the tree's
last one is, to the integrator, a new record (it is integrated and signed like any other); a
rollback of records, tiles and checkpoints together to an earlier state is seen only against a
checkpoint kept from before (the state file, or one an auditor or witness holds).

Memory: a page of checkpoints, a chunk of tiles and their records at a time, the two frontiers,
and a bitmap of the tree's seqs (one bit a seq: 1.25 MB for 10 million records).
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import os
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from pathlib import Path
from typing import Any

from sqlalchemy import select, text
from sqlalchemy.engine import Connection, Engine

from audit import merkle
from audit.canonical import leaf_hash
from audit.errors import BadSignature, MalformedNote, UnknownKey, VerifyError
from audit.notes import Checkpoint, Verifier, note_body, open_note
from audit.records import ExchangeRecord, RecordKind
from audit.tree import TreeStore, leaf_entries, level0_tiles, read_state, read_tile, unpack_seqs

RECORDS = ExchangeRecord.__table__  # type: ignore[attr-defined]
CHUNK_TILES = 16  # level-0 tiles read at once: 4096 leaves
PAGE = 500  # checkpoints or record seqs read at once
KEEP_DIFFS = 256  # leaves that disagree, kept for the diagnosis
MAX_PROBLEMS = 20

# Stand-ins that hash like nothing real: a leaf whose record or tile entry is missing.
_NO_RECORD = hashlib.sha256(b"lgsp audit verify: no record").digest()
_NO_TILE = hashlib.sha256(b"lgsp audit verify: no tile entry").digest()

Progress = Callable[[int, int], None]


class Kind(StrEnum):
    """What was found; each has its own exit code (`EXIT_CODES`)."""

    MODIFIED = "modified"
    DELETED = "deleted"
    INSERTED = "inserted"
    REORDERED = "reordered"
    TRUNCATED = "truncated"
    REPLAYED = "replayed-checkpoint"
    UNKNOWN_KEY = "unknown-key"
    BAD_SIGNATURE = "bad-signature"
    TREE_ALTERED = "tree-storage-altered"
    UNCHECKED = "no-checkpoint"
    SEQ_REUSED = "seq-reused"


EXIT_CODES: dict[Kind, int] = {
    Kind.MODIFIED: 10,
    Kind.DELETED: 11,
    Kind.INSERTED: 12,
    Kind.REORDERED: 13,
    Kind.TRUNCATED: 14,
    Kind.REPLAYED: 15,
    Kind.UNKNOWN_KEY: 16,
    Kind.BAD_SIGNATURE: 17,
    Kind.TREE_ALTERED: 18,
    Kind.UNCHECKED: 19,
    Kind.SEQ_REUSED: 20,
}

# Which problem decides the exit code: a bad signature undermines everything after it.
_RANK = {
    Kind.BAD_SIGNATURE: 0,
    Kind.UNKNOWN_KEY: 1,
    Kind.REPLAYED: 2,
    Kind.UNCHECKED: 4,
    Kind.TREE_ALTERED: 5,
}


@dataclass(frozen=True, slots=True)
class Problem:
    kind: Kind
    message: str
    leaf_index: int | None = None
    seq: int | None = None
    record_id: str | None = None
    checkpoint_id: int | None = None
    checkpoint_size: int | None = None

    def as_dict(self) -> dict[str, Any]:
        return {k: v for k, v in _fields(self).items() if v is not None}


def _fields(problem: Problem) -> dict[str, Any]:
    return {
        "kind": problem.kind.value,
        "message": problem.message,
        "leaf_index": problem.leaf_index,
        "seq": problem.seq,
        "record_id": problem.record_id,
        "checkpoint_id": problem.checkpoint_id,
        "checkpoint_size": problem.checkpoint_size,
    }


@dataclass(slots=True)
class Report:
    problems: list[Problem] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # what was relied on, said plainly
    checkpoints: int = 0  # checkpoints whose signature held and whose root the records give
    checkpoint_rows: int = 0
    leaves: int = 0  # leaves checked against the checkpoints
    records: int = 0  # records hashed
    archived: int = 0  # leaves whose hash came from proven tiles (archived records)
    tree_size: int = 0
    latest: Checkpoint | None = None  # the largest checkpoint that held
    trusted_keys: list[str] = field(default_factory=list)  # key ids, learned ones included

    @property
    def ok(self) -> bool:
        return not self.problems

    @property
    def exit_code(self) -> int:
        return EXIT_CODES[self.problems[0].kind] if self.problems else 0

    @property
    def first(self) -> Problem | None:
        return self.problems[0] if self.problems else None

    def as_dict(self) -> dict[str, Any]:
        latest = self.latest
        return {
            "ok": self.ok,
            "exit_code": self.exit_code,
            "problems": [p.as_dict() for p in self.problems],
            "notes": self.notes,
            "checkpoints": self.checkpoints,
            "checkpoint_rows": self.checkpoint_rows,
            "leaves": self.leaves,
            "records": self.records,
            "archived": self.archived,
            "tree_size": self.tree_size,
            "latest": None
            if latest is None
            else {
                "size": latest.size,
                "root": base64.b64encode(latest.root).decode(),
                "time": _iso(latest.time),
            },
            "trusted_keys": self.trusted_keys,
        }


def verify_log(
    engine: Engine,
    trusted: list[Verifier],
    *,
    state_file: Path | str | None = None,
    origin: str | None = None,
    progress: Progress | None = None,
) -> Report:
    """Check every record, tile and checkpoint in the database; see the module docstring.

    `trusted`: the pinned verifier keys. `origin`: the log's name, when checkpoints must carry it.
    `state_file`: where the last verified checkpoint is remembered between runs (JSON); it is
    written only when the run found nothing wrong.
    """
    remembered = _read_state(Path(state_file)) if state_file is not None else None
    run = _Run(engine, trusted, origin=origin, progress=progress, remembered=remembered)
    report = run.verify()
    if state_file is not None and report.ok and report.latest is not None:
        _write_state(Path(state_file), report.latest)
    return report


# --------------------------------------------------------------------------- the pass


@dataclass(slots=True)
class _Diff:
    """A leaf whose record does not hash to its tile entry."""

    index: int
    seq: int | None  # what the tile says (or the seq guessed when the tile is missing)
    tile_hash: bytes | None
    record: dict[str, Any] | None
    record_hash: bytes | None
    prev_seq: int | None
    next_seq: int | None = None


@dataclass(slots=True)
class _Archive:
    first_leaf: int
    end_leaf: int
    path: str
    checkpoint_size: int


@dataclass(slots=True)
class _Remembered:
    size: int
    root: bytes
    origin: str | None


class _SeqSet:
    """The tree's record seqs as a sparse bitmap (one bit a seq, 8 KiB blocks)."""

    BLOCK = 1 << 16

    def __init__(self) -> None:
        self.blocks: dict[int, bytearray] = {}
        self.highest = -1  # no seq yet

    def add(self, seq: int) -> None:
        block, bit = divmod(seq, self.BLOCK)
        data = self.blocks.get(block)
        if data is None:
            data = self.blocks[block] = bytearray(self.BLOCK // 8)
        data[bit >> 3] |= 1 << (bit & 7)
        self.highest = max(self.highest, seq)

    def __contains__(self, seq: object) -> bool:
        if not isinstance(seq, int):
            return False
        block, bit = divmod(seq, self.BLOCK)
        data = self.blocks.get(block)
        return data is not None and bool(data[bit >> 3] & (1 << (bit & 7)))

    def next_above(self, seq: int) -> int | None:
        """The smallest seq in the set above `seq` (a scan: only for the few records reported)."""
        start = seq + 1
        for block in sorted(b for b in self.blocks if b >= start // self.BLOCK):
            data = self.blocks[block]
            for bit in range(max(start - block * self.BLOCK, 0), self.BLOCK):
                if data[bit >> 3] & (1 << (bit & 7)):
                    return block * self.BLOCK + bit
        return None


class _Run:
    def __init__(
        self,
        engine: Engine,
        trusted: list[Verifier],
        *,
        origin: str | None,
        progress: Progress | None,
        remembered: _Remembered | None,
    ) -> None:
        self.engine = engine
        self.store = TreeStore(engine)
        self.verifiers: list[Verifier] = list(trusted)
        self.origin = origin
        self.progress = progress
        self.remembered = remembered
        self.report = Report(trusted_keys=[v.key_id for v in trusted])
        # the leaf stream
        self.position = 0
        self.by_records = merkle.Frontier()
        self.by_tiles = merkle.Frontier()
        self.diffs: list[_Diff] = []
        self.diff_count = 0
        self.last_present = -1  # the last leaf whose record was found
        self.last_seq: int | None = None  # the seq of the previous leaf
        self.tree_seqs = _SeqSet()
        self.archives: list[_Archive] = []
        # (leaf, key id, verifier, whether the record hashes to its tile entry)
        self.pending_keys: list[tuple[int, str, Verifier, bool]] = []
        # what the checkpoints proved
        self.records_proven = 0  # every record below this size is as signed
        self.tiles_proven = 0  # every tile entry below this size is as signed
        self.covered = 0  # the largest size a valid checkpoint signed
        self.bad_checkpoints: set[int] = set()
        self.forks: list[tuple[int, int]] = []  # (checkpoint id, size): valid, but no root matched
        self.first_failed: tuple[int, int] | None = None  # (size, last good size before it)
        self.total = 0  # the largest checkpoint size (for progress)
        # tiles above level 0: recomputed from the level-0 entries and compared as they fill
        self.level0: list[bytes] = []
        self.upper: dict[int, list[bytes]] = {}
        self.upper_tiles: dict[int, tuple[int, bytes]] = {}  # level -> (tile index, contents)
        self.upper_diffs: list[tuple[int, int]] = []  # (level, entry index)

    # ------------------------------------------------------------------ driver

    def verify(self) -> Report:
        report = self.report
        with self.engine.connect() as connection:
            # One snapshot throughout, while the hub goes on writing (SQLite's read transaction
            # keeps one; PostgreSQL's default would see each statement's own).
            if self.engine.dialect.name == "postgresql":
                connection = connection.execution_options(isolation_level="REPEATABLE READ")
            try:
                state = read_state(connection)
                gaps = _gaps(connection)
            except Exception as exc:  # no audit tables: not a database of this hub version
                raise VerifyError(f"cannot read the audit tree: {exc}") from None
            report.tree_size = state.size
            self.total = int(
                connection.execute(text("SELECT max(size) FROM audit_checkpoint")).scalar() or 0
            )
            self.archives = _archives(connection)
            self._checkpoints_by_size(connection)
            self._checkpoint_order(connection)
            if self.covered < state.size:
                self._tile_seqs_only(connection, state.size)
            inserted = self._inserted(connection, state.last_seq, gaps)
            self._diagnose(connection, inserted)
        if report.latest is None and report.checkpoint_rows and not report.problems:
            self._problem(Kind.UNCHECKED, "no checkpoint could be verified")
        if report.checkpoint_rows == 0 and _has_records(self.engine):
            self._problem(
                Kind.UNCHECKED,
                "the database holds records but no checkpoint: nothing vouches for them",
            )
        report.leaves = self.covered
        for archive in self.archives:
            if archive.first_leaf < self.covered:
                report.notes.append(
                    f"leaves {archive.first_leaf}-{archive.end_leaf - 1} are archived "
                    f"({archive.path}): their hashes come from the stored tiles, proven by the "
                    f"signed checkpoints of size ≥ {archive.end_leaf}, not from records"
                )
        if state.size > self.covered:
            report.notes.append(
                f"{state.size - self.covered} leaves after the latest checkpoint are not signed "
                "yet; the next checkpoint will cover them"
            )
        report.problems.sort(key=_order)
        del report.problems[MAX_PROBLEMS:]
        return report

    def _problem(self, kind: Kind, message: str, **where: Any) -> None:
        self.report.problems.append(Problem(kind, message, **where))

    # ------------------------------------------------------------------ checkpoints by size

    def _checkpoints_by_size(self, connection: Connection) -> None:
        """Each checkpoint, smallest first, against the roots of the leaves folded so far."""
        for row in _pages(
            connection,
            "SELECT id, size, root, note FROM audit_checkpoint "
            "WHERE size > :size OR (size = :size AND id > :id) ORDER BY size, id",
            ("size", "id"),
            start={"size": -1, "id": -1},
        ):
            self.report.checkpoint_rows += 1
            checkpoint = self._open(row)
            if checkpoint is None:
                continue
            self._remembered_at(connection, checkpoint.size)
            self._advance(connection, checkpoint.size)
            self._check_roots(int(row.id), checkpoint)
        self._remembered_at(connection, None)

    def _open(self, row: Any) -> Checkpoint | None:
        """The checkpoint of a row whose note is well signed, or None (a problem recorded)."""
        checkpoint_id, size = int(row.id), int(row.size)
        where = {"checkpoint_id": checkpoint_id, "checkpoint_size": size}
        try:
            body, _ = open_note(str(row.note), self.verifiers)
            checkpoint = Checkpoint.parse(body)
        except UnknownKey as exc:
            self.bad_checkpoints.add(checkpoint_id)
            self._problem(
                Kind.UNKNOWN_KEY,
                f"checkpoint {checkpoint_id} (size {size}) is not signed by a trusted key: "
                f"{exc}{self._introduced(exc.keys)}",
                **where,
            )
            return None
        except BadSignature as exc:
            self.bad_checkpoints.add(checkpoint_id)
            self._problem(
                Kind.BAD_SIGNATURE,
                f"checkpoint {checkpoint_id} (size {size}): the signature does not verify: {exc}",
                **where,
            )
            return None
        except (MalformedNote, ValueError) as exc:
            self.bad_checkpoints.add(checkpoint_id)
            self._problem(
                Kind.BAD_SIGNATURE,
                f"checkpoint {checkpoint_id} (size {size}) is not a well-formed signed "
                f"checkpoint: {exc}",
                **where,
            )
            return None
        if self.origin is not None and checkpoint.origin != self.origin:
            self.bad_checkpoints.add(checkpoint_id)
            self._problem(
                Kind.REPLAYED,
                f"checkpoint {checkpoint_id} is of another log ({checkpoint.origin!r}, "
                f"expected {self.origin!r})",
                **where,
            )
            return None
        if checkpoint.size != size or checkpoint.root != bytes(row.root):
            self.bad_checkpoints.add(checkpoint_id)
            self._problem(
                Kind.TREE_ALTERED,
                f"checkpoint {checkpoint_id}: its size or root column ({size}) disagrees with "
                f"its signed note (size {checkpoint.size})",
                **where,
            )
            return None
        return checkpoint

    def _introduced(self, keys: list[str]) -> str:
        """Why an unknown key is unknown, when the log itself introduced it."""
        wanted = {k.rpartition("+")[2] for k in keys}
        with self.engine.connect() as connection:
            rows = connection.execute(
                select(RECORDS.c.seq, RECORDS.c.details)
                .where(RECORDS.c.kind == RecordKind.AUDIT.value)
                .where(RECORDS.c.action == "key-added")
            ).all()
        for seq, details in rows:
            if isinstance(details, str):
                with contextlib.suppress(ValueError):
                    details = json.loads(details)
            if isinstance(details, dict) and details.get("key_id") in wanted:
                return (
                    f" (record seq {seq} introduced key {details['key_id']}, but no checkpoint "
                    "signed by an already trusted key covers that record: the handover "
                    "checkpoint was not co-signed by the previous key)"
                )
        return ""

    def _check_roots(self, checkpoint_id: int, checkpoint: Checkpoint) -> None:
        size = checkpoint.size
        records_ok = self.by_records.root() == checkpoint.root
        tiles_ok = self.by_tiles.root() == checkpoint.root
        if records_ok or tiles_ok:
            self.covered = max(self.covered, size)
        if records_ok:
            self.records_proven = size
            self.report.checkpoints += 1
            if self.report.latest is None or size >= self.report.latest.size:
                self.report.latest = checkpoint
        if tiles_ok:
            self.tiles_proven = size
        # Keys the log introduced below this size are now vouched for by a trusted key, if the
        # record saying so is proven (by the records' root, or by its proven tile entry).
        for pending in list(self.pending_keys):
            leaf, key_id, verifier, matches_tile = pending
            if leaf < size and (records_ok or (tiles_ok and matches_tile)):
                self.verifiers.append(verifier)
                self.report.trusted_keys.append(key_id)
                self.pending_keys.remove(pending)
        if not records_ok and self.first_failed is None:
            self.first_failed = (size, self.records_proven)
        if not records_ok and not tiles_ok:
            self.covered = max(self.covered, size)
            self.forks.append((checkpoint_id, size))

    def _remembered_at(self, connection: Connection, size: int | None) -> None:
        """The state file's checkpoint, checked when the leaves reach its size."""
        remembered = self.remembered
        if remembered is None or (size is not None and remembered.size > size):
            return
        self.remembered = None
        if size is None and remembered.size > self.position:
            self._problem(
                Kind.REPLAYED,
                f"the checkpoints were rolled back: an earlier verification saw size "
                f"{remembered.size}, the largest checkpoint now is {self.position}",
                checkpoint_size=remembered.size,
            )
            return
        self._advance(connection, remembered.size)
        if self.by_records.root() != remembered.root:
            self._problem(
                Kind.REPLAYED,
                f"the log at size {remembered.size} is not the one an earlier verification saw "
                "(another root): the log was rewritten since",
                checkpoint_size=remembered.size,
            )

    # ------------------------------------------------------------------ checkpoints by id

    def _checkpoint_order(self, connection: Connection) -> None:
        """In id order, well-signed checkpoints never go back in size or time."""
        biggest: tuple[int, int, datetime | None] | None = None  # (id, size, time)
        for row in _pages(
            connection,
            "SELECT id, note FROM audit_checkpoint WHERE id > :id ORDER BY id",
            ("id",),
            start={"id": -1},
        ):
            checkpoint_id = int(row.id)
            if checkpoint_id in self.bad_checkpoints:
                continue
            try:
                checkpoint = Checkpoint.parse(note_body(str(row.note)))
            except (MalformedNote, ValueError):
                continue
            if biggest is not None:
                last_id, last_size, last_time = biggest
                backwards = checkpoint.size < last_size or (
                    checkpoint.time is not None
                    and last_time is not None
                    and checkpoint.time < last_time
                )
                if backwards:
                    self._problem(
                        Kind.REPLAYED,
                        f"checkpoint {checkpoint_id} (size {checkpoint.size}, "
                        f"{_iso(checkpoint.time)}) comes after checkpoint {last_id} (size "
                        f"{last_size}, {_iso(last_time)}): an old checkpoint replayed",
                        checkpoint_id=checkpoint_id,
                        checkpoint_size=checkpoint.size,
                    )
                    continue
            biggest = (checkpoint_id, checkpoint.size, checkpoint.time)
        for checkpoint_id, size in self.forks:
            if size < self.records_proven:
                self._problem(
                    Kind.REPLAYED,
                    f"checkpoint {checkpoint_id} (size {size}) is well signed but its root is "
                    "not the log's at that size, which later checkpoints prove: a checkpoint of "
                    "another version of the log",
                    checkpoint_id=checkpoint_id,
                    checkpoint_size=size,
                )

    # ------------------------------------------------------------------ leaves

    def _advance(self, connection: Connection, size: int) -> None:
        """Fold leaves [position, size) into both frontiers."""
        while self.position < size:
            first_tile = self.position // merkle.TILE_WIDTH
            last_tile = min((size - 1) // merkle.TILE_WIDTH, first_tile + CHUNK_TILES - 1)
            end = min(size, (last_tile + 1) * merkle.TILE_WIDTH)
            tiles = level0_tiles(connection, first_tile, last_tile)
            entries = leaf_entries(tiles, self.position, end)
            self._fold(connection, entries)
            if self.progress is not None:
                self.progress(self.position, max(self.total, size))

    def _fold(self, connection: Connection, entries: list[tuple[int | None, bytes | None]]) -> None:
        start = self.position
        seqs = [seq for seq, _ in entries if seq is not None]
        records = records_by_seq(connection, seqs)
        guessed: Iterator[dict[str, Any]] | None = None
        for offset, (seq, tile_hash) in enumerate(entries):
            index = start + offset
            archived = self._archived(index)
            record: dict[str, Any] | None = None
            if seq is None and not archived:
                # The tile is gone: take the records in seq order, as the integrator did.
                if guessed is None:
                    guessed = _records_after(connection, self.last_seq or 0)
                record = next(guessed, None)
                seq = int(record["seq"]) if record is not None else None
                if seq is not None:
                    self.tree_seqs.add(seq)
            elif seq is not None:
                self.tree_seqs.add(seq)
                record = records.get(seq)
            if archived:
                self.report.archived += 1
                record_hash = tile_hash if tile_hash is not None else _NO_RECORD
                if record is not None:
                    self._reused(index, record)
            elif record is None:
                record_hash = _NO_RECORD
            else:
                record_hash = leaf_hash(record)
                self.report.records += 1
                self.last_present = index
                if (
                    record.get("kind") == RecordKind.AUDIT.value
                    and record.get("action") == "key-added"
                ):
                    self._learn_key(index, record, record_hash == tile_hash)
            self.by_records.append(record_hash)
            self.by_tiles.append(tile_hash if tile_hash is not None else _NO_TILE)
            self.level0.append(tile_hash if tile_hash is not None else _NO_TILE)
            if len(self.level0) == merkle.TILE_WIDTH:
                self._entry(connection, 1, index // merkle.TILE_WIDTH, self.level0)
                self.level0 = []
            if self.diffs and self.diffs[-1].index == index - 1:
                self.diffs[-1].next_seq = seq
            if record_hash != tile_hash:
                self.diff_count += 1
                if len(self.diffs) < KEEP_DIFFS:
                    self.diffs.append(
                        _Diff(index, seq, tile_hash, record, record_hash, self.last_seq)
                    )
            self.last_seq = seq if seq is not None else self.last_seq
        self.position = start + len(entries)

    def _entry(self, connection: Connection, level: int, index: int, below: list[bytes]) -> None:
        """Entry `index` of level `level` is the perfect root of the 256 entries below it."""
        value = merkle.root_from_leaves(below)
        tile_index, offset = divmod(index, merkle.TILE_WIDTH)
        cached = self.upper_tiles.get(level)
        if cached is None or cached[0] != tile_index:
            cached = (tile_index, read_tile(connection, level, tile_index))
            self.upper_tiles[level] = cached
        stored = cached[1][offset * merkle.HASH_SIZE : (offset + 1) * merkle.HASH_SIZE]
        if stored != value and len(self.upper_diffs) < MAX_PROBLEMS:
            self.upper_diffs.append((level, index))
        entries = self.upper.setdefault(level, [])
        entries.append(value)
        if len(entries) == merkle.TILE_WIDTH:
            self._entry(connection, level + 1, index // merkle.TILE_WIDTH, entries)
            self.upper[level] = []

    def _learn_key(self, index: int, record: Mapping[str, Any], matches_tile: bool) -> None:
        details = record.get("details")
        if isinstance(details, str):
            with contextlib.suppress(ValueError):
                details = json.loads(details)
        vkey = details.get("vkey") if isinstance(details, dict) else None
        if not isinstance(vkey, str):
            return
        try:
            verifier = Verifier.from_vkey(vkey)
        except ValueError:
            return
        if verifier.key_id not in {v.key_id for v in self.verifiers}:
            self.pending_keys.append((index, verifier.key_id, verifier, matches_tile))

    def _archived(self, index: int) -> bool:
        return any(a.first_leaf <= index < a.end_leaf for a in self.archives)

    def _reused(self, index: int, record: Mapping[str, Any]) -> None:
        """A record in the table at the seq of archived leaf `index`."""
        if sum(p.kind is Kind.SEQ_REUSED for p in self.report.problems) >= MAX_PROBLEMS // 2:
            return
        seq = int(record["seq"])
        file = next(a.path for a in self.archives if a.first_leaf <= index < a.end_leaf)
        self._problem(
            Kind.SEQ_REUSED,
            f"record seq {seq} (id {_id(record)}) has the seq of archived leaf {index}, whose "
            f"record is in {file}: the database handed out seq {seq} again, and the tree "
            "proves the archived record under it, not this one",
            leaf_index=index,
            seq=seq,
            record_id=_id(record),
        )

    def _tile_seqs_only(self, connection: Connection, size: int) -> None:
        """The seqs of the leaves no checkpoint covers yet (for the inserted-record check)."""
        first = self.position // merkle.TILE_WIDTH
        for row in connection.execute(
            text("SELECT idx, seqs FROM audit_tile WHERE level = 0 AND idx >= :first ORDER BY idx"),
            {"first": first},
        ):
            base = int(row.idx) * merkle.TILE_WIDTH
            for offset, seq in enumerate(unpack_seqs(bytes(row.seqs or b""))):
                if self.position <= base + offset < size:
                    self.tree_seqs.add(seq)

    def _inserted(
        self, connection: Connection, last_seq: int, gaps: list[tuple[int, int]]
    ) -> list[dict[str, Any]]:
        """Records inside the tree's seq range that the tree does not have."""
        found: list[dict[str, Any]] = []
        if self.tree_seqs.highest < 0:
            return found
        for row in _pages(
            connection,
            "SELECT seq FROM exchange_record WHERE seq > :seq AND seq <= :last ORDER BY seq",
            ("seq",),
            start={"seq": -1, "last": last_seq},
        ):
            seq = int(row.seq)
            if seq in self.tree_seqs or any(low <= seq <= high for low, high in gaps):
                continue
            record = records_by_seq(connection, [seq]).get(seq)
            if record is not None:
                found.append(record)
            if len(found) >= KEEP_DIFFS:
                break
        return found

    # ------------------------------------------------------------------ diagnosis

    def _diagnose(self, connection: Connection, inserted: list[dict[str, Any]]) -> None:
        by_index = {d.index: d for d in self.diffs}
        reported = 0
        for diff in self.diffs:
            if reported >= MAX_PROBLEMS // 2:
                break
            if diff.index >= self.covered:
                continue
            if diff.index < self.records_proven:
                self._tile_problem(diff)
            elif diff.index < self.tiles_proven:
                self._record_problem(connection, diff, by_index, inserted)
                if self.report.problems[-1].kind is Kind.TRUNCATED:
                    break  # the leaves after it are the same truncation
            else:
                if self.first_failed is None:  # cannot be: records held wherever tiles did
                    continue
                size, good = self.first_failed
                self._problem(
                    Kind.MODIFIED,
                    f"records and tiles both disagree with the checkpoint of size {size}: "
                    f"a record in leaves {good}-{size - 1} was altered and the tiles rewritten "
                    f"to match (first leaf where they differ from each other: {diff.index})",
                    leaf_index=diff.index,
                    seq=diff.seq,
                    checkpoint_size=size,
                )
                reported += 1
                break
            reported += 1
        if not self.diffs and self.first_failed is not None:
            size, good = self.first_failed
            archived = [a for a in self.archives if a.first_leaf < size and a.end_leaf > good]
            if archived:
                self._problem(
                    Kind.TREE_ALTERED,
                    f"leaves {good}-{size - 1} do not give the root signed at size {size}, "
                    "though every live record hashes to its tile entry: the tile entry of an "
                    f"archived leaf (archived: {archived[0].first_leaf}-"
                    f"{archived[-1].end_leaf - 1}) was altered, or live records and tiles were "
                    "rewritten alike; the archive files hold the records and their proofs",
                    leaf_index=max(good, archived[0].first_leaf),
                    checkpoint_size=size,
                )
            else:
                self._problem(
                    Kind.MODIFIED,
                    f"the records do not give the root signed at size {size}, although every "
                    f"record hashes to its tile entry: records and tiles in leaves {good}-"
                    f"{size - 1} were rewritten alike",
                    leaf_index=good,
                    checkpoint_size=size,
                )
        for level, index in self.upper_diffs:
            span = merkle.TILE_WIDTH**level
            first, end = index * span, (index + 1) * span
            if end <= self.tiles_proven:  # the level-0 entries under it are proven
                self._problem(
                    Kind.TREE_ALTERED,
                    f"tile level {level}, entry {index} (leaves {first}-{end - 1}) is not the hash "
                    "of the proven entries below it: proofs computed from it would not verify",
                    leaf_index=first,
                )
        if self.diff_count > len(self.diffs):
            self.report.notes.append(
                f"{self.diff_count} leaves disagree with their tile entries in all; the first "
                f"{len(self.diffs)} were examined"
            )
        # A record the tree's seqs miss may be the true record of a leaf whose tile entry was
        # altered (its seq rewritten): that is the tile's problem, reported above.
        leaves = {d.tile_hash for d in self.diffs}
        for record in [r for r in inserted if leaf_hash(r) not in leaves][:MAX_PROBLEMS]:
            self._inserted_problem(connection, record)

    def _tile_problem(self, diff: _Diff) -> None:
        self._problem(
            Kind.TREE_ALTERED,
            f"leaf {diff.index}: the stored tile entry is not the leaf hash of its record "
            f"(seq {diff.seq}), whose content the signed checkpoints prove: tree storage altered",
            leaf_index=diff.index,
            seq=diff.seq,
            record_id=_id(diff.record),
        )

    def _record_problem(
        self,
        connection: Connection,
        diff: _Diff,
        by_index: dict[int, _Diff],
        inserted: list[dict[str, Any]],
    ) -> None:
        """The tiles are proven here: say what happened to the leaf's record."""
        i, expected = diff.index, diff.tile_hash
        where: dict[str, Any] = {"leaf_index": i, "seq": diff.seq}
        if expected is None:  # a proven tile is never missing; defensive
            self._problem(Kind.TREE_ALTERED, f"leaf {i}: no tile entry", **where)
            return
        # The tile's seq itself altered? The record at the neighbouring seq is this leaf's.
        for candidate in {s for s in (_plus(diff.prev_seq, 1), _plus(diff.next_seq, -1))}:
            if candidate is None or candidate == diff.seq:
                continue
            record = records_by_seq(connection, [candidate]).get(candidate)
            if record is not None and leaf_hash(record) == expected:
                self._problem(
                    Kind.TREE_ALTERED,
                    f"leaf {i}: its tile names seq {diff.seq}, but its record is seq "
                    f"{candidate}, unaltered: tree storage altered",
                    leaf_index=i,
                    seq=candidate,
                    record_id=_id(record),
                )
                return
        record = diff.record
        if record is None:
            for moved in inserted:
                if _as_seq(moved, diff.seq) == expected:
                    self._problem(
                        Kind.REORDERED,
                        f"leaf {i}: record seq {diff.seq} was moved to seq {moved['seq']} "
                        f"(id {moved['id']})",
                        record_id=_id(moved),
                        **where,
                    )
                    return
            if self.last_present < i:
                self._problem(
                    Kind.TRUNCATED,
                    f"the records end at leaf {i}: the records of leaves {i}-"
                    f"{self.covered - 1} (from seq {diff.seq}) are gone, though a checkpoint "
                    f"signed {self.covered} leaves",
                    **where,
                )
                return
            self._problem(Kind.DELETED, f"leaf {i}: record seq {diff.seq} was deleted", **where)
            return
        where["record_id"] = _id(record)
        following = by_index.get(i + 1)
        for other in by_index.values():
            if other.index == i or other.tile_hash is None:
                continue
            if _as_seq(record, other.seq) != other.tile_hash:
                continue
            # This record holds leaf `other`'s content.
            back = other.record is not None and _as_seq(other.record, diff.seq) == expected
            if other.index == i + 1 and not back:
                self._problem(
                    Kind.DELETED,
                    f"leaf {i}: record seq {diff.seq} was deleted and the later records "
                    f"renumbered (seq {diff.seq} now holds leaf {i + 1}'s record)",
                    **where,
                )
            else:
                what = "swapped with" if back else "holds the content of"
                self._problem(
                    Kind.REORDERED,
                    f"leaf {i}: record seq {diff.seq} {what} leaf {other.index} (seq {other.seq})",
                    **where,
                )
            return
        if (
            following is not None
            and following.record is not None
            and _as_seq(following.record, diff.seq) == expected
        ):
            self._problem(
                Kind.INSERTED,
                f"leaf {i}: a record (id {_id(record)}) was inserted at seq {diff.seq} and the "
                f"later records renumbered (leaf {i}'s record is now seq {following.seq})",
                **where,
            )
            return
        self._problem(
            Kind.MODIFIED,
            f"leaf {i}: record seq {diff.seq} (id {_id(record)}) was modified: it no longer "
            "hashes to the leaf the checkpoints signed",
            **where,
        )

    def _inserted_problem(self, connection: Connection, record: dict[str, Any]) -> None:
        seq = int(record["seq"])
        above = self.tree_seqs.next_above(seq)
        leaf = self.store.leaf_index(above, connection) if above is not None else None
        position = f"before leaf {leaf} (seq {above})" if leaf is not None else "in the tree"
        self._problem(
            Kind.INSERTED,
            f"record seq {seq} (id {_id(record)}) is not in the tree, though its seq lies "
            f"inside it: inserted {position}",
            leaf_index=leaf,
            seq=seq,
            record_id=_id(record),
        )


# --------------------------------------------------------------------------- helpers


def _order(problem: Problem) -> tuple[int, int, int]:
    rank = _RANK.get(problem.kind, 3)
    return (rank, problem.leaf_index if problem.leaf_index is not None else -1,
            problem.checkpoint_id or 0)  # fmt: skip


def _as_seq(record: Mapping[str, Any], seq: int | None) -> bytes:
    """The leaf hash `record` would have under another seq (a moved record)."""
    return leaf_hash({**record, "seq": seq})


def _plus(value: int | None, delta: int) -> int | None:
    return None if value is None else value + delta


def _id(record: Mapping[str, Any] | None) -> str | None:
    return None if record is None else str(record.get("id"))


def _iso(moment: datetime | None) -> str:
    return "no time" if moment is None else moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def _pages(
    connection: Connection, statement: str, keys: tuple[str, ...], *, start: dict[str, Any]
) -> Iterator[Any]:
    """Rows of a keyset-paginated query, a page at a time (never the whole table at once)."""
    query = text(statement + f" LIMIT {PAGE}")
    parameters = dict(start)
    while True:
        rows = connection.execute(query, parameters).all()
        yield from rows
        if len(rows) < PAGE:
            return
        last = rows[-1]
        for key in keys:
            parameters[key] = getattr(last, key)


def records_by_seq(connection: Connection, seqs: Sequence[int]) -> dict[int, dict[str, Any]]:
    """The records with these seqs, by seq, as the database holds them (absent ones left out)."""
    out: dict[int, dict[str, Any]] = {}
    for i in range(0, len(seqs), 900):  # under SQLite's bound-parameter limit
        result = connection.execute(select(RECORDS).where(RECORDS.c.seq.in_(seqs[i : i + 900])))
        names = list(result.keys())
        for values in result.all():
            row = dict(zip(names, values, strict=True))
            out[int(row["seq"])] = row
    return out


def _records_after(connection: Connection, seq: int) -> Iterator[dict[str, Any]]:
    while True:
        rows = [
            dict(r)
            for r in connection.execute(
                select(RECORDS).where(RECORDS.c.seq > seq).order_by(RECORDS.c.seq).limit(PAGE)
            ).mappings()
        ]
        yield from rows
        if len(rows) < PAGE:
            return
        seq = int(rows[-1]["seq"])


def _archives(connection: Connection) -> list[_Archive]:
    """The archived leaf ranges the log itself vouches for.

    An `audit_archive` row alone is not evidence (anyone who can delete records can insert a
    row): a range counts as archived only if an `archive` record of the log names the same
    leaves and file hash. A row without one leaves its leaves to be checked as live records,
    so records deleted behind such a row show as deleted."""
    try:
        rows = connection.execute(
            text("SELECT first_leaf, end_leaf, path, checkpoint_size, sha256 FROM audit_archive")
        ).all()
    except Exception:  # a database from before retention: nothing archived
        connection.rollback()
        return []
    announced: set[tuple[Any, Any, Any]] = set()
    details: Any
    for details in connection.execute(
        select(RECORDS.c.details)
        .where(RECORDS.c.kind == RecordKind.AUDIT.value)
        .where(RECORDS.c.action == "archive")
    ).scalars():
        if isinstance(details, str):
            details = json.loads(details)
        if isinstance(details, dict):
            announced.add(
                (details.get("first_leaf"), details.get("end_leaf"), details.get("sha256"))
            )
    return [
        _Archive(int(r[0]), int(r[1]), str(r[2]), int(r[3]))
        for r in rows
        if (int(r[0]), int(r[1]), str(r[4])) in announced
    ]


def _gaps(connection: Connection) -> list[tuple[int, int]]:
    value = connection.execute(text("SELECT gaps FROM audit_tree WHERE id = 1")).scalar()
    if isinstance(value, str):
        value = json.loads(value)
    out: list[tuple[int, int]] = []
    for gap in value or []:
        if isinstance(gap, list | tuple) and len(gap) >= 2:
            out.append((int(gap[0]), int(gap[1])))
        elif isinstance(gap, int):
            out.append((gap, gap))
    return out


def _has_records(engine: Engine) -> bool:
    with engine.connect() as connection:
        return connection.execute(text("SELECT 1 FROM exchange_record LIMIT 1")).first() is not None


# --------------------------------------------------------------------------- state file


def _read_state(path: Path) -> _Remembered | None:
    if not path.exists():
        return None
    try:
        data = json.loads(path.read_text())
        return _Remembered(
            size=int(data["size"]),
            root=base64.b64decode(data["root"], validate=True),
            origin=data.get("origin"),
        )
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise VerifyError(f"cannot read the state file {path}: {exc}") from None


def _write_state(path: Path, checkpoint: Checkpoint) -> None:
    data = {
        "origin": checkpoint.origin,
        "size": checkpoint.size,
        "root": base64.b64encode(checkpoint.root).decode(),
        "time": _iso(checkpoint.time),
    }
    temporary = path.with_name(path.name + ".tmp")
    temporary.write_text(json.dumps(data, indent=2) + "\n")
    os.replace(temporary, path)


def format_report(report: Report) -> str:
    """The report as the CLI prints it."""
    lines: list[str] = []
    latest = report.latest
    if report.ok:
        lines.append("audit log verified: OK")
    else:
        lines.append(f"audit log verification FAILED ({report.first.kind if report.first else ''})")
    lines.append(
        f"  checkpoints: {report.checkpoints} of {report.checkpoint_rows} verified against the "
        "records; "
        f"leaves checked: {report.leaves} ({report.records} records hashed, "
        f"{report.archived} archived); tree size: {report.tree_size}"
    )
    if latest is not None:
        lines.append(
            f"  latest verified checkpoint: size {latest.size}, root "
            f"{base64.b64encode(latest.root).decode()}, {_iso(latest.time)}"
        )
    lines.append(f"  trusted keys: {', '.join(report.trusted_keys) or 'none'}")
    for problem in report.problems:
        lines.append(f"  [{problem.kind}] {problem.message}")
    for note in report.notes:
        lines.append(f"  note: {note}")
    return "\n".join(lines)
