"""Proofs from the stored tree: a record's inclusion in a checkpoint, two checkpoints' consistency.

Everything here reads; the tiles it reads are written by audit/log.py. Hashes are raw bytes here
and base64 at the HTTP edge and in bundles.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select, text
from sqlalchemy.engine import Connection, Engine

from audit import merkle
from audit.canonical import leaf_hash
from audit.errors import LogInconsistent, ProofNotYet, ProofRefused
from audit.records import ExchangeRecord
from audit.tree import leaf_index, read_state, read_tile


@dataclass(frozen=True, slots=True)
class StoredCheckpoint:
    id: int
    size: int
    root: bytes
    time: datetime
    key_id: str
    note: str


@dataclass(frozen=True, slots=True)
class Inclusion:
    record_id: str
    seq: int
    leaf_index: int
    leaf_hash: bytes
    proof: list[bytes]
    checkpoint: StoredCheckpoint


# Full tiles never change (the tree only grows), so every proof in the process shares them: a
# hot proof then reads only the partial tiles at the tree's right edge. Partial tiles are read
# each time. (The verifier reads the database itself and never goes through this cache.)
TILE_CACHE_SIZE = 4096  # 8 KiB each: 32 MiB at most
_tiles: OrderedDict[tuple[str, int, int], bytes] = OrderedDict()
_tiles_lock = threading.Lock()


def _cached_reader(connection: Connection) -> merkle.TileReader:
    database = connection.engine.url.render_as_string(hide_password=True)

    def read(level: int, idx: int) -> bytes:
        key = (database, level, idx)
        with _tiles_lock:
            data = _tiles.get(key)
            if data is not None:
                _tiles.move_to_end(key)
                return data
        data = read_tile(connection, level, idx)
        if len(data) == merkle.TILE_BYTES:
            with _tiles_lock:
                _tiles[key] = data
                if len(_tiles) > TILE_CACHE_SIZE:
                    _tiles.popitem(last=False)
        return data

    return read


_CHECKPOINT = "SELECT id, size, root, time, key_id, note FROM audit_checkpoint"


def _checkpoint(row: object) -> StoredCheckpoint:
    r = row  # a Row: id, size, root, time, key_id, note
    time = r.time  # type: ignore[attr-defined]
    if isinstance(time, str):
        time = datetime.fromisoformat(time)
    return StoredCheckpoint(
        id=int(r.id),  # type: ignore[attr-defined]
        size=int(r.size),  # type: ignore[attr-defined]
        root=bytes(r.root),  # type: ignore[attr-defined]
        time=time,
        key_id=r.key_id,  # type: ignore[attr-defined]
        note=r.note,  # type: ignore[attr-defined]
    )


def latest_checkpoint(connection: Connection) -> StoredCheckpoint | None:
    row = connection.execute(text(_CHECKPOINT + " ORDER BY id DESC LIMIT 1")).first()
    return _checkpoint(row) if row is not None else None


def checkpoint_of_size(connection: Connection, size: int) -> StoredCheckpoint | None:
    row = connection.execute(
        text(_CHECKPOINT + " WHERE size = :size ORDER BY id LIMIT 1"), {"size": size}
    ).first()
    return _checkpoint(row) if row is not None else None


def checkpoints(
    connection: Connection, *, before_id: int | None, limit: int
) -> list[StoredCheckpoint]:
    """A page of checkpoints, newest first."""
    where = " WHERE id < :before" if before_id is not None else ""
    rows = connection.execute(
        text(_CHECKPOINT + where + " ORDER BY id DESC LIMIT :limit"),
        {"before": before_id, "limit": limit},
    ).all()
    return [_checkpoint(r) for r in rows]


def _against(connection: Connection, size: int | None) -> StoredCheckpoint:
    checkpoint = (
        latest_checkpoint(connection) if size is None else checkpoint_of_size(connection, size)
    )
    if checkpoint is None:
        if size is None:
            raise ProofNotYet("the log has no signed checkpoint yet; retry in a few seconds")
        raise ProofRefused(404, f"no checkpoint of size {size}")
    return checkpoint


def inclusion(engine: Engine, record_id: str, *, size: int | None = None) -> Inclusion:
    """The proof that record `record_id` is in the checkpoint of `size` (default: the latest)."""
    records = ExchangeRecord.__table__  # type: ignore[attr-defined]
    with engine.connect() as connection:
        record = (
            connection.execute(select(records).where(records.c.id == record_id)).mappings().first()
        )
        seq = None if record is None else record["seq"]
        if record is None or seq is None:
            raise ProofRefused(
                404,
                f"no exchange record {record_id} in the live log (an archived record's proof "
                "is in its archive file)",
            )
        checkpoint = _against(connection, size)
        [found] = inclusions(connection, [int(seq)], checkpoint)
        if found is None:
            raise ProofNotYet(
                f"record {record_id} is not in the checkpoint of size {checkpoint.size} yet; "
                "retry in a few seconds"
            )
        index, leaf, proof = found
        if leaf_hash(dict(record)) != leaf:
            # Never a proof of another record: a seq handed out twice, or a record altered.
            raise LogInconsistent(
                f"record {record_id} is not the record the tree holds at leaf {index} for its "
                f"seq {seq}: the log is inconsistent (run lgsp audit verify)",
            )
        return Inclusion(record_id, int(seq), index, leaf, proof, checkpoint)


def inclusions(
    connection: Connection, seqs: Iterable[int], checkpoint: StoredCheckpoint
) -> list[tuple[int, bytes, list[bytes]] | None]:
    """(leaf index, leaf hash, proof) of each record seq against `checkpoint`; None for a record
    the checkpoint does not cover yet. One tile cache serves them all."""
    nodes = merkle.tile_nodes(_cached_reader(connection))
    out: list[tuple[int, bytes, list[bytes]] | None] = []
    for seq in seqs:
        index = leaf_index(connection, seq)
        if index is None or index >= checkpoint.size:
            out.append(None)
            continue
        out.append((index, nodes(0, index), merkle.inclusion_proof(index, checkpoint.size, nodes)))
    return out


def consistency(engine: Engine, first: int, second: int) -> tuple[list[bytes], bytes, bytes]:
    """The consistency proof from the tree of `first` leaves to that of `second`, and both
    roots."""
    with engine.connect() as connection:
        state = read_state(connection)
        if not 0 < first <= second:
            raise ProofRefused(422, "sizes must satisfy 0 < from <= to")
        if second > state.size:
            raise ProofRefused(422, f"the tree has {state.size} leaves, fewer than {second}")
        nodes = merkle.tile_nodes(_cached_reader(connection))
        proof = merkle.consistency_proof(first, second, nodes) if first < second else []
        return proof, merkle.root_at(first, nodes), merkle.root_at(second, nodes)
