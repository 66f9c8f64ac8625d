"""The integrator: every committed exchange record becomes a leaf of the Merkle tree.

Records are committed by the requests themselves (audit/writer.py, group commit); this module
folds them into the tree behind them, a batch a pass, and signs checkpoints:

- A pass reads the records after the last one integrated, hashes them (audit/canonical.py),
  appends the hashes to the tiles (audit/merkle.py) and moves the tree's state on, all in one
  transaction that holds the state row's lock. Every hub process runs passes; the lock makes
  them take turns, and a pass that finds the state moved under it gives way.
- PostgreSQL hands out sequence values before the transactions that took them commit, so seq
  order is not commit order: a seq missing below the last one integrated is a gap, looked for
  again on every pass; one that turns up becomes the next leaf (leaves are in integration
  order; the tiles keep each leaf's seq), one that stays missing for GAP_SECONDS was rolled back.
- A checkpoint (C2SP signed note) is signed when the tree has grown and `checkpoint_seconds`
  have passed since the last one, and on shutdown.
- A seq names one record for good: the tiles keep each leaf's seq (also an archived leaf's), and
  proofs find a record's leaf by it. Before each pass the integrator looks for a record that
  holds a seq the tree already gave out (at or below an archived range, or the newest record at
  or below `last_seq`) and is not that seq's leaf nor awaited in a gap: a database that handed
  out a seq twice (SQLite before AUTOINCREMENT, a sequence set back) or a record put in behind
  the hub's back. It then stops (`SeqReused`, in `halted` and /readyz, logged) rather than fold
  in or sign the wrong record, and goes on by itself once the record is gone.
- The log's own events are records too (kind `audit`): each process's start (with the audit
  configuration, and whether the stored tree still matches the last checkpoint), stop,
  reconfiguration and key changes. Stopping the log therefore always leaves a signed trace, and
  a process that died without one shows as a start with no stop before it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import socket
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import partial
from typing import Any

from sqlalchemy import select, text
from sqlalchemy.engine import Connection, Engine, Row

from audit import merkle
from audit.canonical import leaf_hash
from audit.errors import SeqReused
from audit.locks import exclusive
from audit.notes import Checkpoint, Signer, sign_note
from audit.records import ExchangeRecord, Record, RecordKind
from audit.tree import TreeStore, leaf_index, pack_seqs, read_state, read_tile, unpack_seqs
from audit.writer import AuditWriter, writers_turn
from registry.types import utcnow

log = logging.getLogger(__name__)

INTEGRATOR_LOCK = 0x4C475349  # "LGSI": the integrating process (PostgreSQL advisory lock)
GAP_SECONDS = 60.0  # a seq not committed after this long belonged to a rolled-back transaction
PASS_LIMIT = 20_000  # records folded in by one pass
VETTED_LIMIT = 10_000  # records below the frontier found to be their leaf's, remembered
RECORDS = ExchangeRecord.__table__  # type: ignore[attr-defined]
# The first statement of every transaction that changes the tree: it locks the state row on
# PostgreSQL and takes SQLite's write lock at once (a read first could not be upgraded to a
# write once another connection has committed: SQLite answers that with an immediate error).
TAKE_TURN = text("UPDATE audit_tree SET updated_at = updated_at WHERE id = 1")
# A pass's first read: the tree's state, and what the seq-reuse check needs, in one statement.
STATE = text(
    "SELECT size, last_seq, gaps, "
    "(SELECT max(seq) FROM exchange_record) AS newest, "
    "(SELECT max(max_seq) FROM audit_archive) AS archived_seq, "
    "(SELECT max(end_leaf) FROM audit_archive) AS archived_leaf "
    "FROM audit_tree WHERE id = 1"
)


@dataclass(frozen=True, slots=True)
class AuditConfig:
    """What the log's start record states; a change from the last start is a reconfiguration."""

    origin: str
    key_id: str
    checkpoint_seconds: float
    retention_days: int | None = None

    def as_details(self) -> dict[str, Any]:
        return {
            "origin": self.origin,
            "key_id": self.key_id,
            # integers only in records: canonical JSON has no floats
            "checkpoint_ms": round(self.checkpoint_seconds * 1000),
            "retention_days": self.retention_days,
        }


@dataclass(slots=True)
class PassResult:
    leaves: int = 0
    checkpoint: int | None = None  # the size of the checkpoint signed, if one was
    gaps: int = 0
    dropped_gaps: list[tuple[int, int]] = field(default_factory=list)


class AuditLog:
    """One per process: integrates records into the tree and signs checkpoints."""

    def __init__(
        self,
        engine: Engine,
        *,
        signers: list[Signer],
        origin: str,
        checkpoint_seconds: float = 5.0,
        retention_days: int | None = None,
        writer: AuditWriter | None = None,
        interval: float = 0.25,
    ) -> None:
        if not signers:
            raise ValueError("the audit log needs a signing key")
        self.engine = engine
        self.signers = signers
        self.origin = origin
        self.checkpoint_seconds = checkpoint_seconds
        self.writer = writer
        self.interval = interval
        self.store = TreeStore(engine)
        self.config = AuditConfig(
            origin=origin,
            key_id=signers[0].key_id,
            checkpoint_seconds=checkpoint_seconds,
            retention_days=retention_days,
        )
        self._task: asyncio.Task[None] | None = None
        self._stopping = False
        # Why integration stopped (a record at a seq the tree already gave out), or None: as this
        # process's last pass found it (another replica that won no pass since may not know).
        self.halted: str | None = None
        self._vetted: set[int] = set()  # seqs at or below the frontier checked as their leaf's

    # ------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        """Register the key, check the stored tree, record the start, then integrate."""
        await asyncio.to_thread(self.integrate)  # what the last run left unintegrated
        events = await asyncio.to_thread(self._startup_events)
        for event in events:
            await self._record(event)
        await asyncio.to_thread(self._fold_all)
        self._task = asyncio.create_task(self._run(), name="audit-integrator")

    async def stop(self, reason: str = "shutdown") -> None:
        """Record the stop, fold in every record and sign a last checkpoint covering it."""
        self._stopping = True
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        with contextlib.suppress(Exception):
            process = f"{socket.gethostname()}:{os.getpid()}"
            await self._record(
                {"action": "stop", "details": {"reason": reason, "process": process}}
            )
        for _ in range(3):
            try:
                await asyncio.to_thread(self._fold_all)
                break
            except Exception as exc:  # the database may be going away too
                log.error("final audit integration failed: %s", exc)
                await asyncio.sleep(0.2)

    def _fold_all(self) -> None:
        """Integrate everything committed so far and sign a checkpoint covering it."""
        while self.integrate(force_checkpoint=True).leaves >= PASS_LIMIT:
            pass

    async def _run(self) -> None:
        failures = 0
        busy = False
        while not self._stopping:
            if not busy:  # a full pass leaves more behind it: go on at once
                await asyncio.sleep(self.interval)
            try:
                result = await asyncio.to_thread(self.integrate)
                busy = result.leaves >= PASS_LIMIT
                failures = 0
            except Exception as exc:  # a passing database fault: the next pass catches up
                failures += 1
                if failures in (1, 10) or failures % 100 == 0:
                    log.error("audit integration failed (%d in a row): %s", failures, exc)
                await asyncio.sleep(min(5.0, 0.2 * failures))

    async def _record(self, event: Mapping[str, Any]) -> None:
        record = Record(
            kind=RecordKind.AUDIT,
            actor="hub",
            object_type="audit-log",
            object_key=self.origin,
            **event,
        )
        if self.writer is not None:
            await self.writer.write(record)
        else:
            await asyncio.to_thread(self._insert, record.row())

    def _insert(self, row: dict[str, Any]) -> None:
        with self.engine.begin() as connection:
            connection.execute(RECORDS.insert(), [row])

    # ------------------------------------------------------------ start-up checks

    def _startup_events(self) -> list[dict[str, Any]]:
        """The records a start appends: key changes, the start itself (with the resume check),
        and a reconfiguration when the audit settings changed since the last start."""
        events: list[dict[str, Any]] = []
        # One starting process at a time: replicas starting together add a new key once.
        with writers_turn(self.engine), self.engine.begin() as connection:
            connection.execute(TAKE_TURN)
            known = {
                r.key_id: r
                for r in connection.execute(text("SELECT key_id, retired_at FROM audit_key")).all()
            }
            current = self.signers[0]
            if current.key_id not in known:
                previous = [k for k, r in known.items() if r.retired_at is None]
                connection.execute(
                    text(
                        "INSERT INTO audit_key (key_id, name, vkey, created_at) "
                        "VALUES (:key_id, :name, :vkey, :now)"
                    ),
                    {
                        "key_id": current.key_id,
                        "name": current.name,
                        "vkey": current.vkey,
                        "now": utcnow(),
                    },
                )
                for key_id in previous:
                    connection.execute(
                        text("UPDATE audit_key SET retired_at = :now WHERE key_id = :key_id"),
                        {"now": utcnow(), "key_id": key_id},
                    )
                handover = [s.key_id for s in self.signers[1:] if s.key_id in previous]
                events.append(
                    {
                        "action": "key-added",
                        "details": {
                            "key_id": current.key_id,
                            "vkey": current.vkey,
                            "previous_key_ids": sorted(previous),
                            # the retired keys that co-sign the checkpoint covering this record
                            "cosigned_by": handover,
                        },
                    }
                )
            last_start = connection.execute(
                select(RECORDS.c.details)
                .where(RECORDS.c.kind == RecordKind.AUDIT.value)
                .where(RECORDS.c.action == "start")
                .order_by(RECORDS.c.seq.desc())
                .limit(1)
            ).scalar()
        resume = self.check_resume()
        config = self.config.as_details()
        process = f"{socket.gethostname()}:{os.getpid()}"
        events.append(
            {"action": "start", "details": {"config": config, "resume": resume, "process": process}}
        )
        if not resume["consistent"]:
            log.critical("the stored audit tree does not match its last checkpoint: %s", resume)
            events.append({"action": "inconsistent", "details": resume})
        before = (last_start or {}).get("config") if isinstance(last_start, dict) else None
        if before is not None and before != config:
            changed = {k: [before.get(k), v] for k, v in config.items() if before.get(k) != v}
            events.append({"action": "reconfigure", "details": {"changes": changed}})
        return events

    def check_resume(self) -> dict[str, Any]:
        """Does the stored tree extend the last signed checkpoint? (consistency proof)"""
        with self.engine.connect() as connection:
            state = read_state(connection)
            last = connection.execute(
                text("SELECT size, root FROM audit_checkpoint ORDER BY id DESC LIMIT 1")
            ).first()
            if last is None:
                return {"size": state.size, "checkpoint": None, "consistent": True}
            size, root = int(last.size), bytes(last.root)
            nodes = self.store.nodes(connection)
            try:
                if size > state.size:
                    raise ValueError(f"the tree has {state.size} leaves, the checkpoint {size}")
                stored = merkle.root_at(size, nodes) if size else merkle.EMPTY_ROOT
                proof = merkle.consistency_proof(size, state.size, nodes) if size else []
                ok = stored == root and (
                    size == 0
                    or size == state.size
                    or merkle.verify_consistency(size, state.size, root, state.root, proof)
                )
                problem = None if ok else "the stored tree's root differs from the checkpoint's"
            except (LookupError, ValueError) as exc:
                ok, problem = False, str(exc)
        details: dict[str, Any] = {"size": state.size, "checkpoint": size, "consistent": ok}
        if problem:
            details["problem"] = problem
        return details

    # ------------------------------------------------------------ one pass

    def integrate(self, *, force_checkpoint: bool = False, now: float | None = None) -> PassResult:
        """Fold the records committed since the last pass into the tree; sign a checkpoint when
        one is due. Safe to call from any process at any time."""
        moment = time.time() if now is None else now
        # One integrating process at a time, decided before the reading and hashing: the others
        # skip the pass rather than hash the same records for nothing. A forced pass (start,
        # stop) waits for its turn: its checkpoint must cover this process's last records.
        with exclusive(
            self.engine, "audit-integrate", INTEGRATOR_LOCK, wait=force_checkpoint
        ) as mine:
            if not mine:
                return PassResult()
            try:
                result = self._pass(moment, force_checkpoint)
            except SeqReused as exc:
                if self.halted != str(exc):
                    log.error("audit integration stopped: %s", exc)
                self.halted = str(exc)
                return PassResult()
            if self.halted is not None:
                log.warning("audit integration resumed (it had stopped: %s)", self.halted)
                self.halted = None
            return result

    def _pass(self, moment: float, force_checkpoint: bool) -> PassResult:
        with self.engine.connect() as reader:
            tree = reader.execute(STATE).one()
            size, last_seq, gaps = int(tree.size), int(tree.last_seq), _gaps(tree.gaps)
            self._check_seqs(reader, tree, last_seq, gaps)
            rows = self._new_records(reader, last_seq, gaps)
            if not rows and not self._due(reader, size, moment, force_checkpoint, gaps):
                return PassResult(gaps=len(gaps))  # nothing to do: no lock taken
        # Hash outside the lock: it is the pass's only real work.
        hashed = [(int(r["seq"]), leaf_hash(r)) for r in rows]
        with writers_turn(self.engine), self.engine.begin() as connection:
            connection.execute(TAKE_TURN)
            locked = connection.execute(
                text("SELECT size, last_seq, gaps, frontier FROM audit_tree WHERE id = 1")
            ).one()
            if int(locked.size) != size or int(locked.last_seq) != last_seq:
                return PassResult()  # another process integrated meanwhile; next pass
            result = PassResult()
            if hashed:
                self._append(connection, size, locked.frontier, hashed, gaps, last_seq, moment)
                result.leaves = len(hashed)
            new_gaps, dropped = _expire(_gaps_after(gaps, last_seq, hashed, moment), moment)
            result.gaps, result.dropped_gaps = len(new_gaps), dropped
            if dropped:
                log.warning("audit: seqs %s never committed; treated as rolled back", dropped)
            if hashed or dropped or new_gaps != gaps:
                connection.execute(
                    text("UPDATE audit_tree SET gaps = :gaps WHERE id = 1"),
                    {"gaps": _dump_gaps(new_gaps)},
                )
            result.checkpoint = self._checkpoint_if_due(connection, moment, force_checkpoint)
        return result

    def _due(
        self,
        reader: Connection,
        size: int,
        moment: float,
        force: bool,
        gaps: list[list[float]],
    ) -> bool:
        """Without new records, is there still something to write: a checkpoint, a gap to drop?"""
        if any(moment - since >= GAP_SECONDS for _, _, since in gaps):
            return True
        last = reader.execute(
            text("SELECT size, time FROM audit_checkpoint ORDER BY id DESC LIMIT 1")
        ).first()
        if last is None:
            return size > 0 or force
        if int(last.size) >= size:
            return False
        return force or moment - _epoch(last.time) >= self.checkpoint_seconds

    def _check_seqs(
        self, reader: Connection, tree: Row[Any], last_seq: int, gaps: list[list[float]]
    ) -> None:
        """Raise SeqReused for a record at a seq the tree already gave out that is not the
        record of that seq's leaf (see the module docstring).

        Read with the tree's state in one statement (STATE): the newest record (a database that
        reuses seqs hands out the largest it holds plus one: looked at only when it is not newer
        than the tree), and the archived seqs, below which records are looked for with one index
        probe (normally none: they left with the archive, bar late leaves). Each record found is
        checked against its leaf once. Checking every record below `last_seq` is `lgsp audit
        verify`'s work, not a pass's.
        """
        newest, archived_seq = tree.newest, tree.archived_seq
        boundary = int(tree.archived_leaf or 0)
        if newest is not None and int(newest) <= last_seq:
            self._check_seq(reader, int(newest), last_seq, boundary, gaps)
        after = -1
        while archived_seq is not None:
            page = [
                int(row[0])
                for row in reader.execute(
                    select(RECORDS.c.seq)
                    .where(RECORDS.c.seq > after, RECORDS.c.seq <= int(archived_seq))
                    .order_by(RECORDS.c.seq)
                    .limit(100)
                )
            ]
            for seq in page:
                self._check_seq(reader, seq, last_seq, boundary, gaps)
            if len(page) < 100:
                break
            after = page[-1]

    def _check_seq(
        self, reader: Connection, seq: int, last_seq: int, boundary: int, gaps: list[list[float]]
    ) -> None:
        if seq in self._vetted or any(low <= seq <= high for low, high, _ in gaps):
            return
        self._vet(reader, seq, last_seq, boundary)
        if len(self._vetted) >= VETTED_LIMIT:
            self._vetted.clear()
        self._vetted.add(seq)

    def _vet(self, reader: Connection, seq: int, last_seq: int, boundary: int) -> None:
        """The record `seq` must be the one the tree holds at its leaf, a live one."""
        row = reader.execute(select(RECORDS).where(RECORDS.c.seq == seq)).mappings().first()
        if row is None:
            return
        index = leaf_index(reader, seq)
        what = f"record seq {seq} (id {row['id']})"
        stop = "integration stopped so that no proof names the wrong record; run lgsp audit verify"
        if index is None:
            raise SeqReused(
                f"{what} lies at or below the tree's last seq {last_seq} but is not in the tree "
                f"and not awaited: the seq was handed out after the tree moved past it; {stop}",
                seq,
            )
        if index < boundary:
            raise SeqReused(
                f"{what} has the seq of archived leaf {index}: the database handed out a seq "
                f"the log had already used; {stop}",
                seq,
            )
        if merkle.tile_nodes(partial(read_tile, reader))(0, index) != leaf_hash(dict(row)):
            raise SeqReused(
                f"{what} is not the record the tree holds at leaf {index} for that seq: the seq "
                f"was given to another record (or the record was altered); {stop}",
                seq,
            )

    def _new_records(
        self, reader: Connection, last_seq: int, gaps: list[list[float]]
    ) -> list[dict[str, Any]]:
        """Late records (filling gaps) first, then the ones after `last_seq`, in seq order."""
        late: list[dict[str, Any]] = []
        for low, high, _ in gaps:
            late += [
                dict(r)
                for r in reader.execute(
                    select(RECORDS)
                    .where(RECORDS.c.seq.between(int(low), int(high)))
                    .order_by(RECORDS.c.seq)
                ).mappings()
            ]
        fresh = [
            dict(r)
            for r in reader.execute(
                select(RECORDS)
                .where(RECORDS.c.seq > last_seq)
                .order_by(RECORDS.c.seq)
                .limit(PASS_LIMIT)
            ).mappings()
        ]
        return late + fresh

    def _append(
        self,
        connection: Connection,
        size: int,
        frontier_bytes: bytes,
        hashed: list[tuple[int, bytes]],
        gaps: list[list[float]],
        last_seq: int,
        moment: float,
    ) -> None:
        hashes = [h for _, h in hashed]
        updates = merkle.tile_updates(
            size, hashes, lambda level, idx: read_tile(connection, level, idx)
        )
        # The seq of each new leaf, beside its hash in the level-0 tiles.
        seqs = {idx: data for (level, idx), data in updates.items() if level == 0}
        first_tile = size // merkle.TILE_WIDTH
        head = _tile_seqs(connection, first_tile) if size % merkle.TILE_WIDTH else []
        numbers = head + [seq for seq, _ in hashed]
        for (level, idx), data in sorted(updates.items()):
            tile_seqs: list[int] | None = None
            if level == 0:
                start = (idx - first_tile) * merkle.TILE_WIDTH
                tile_seqs = numbers[start : start + len(data) // merkle.HASH_SIZE]
                assert idx in seqs
            connection.execute(
                text(
                    "INSERT INTO audit_tile (level, idx, hashes, seqs, min_seq, max_seq) "
                    "VALUES (:level, :idx, :hashes, :seqs, :min_seq, :max_seq) "
                    "ON CONFLICT (level, idx) DO UPDATE SET hashes = excluded.hashes, "
                    "seqs = excluded.seqs, min_seq = excluded.min_seq, max_seq = excluded.max_seq"
                ),
                {
                    "level": level,
                    "idx": idx,
                    "hashes": data,
                    "seqs": pack_seqs(tile_seqs) if tile_seqs is not None else None,
                    "min_seq": min(tile_seqs) if tile_seqs else None,
                    "max_seq": max(tile_seqs) if tile_seqs else None,
                },
            )
        frontier = merkle.Frontier.from_bytes(bytes(frontier_bytes)) if size else merkle.Frontier()
        if frontier.size != size:
            raise RuntimeError(f"the stored frontier has {frontier.size} leaves, the tree {size}")
        frontier.extend(hashes)
        connection.execute(
            text(
                "UPDATE audit_tree SET size = :size, last_seq = :last_seq, frontier = :frontier, "
                "updated_at = :now WHERE id = 1"
            ),
            {
                "size": frontier.size,
                "last_seq": max([last_seq, *(seq for seq, _ in hashed)]),
                "frontier": frontier.to_bytes(),
                "now": datetime.fromtimestamp(moment, UTC),
            },
        )

    def _checkpoint_if_due(self, connection: Connection, moment: float, force: bool) -> int | None:
        state = read_state(connection)
        last = connection.execute(
            text("SELECT size, time FROM audit_checkpoint ORDER BY id DESC LIMIT 1")
        ).first()
        if last is not None:
            if int(last.size) >= state.size:
                return None
            age = moment - _epoch(last.time)
            if not force and age < self.checkpoint_seconds:
                return None
        elif state.size == 0 and not force:
            return None
        signed_at = datetime.fromtimestamp(int(moment), UTC)
        checkpoint = Checkpoint(self.origin, state.size, state.root, signed_at)
        note = sign_note(checkpoint.body(), self._checkpoint_signers())
        connection.execute(
            text(
                "INSERT INTO audit_checkpoint (size, root, time, key_id, note) "
                "VALUES (:size, :root, :time, :key_id, :note)"
            ),
            {
                "size": state.size,
                "root": state.root,
                "time": signed_at,
                "key_id": self.signers[0].key_id,
                "note": note,
            },
        )
        return state.size

    def _checkpoint_signers(self) -> list[Signer]:
        """Every key in the key file: the current one, and the ones it replaced while they
        stay in the file. A verifier that trusts only an old key thus keeps verifying across a
        rotation and learns the new key from the `key-added` record the checkpoints cover,
        whichever replica signed first after the restart."""
        return list(self.signers)


def _tile_seqs(connection: Connection, idx: int) -> list[int]:
    data = connection.execute(
        text("SELECT seqs FROM audit_tile WHERE level = 0 AND idx = :idx"), {"idx": idx}
    ).scalar()
    return unpack_seqs(bytes(data)) if data else []


def _epoch(value: datetime | str) -> float:
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.timestamp()


def _gaps(value: Any) -> list[list[float]]:
    if isinstance(value, str):
        value = json.loads(value)
    return [list(g) for g in value or []]


def _dump_gaps(gaps: list[list[float]]) -> str:
    return json.dumps([[int(lo), int(hi), round(since, 3)] for lo, hi, since in gaps])


def _gaps_after(
    gaps: list[list[float]], last_seq: int, hashed: list[tuple[int, bytes]], moment: float
) -> list[list[float]]:
    """The seqs still missing below the new last seq, as [low, high, since] ranges."""
    seen = sorted(seq for seq, _ in hashed)
    out: list[list[float]] = []
    for low, high, since in gaps:
        start = int(low)
        for seq in seen:
            if start <= seq <= high:
                if seq > start:
                    out.append([start, seq - 1, since])
                start = seq + 1
        if start <= high:
            out.append([start, int(high), since])
    expected = last_seq + 1
    for seq in (s for s in seen if s > last_seq):
        if seq > expected:
            out.append([expected, seq - 1, moment])
        expected = seq + 1
    return out


def _expire(
    gaps: list[list[float]], moment: float
) -> tuple[list[list[float]], list[tuple[int, int]]]:
    keep = [g for g in gaps if moment - g[2] < GAP_SECONDS]
    dropped = [(int(g[0]), int(g[1])) for g in gaps if moment - g[2] >= GAP_SECONDS]
    return keep, dropped
