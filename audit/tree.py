"""Reading the stored tree: tiles, the leaf of a record, proofs against a checkpoint.

The integrator (audit/log.py) writes the tiles; everything here only reads them, on any replica.
"""

from __future__ import annotations

import bisect
import struct
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import text
from sqlalchemy.engine import Connection, Engine, Row

from audit import merkle

SEQ = struct.Struct(">q")


def pack_seqs(seqs: list[int]) -> bytes:
    return struct.pack(f">{len(seqs)}q", *seqs)


def unpack_seqs(data: bytes) -> list[int]:
    return list(struct.unpack(f">{len(data) // SEQ.size}q", data))


@dataclass(frozen=True, slots=True)
class TreeState:
    size: int
    root: bytes
    last_seq: int


class TreeStore:
    """The tiles of the tree, read through one connection at a time (a short transaction)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    # Each method opens its own connection; `reader(connection)` serves several calls at once.

    def state(self) -> TreeState:
        with self.engine.connect() as connection:
            return read_state(connection)

    def read_tile(self, level: int, idx: int) -> bytes:
        with self.engine.connect() as connection:
            return read_tile(connection, level, idx)

    def nodes(self, connection: Connection | None = None) -> merkle.NodeSource:
        """A node source over the stored tiles (a tile read once per call chain)."""
        if connection is not None:
            return merkle.tile_nodes(lambda level, idx: read_tile(connection, level, idx))
        return merkle.tile_nodes(self.read_tile)

    def leaf_index(self, seq: int, connection: Connection | None = None) -> int | None:
        """The leaf of the record `seq`, or None while it is not in the tree yet."""
        if connection is None:
            with self.engine.connect() as own:
                return leaf_index(own, seq)
        return leaf_index(connection, seq)

    def seqs(self, start: int, end: int) -> list[int]:
        """The record seq of each leaf in [start, end)."""
        return [s for s, _ in self.leaves(start, end)]

    def leaf_hashes(self, start: int, end: int) -> list[bytes]:
        return [h for _, h in self.leaves(start, end)]

    def leaves(self, start: int, end: int) -> list[tuple[int, bytes]]:
        """(seq, leaf hash) of each leaf in [start, end) that its tile holds."""
        if end <= start:
            return []
        with self.engine.connect() as connection:
            tiles = level0_tiles(
                connection, start // merkle.TILE_WIDTH, (end - 1) // merkle.TILE_WIDTH
            )
        return [(s, h or b"") for s, h in leaf_entries(tiles, start, end) if s is not None]


def read_state(connection: Connection) -> TreeState:
    """The tree's size and root; the root comes from the stored frontier (the roots of its
    perfect subtrees), so it is never stored apart from what it is computed from."""
    row = connection.execute(
        text("SELECT size, frontier, last_seq FROM audit_tree WHERE id = 1")
    ).one()
    frontier = merkle.Frontier.from_bytes(bytes(row.frontier)) if row.frontier else None
    root = frontier.root() if frontier is not None else merkle.EMPTY_ROOT
    return TreeState(size=int(row.size), root=root, last_seq=int(row.last_seq))


def read_tile(connection: Connection, level: int, idx: int) -> bytes:
    data = connection.execute(
        text("SELECT hashes FROM audit_tile WHERE level = :level AND idx = :idx"),
        {"level": level, "idx": idx},
    ).scalar()
    return bytes(data) if data is not None else b""


def level0_tiles(connection: Connection, first: int, last: int) -> dict[int, tuple[bytes, bytes]]:
    """The level-0 tiles `first`..`last` that exist: index → (leaf hashes, packed seqs)."""
    rows = connection.execute(
        text(
            "SELECT idx, hashes, seqs FROM audit_tile WHERE level = 0 "
            "AND idx BETWEEN :first AND :last"
        ),
        {"first": first, "last": last},
    ).all()
    return {int(r.idx): (bytes(r.hashes), bytes(r.seqs or b"")) for r in rows}


def leaf_entries(
    tiles: Mapping[int, tuple[bytes, bytes]], start: int, end: int
) -> list[tuple[int | None, bytes | None]]:
    """(seq, leaf hash) of leaves [start, end) from `tiles`; None where an entry is missing."""
    out: list[tuple[int | None, bytes | None]] = []
    unpacked: dict[int, list[int]] = {}
    for index in range(start, end):
        idx, offset = divmod(index, merkle.TILE_WIDTH)
        tile = tiles.get(idx)
        if tile is None:
            out.append((None, None))
            continue
        hashes, packed = tile
        seqs = unpacked.get(idx)
        if seqs is None:
            seqs = unpacked[idx] = unpack_seqs(packed)
        chunk = hashes[offset * merkle.HASH_SIZE : (offset + 1) * merkle.HASH_SIZE]
        out.append(
            (
                seqs[offset] if offset < len(seqs) else None,
                chunk if len(chunk) == merkle.HASH_SIZE else None,
            )
        )
    return out


def leaf_index(connection: Connection, seq: int) -> int | None:
    """Find the level-0 tile holding `seq`: tiles run in seq order, bar late leaves."""
    candidates = connection.execute(
        text(
            "SELECT idx, seqs, max_seq FROM audit_tile WHERE level = 0 AND min_seq <= :seq "
            "ORDER BY min_seq DESC LIMIT 8"
        ),
        {"seq": seq},
    ).all()
    found = _search(candidates, seq)
    if found is None and len(candidates) == 8:
        # A late leaf (its transaction committed after later ones) sits in a tile further on.
        found = _search(
            connection.execute(
                text(
                    "SELECT idx, seqs, max_seq FROM audit_tile WHERE level = 0 "
                    "AND min_seq <= :seq AND max_seq >= :seq"
                ),
                {"seq": seq},
            ).all(),
            seq,
        )
    return found


def _search(rows: Sequence[Row[Any]], seq: int) -> int | None:
    for row in rows:
        idx, max_seq = int(row.idx), row.max_seq
        if max_seq is None or max_seq < seq:
            continue
        numbers = unpack_seqs(bytes(row.seqs))
        sorted_prefix = numbers == sorted(numbers)
        if sorted_prefix:
            at = bisect.bisect_left(numbers, seq)
            if at < len(numbers) and numbers[at] == seq:
                return idx * merkle.TILE_WIDTH + at
        elif seq in numbers:
            return idx * merkle.TILE_WIDTH + numbers.index(seq)
    return None
