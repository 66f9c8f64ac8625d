"""Retention: records older than a configured age move out of the database into archive files.

An archive file is an evidence bundle (audit/bundle.py, the format `lgsp audit verify-bundle`
checks offline): the records of a contiguous range of leaves, in leaf order, each with its
inclusion proof against a signed checkpoint, that checkpoint and the hub's public keys. Ranges
follow one another from leaf 0 (the archive boundary is the end of the last one), so what has left
the database is always a prefix of the tree, described by the `audit_archive` rows.

Only records a signed checkpoint already covers are archived, and the leaf hashes stay in the
tiles: the tree, its checkpoints and the proofs of the records still in the database do not change.

One file at a time, and in this order, so that a crash anywhere loses nothing:

1. the file is written under a temporary name, fsynced, checked with the offline verifier, renamed
   to its final name (`audit-<first leaf>.zip`, the same on a retry) and the directory fsynced;
2. one transaction inserts the `audit_archive` row (with the file's SHA-256), deletes the records
   from `exchange_record` and appends an `audit` record (action `archive`) saying so.

A crash before 2 commits leaves the records in place and a file no row names; the next run writes
the same name again. The append-only triggers allow the delete in that transaction only: on
PostgreSQL the trigger function (migration 0004) lets a DELETE through when the transaction set
`lgsp.archiving = 'on'` (SET LOCAL); on SQLite the transaction drops the triggers and creates
them again before it commits (SQLite's DDL is transactional, and the transaction holds the
database's write lock throughout, so no other connection ever sees the table without them).
Before deleting, every record is checked against its leaf in the tiles and the tree's root
against the checkpoint: a log altered behind the hub's back is not archived (ArchiveError).

Archiving runs in one process at a time (an advisory lock on PostgreSQL, a file lock on SQLite); a
second caller returns at once with nothing done.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, delete, func, insert, select, text
from sqlalchemy.engine import Engine

from audit.bundle import BundleWriter, iso_utc, partial_path, sha256_file, verify_bundle
from audit.canonical import leaf_bytes
from audit.errors import ArchiveError
from audit.keys import default_key_file
from audit.locks import exclusive
from audit.merkle import (
    TILE_HEIGHT,
    NodeSource,
    hash_children,
    hash_leaf,
    inclusion_proof,
    root_at,
)
from audit.models import AuditArchive, AuditCheckpoint
from audit.notes import Checkpoint, note_body
from audit.records import ExchangeRecord, RecordKind, new_record_id
from audit.tree import TreeStore
from audit.verify import records_by_seq
from audit.writer import writers_turn
from registry.types import utcnow

log = logging.getLogger(__name__)

ARCHIVE_LOCK = 0x4C475341  # "LGSA": one archiving process at a time (PostgreSQL)
MAX_RECORDS = 50_000  # records per file: bounds the memory and the delete transaction
_DELETE_CHUNK = 500  # seqs per DELETE … IN (…) (SQLite's bound-parameter limit)

_records = ExchangeRecord.__table__  # type: ignore[attr-defined]
_archives = AuditArchive.__table__  # type: ignore[attr-defined]
_checkpoints = AuditCheckpoint.__table__  # type: ignore[attr-defined]


@dataclass(frozen=True, slots=True)
class ArchiveResult:
    path: Path
    sha256: str  # of the file, hex
    first_leaf: int
    end_leaf: int  # exclusive
    min_seq: int
    max_seq: int
    records: int
    checkpoint_size: int
    record_id: str  # the `audit` record saying so


@dataclass(frozen=True, slots=True)
class _Checkpoint:
    size: int
    root: bytes
    note: str
    key_id: str
    time: datetime


def file_name(first_leaf: int) -> str:
    """The archive file starting at `first_leaf`: a retry after a crash writes the same name."""
    return f"audit-{first_leaf:012d}.zip"


def default_archive_dir(database_url: str, key_file: Path | None = None) -> Path:
    """Where archives go when LGSP_AUDIT_ARCHIVE_DIR is not set: beside the signing key file
    (`lgsp.db.audit-key` → `lgsp.db.archive/`), so one per database."""
    key = key_file if key_file is not None else default_key_file(database_url)
    return key.with_suffix(".archive")


def boundary(connection: Connection) -> int:
    """The first leaf whose record is still in the database (the end of the last archive)."""
    end: int | None = connection.execute(select(func.max(_archives.c.end_leaf))).scalar_one()
    return int(end or 0)


def archive(
    engine: Engine,
    *,
    older_than: timedelta,
    directory: Path,
    now: datetime | None = None,
    max_records: int = MAX_RECORDS,
    actor: str = "retention",
) -> list[ArchiveResult]:
    """Move the records older than `older_than` (and covered by a checkpoint) to archive files.

    Returns one result per file written, in leaf order; [] when there was nothing to archive or
    another process was archiving.
    """
    if max_records < 1:
        raise ValueError("max_records must be positive")
    cutoff = (now or utcnow()).astimezone(UTC) - older_than
    directory = directory.resolve()
    results: list[ArchiveResult] = []
    with _exclusive(engine) as mine:
        if not mine:
            return results
        store = TreeStore(engine)
        while True:
            result = _archive_one(engine, store, cutoff, directory, max_records, actor)
            if result is None:
                break
            results.append(result)
            if result.records < max_records:
                break  # it stopped at a record too young, or at the checkpoint
    return results


async def run_daily(
    engine: Engine,
    *,
    retention_days: float,
    directory: Path,
    first_after: float = 60.0,
    every: float = 86_400.0,
) -> None:
    """Archive once a day, for ever (a task of the hub's runtime; every replica may run one:
    the lock makes one of them do the work). A failure is logged and tried again next time."""
    await asyncio.sleep(first_after)
    while True:
        try:
            results = await asyncio.to_thread(
                archive, engine, older_than=timedelta(days=retention_days), directory=directory
            )
            for r in results:
                log.info(
                    "audit: archived leaves %d-%d (%d records) to %s",
                    r.first_leaf, r.end_leaf - 1, r.records, r.path,
                )  # fmt: skip
        except ArchiveError as exc:
            log.critical("audit archiving refused: %s (run lgsp audit verify)", exc)
        except Exception as exc:  # the database or the disk: next time
            log.error("audit archiving failed: %s", exc)
        await asyncio.sleep(every)


def _archive_one(
    engine: Engine,
    store: TreeStore,
    cutoff: datetime,
    directory: Path,
    max_records: int,
    actor: str,
) -> ArchiveResult | None:
    with engine.connect() as connection:
        start = boundary(connection)
        checkpoint = _latest_checkpoint(connection)
        if checkpoint is None or start >= checkpoint.size:
            return None
        end = min(checkpoint.size, start + max_records)
        seqs = store.seqs(start, end)
        rows = records_by_seq(connection, seqs)
        ordered = text("SELECT vkey FROM audit_key ORDER BY created_at, key_id")
        vkeys = [str(row[0]) for row in connection.execute(ordered).all()]
    # A contiguous range: it ends at the first record that is not old enough.
    chosen: list[dict[str, Any]] = []
    for offset, seq in enumerate(seqs):
        row = rows.get(seq)
        if row is None:
            raise ArchiveError(f"leaf {start + offset} (record seq {seq}) is not in the database")
        if _aware(row["time"]) >= cutoff:
            break
        chosen.append(row)
    if not chosen:
        return None
    end = start + len(chosen)
    nodes = _memoised(store.nodes())
    if root_at(checkpoint.size, nodes) != checkpoint.root:
        raise ArchiveError(f"the tree's root at size {checkpoint.size} is not the checkpoint's")
    lines = [leaf_bytes(row) for row in chosen]
    stored = store.leaf_hashes(start, end)
    for offset, (row, line, expected) in enumerate(zip(chosen, lines, stored, strict=True)):
        if hash_leaf(line) != expected:
            raise ArchiveError(
                f"leaf {start + offset} (record seq {row['seq']}) does not match the tree"
            )
    # Into the file, which the offline verifier checks before anything is deleted.
    proofs = [inclusion_proof(start + i, checkpoint.size, nodes) for i in range(len(chosen))]
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / file_name(start)
    digest = _write_file(path, chosen, lines, start, proofs, checkpoint, vkeys, cutoff)
    archived_seqs = [int(r["seq"]) for r in chosen]
    result = ArchiveResult(
        path=path,
        sha256=digest,
        first_leaf=start,
        end_leaf=end,
        min_seq=min(archived_seqs),
        max_seq=max(archived_seqs),
        records=len(chosen),
        checkpoint_size=checkpoint.size,
        record_id=new_record_id(),
    )
    _commit(engine, result, archived_seqs, actor)
    return result


def _memoised(tiles: NodeSource) -> NodeSource:
    """Nodes computed once each: the proofs of a run of leaves share most of their nodes, and a
    node inside a tile is hashed from its two children rather than from all its leaves."""
    memo: dict[tuple[int, int], bytes] = {}

    def node(level: int, index: int) -> bytes:
        found = memo.get((level, index))
        if found is None:
            if level % TILE_HEIGHT == 0:
                found = tiles(level, index)
            else:
                found = hash_children(node(level - 1, 2 * index), node(level - 1, 2 * index + 1))
            memo[(level, index)] = found
        return found

    return node


def _aware(moment: datetime | str) -> datetime:
    if isinstance(moment, str):
        moment = datetime.fromisoformat(moment)
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _latest_checkpoint(connection: Connection) -> _Checkpoint | None:
    row = connection.execute(
        select(_checkpoints).order_by(_checkpoints.c.size.desc(), _checkpoints.c.id.desc()).limit(1)
    ).first()
    if row is None:
        return None
    return _Checkpoint(
        size=int(row.size), root=bytes(row.root), note=row.note, key_id=row.key_id, time=row.time
    )


# --- the file -----------------------------------------------------------------------------------


def _write_file(
    path: Path,
    rows: Sequence[Mapping[str, Any]],
    lines: Sequence[bytes],
    first_leaf: int,
    proofs: Sequence[Sequence[bytes]],
    checkpoint: _Checkpoint,
    vkeys: Sequence[str],
    cutoff: datetime,
) -> str:
    """Write the bundle durably under its final name and check it offline; its SHA-256 (hex).

    The layout is audit/bundle.py's (format lgsp-audit-bundle/1, its BundleWriter): records.ndjson
    holds each record's leaf bytes, in leaf order; proofs.ndjson the proof of the same line.
    """
    origin = Checkpoint.parse(note_body(checkpoint.note)).origin
    seqs = [int(r["seq"]) for r in rows]
    description = {
        "archive": {
            "first_leaf": first_leaf,
            "end_leaf": first_leaf + len(rows),
            "min_seq": min(seqs),
            "max_seq": max(seqs),
            "older_than": iso_utc(cutoff),
        }
    }
    temporary = partial_path(path)
    try:
        with BundleWriter(temporary, checkpoint, vkeys, origin=origin) as writer:
            for offset, (row, line, proof) in enumerate(zip(rows, lines, proofs, strict=True)):
                writer.add(row, line, first_leaf + offset, hash_leaf(line), proof)
            writer.finish(description=description)
        with temporary.open("rb") as written:
            os.fsync(written.fileno())
        checked = verify_bundle(temporary, list(vkeys))
        if not checked.ok or checked.records != len(rows):
            raise ArchiveError(f"the archive file does not verify: {checked.message}")
        os.replace(temporary, path)
        _fsync_directory(path.parent)
    finally:
        temporary.unlink(missing_ok=True)
    return sha256_file(path)


def _fsync_directory(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


# --- the transaction ----------------------------------------------------------------------------


def _commit(engine: Engine, result: ArchiveResult, seqs: Sequence[int], actor: str) -> None:
    """Register the file, delete its records and record that, all or nothing."""
    sqlite = engine.dialect.name == "sqlite"
    with writers_turn(engine), engine.connect() as connection:
        if sqlite:
            # Take the write lock now: the triggers are dropped and created again inside.
            connection.exec_driver_sql("BEGIN IMMEDIATE")
        else:
            connection.execute(text("SET LOCAL lgsp.archiving = 'on'"))
        if boundary(connection) != result.first_leaf:  # cannot happen under the archive lock
            raise ArchiveError("another process archived these leaves meanwhile")
        connection.execute(
            insert(_archives).values(
                first_leaf=result.first_leaf,
                end_leaf=result.end_leaf,
                min_seq=result.min_seq,
                max_seq=result.max_seq,
                checkpoint_size=result.checkpoint_size,
                path=str(result.path),
                sha256=result.sha256,
                records=result.records,
                created_at=utcnow(),
            )
        )
        triggers: list[tuple[str, str]] = []
        if sqlite:
            triggers = [
                (str(name), str(sql))
                for name, sql in connection.exec_driver_sql(
                    "SELECT name, sql FROM sqlite_master "
                    "WHERE type = 'trigger' AND tbl_name = 'exchange_record'"
                )
            ]
            for name, _ in triggers:
                connection.exec_driver_sql(f'DROP TRIGGER "{name}"')
        deleted = 0
        for i in range(0, len(seqs), _DELETE_CHUNK):
            deleted += connection.execute(
                delete(_records).where(_records.c.seq.in_(seqs[i : i + _DELETE_CHUNK]))
            ).rowcount
        if deleted != len(seqs):  # rolled back: the file stays unregistered
            raise ArchiveError(f"{len(seqs)} records to delete, {deleted} found")
        for _, sql in triggers:
            connection.exec_driver_sql(sql)
        connection.execute(
            insert(_records).values(
                id=result.record_id,
                kind=str(RecordKind.AUDIT),
                time=utcnow(),
                actor=actor,
                action="archive",
                object_type="audit-archive",
                object_key=result.path.name,
                details={
                    "file": result.path.name,
                    "sha256": result.sha256,
                    "first_leaf": result.first_leaf,
                    "end_leaf": result.end_leaf,
                    "min_seq": result.min_seq,
                    "max_seq": result.max_seq,
                    "records": result.records,
                    "checkpoint_size": result.checkpoint_size,
                },
            )
        )
        connection.commit()


def _exclusive(engine: Engine) -> AbstractContextManager[bool]:
    """Whether this process got to archive (False: another one is at it)."""
    return exclusive(engine, "archive", ARCHIVE_LOCK, wait=False)
