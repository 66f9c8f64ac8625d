"""Where the Merkle tree over the exchange records lives: its state, tiles, checkpoints, keys.

The records themselves stay in `exchange_record` (audit/records.py). These tables are what the
integrator (audit/log.py) derives from them; every one of them can be recomputed from the
records, and the verifier trusts none of them without a signed checkpoint to check them against.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, Column, Index, Integer, LargeBinary, SmallInteger, Text
from sqlmodel import Field, SQLModel

from registry.types import NEVER_REUSED, utcnow


class AuditTree(SQLModel, table=True):
    """The tree's current state: one row (id 1), locked by each integration pass."""

    __tablename__ = "audit_tree"
    id: int = Field(default=1, primary_key=True)
    size: int = Field(default=0, sa_column=Column(BigInteger, nullable=False))
    # The highest record seq integrated, and the seqs below it not seen yet (PostgreSQL hands
    # out sequence values before the transactions that took them commit): [[low, high, since]].
    last_seq: int = Field(default=0, sa_column=Column(BigInteger, nullable=False))
    gaps: list[Any] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    # The roots of the tree's perfect subtrees, largest first: the root derives from them.
    frontier: bytes = Field(default=b"", sa_column=Column(LargeBinary, nullable=False))
    updated_at: datetime = Field(default_factory=utcnow)


class AuditTile(SQLModel, table=True):
    """Hashes of the tree, 256 a row (C2SP tlog-tiles layout, height 8).

    Tile (level L, idx N) holds the hashes of the perfect subtrees of height 8·L numbered
    256·N … 256·N+255; level 0 holds the leaf hashes, and with them the seq of each leaf's record
    (big-endian int64s), so a record is found in the tree without counting rows.
    """

    __tablename__ = "audit_tile"
    __table_args__ = (Index("ix_audit_tile_min_seq", "level", "min_seq"),)
    level: int = Field(sa_column=Column(SmallInteger, primary_key=True, autoincrement=False))
    idx: int = Field(sa_column=Column(BigInteger, primary_key=True, autoincrement=False))
    hashes: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    seqs: bytes | None = Field(default=None, sa_column=Column(LargeBinary, nullable=True))
    min_seq: int | None = Field(default=None, sa_column=Column(BigInteger, nullable=True))
    max_seq: int | None = Field(default=None, sa_column=Column(BigInteger, nullable=True))


class AuditCheckpoint(SQLModel, table=True):
    """A signed checkpoint (C2SP signed note): append-only, like the records."""

    __tablename__ = "audit_checkpoint"
    __table_args__ = NEVER_REUSED
    id: int | None = Field(default=None, primary_key=True)
    size: int = Field(sa_column=Column(BigInteger, nullable=False, index=True))
    root: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    time: datetime = Field(default_factory=utcnow, index=True)
    key_id: str = Field(max_length=8)
    note: str = Field(sa_column=Column(Text, nullable=False))


class AuditKey(SQLModel, table=True):
    """A checkpoint-signing public key the hub has used (private keys never enter the database)."""

    __tablename__ = "audit_key"
    key_id: str = Field(primary_key=True, max_length=8)
    name: str = Field(max_length=200)
    vkey: str = Field(max_length=400)
    created_at: datetime = Field(default_factory=utcnow)
    retired_at: datetime | None = None


class AuditArchive(SQLModel, table=True):
    """A range of leaves whose records moved to an archive file (retention)."""

    __tablename__ = "audit_archive"
    __table_args__ = NEVER_REUSED
    id: int | None = Field(default=None, primary_key=True)
    first_leaf: int = Field(sa_column=Column(BigInteger, nullable=False))
    end_leaf: int = Field(sa_column=Column(BigInteger, nullable=False))  # exclusive
    min_seq: int = Field(sa_column=Column(BigInteger, nullable=False))
    max_seq: int = Field(sa_column=Column(BigInteger, nullable=False))
    checkpoint_size: int = Field(sa_column=Column(BigInteger, nullable=False))
    path: str = Field(max_length=1000)
    sha256: str = Field(max_length=64)
    records: int = Field(sa_column=Column(Integer, nullable=False))
    created_at: datetime = Field(default_factory=utcnow)
