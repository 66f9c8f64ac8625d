"""Subject search and inclusion proofs over the generated records (bench rows 2 and 3).

Every timed call goes through the hub's own code, in this process, on a warm connection pool:
- subject search: `audit.queries.search` with the subject's keyed hash, a page of 100, newest
  first (what `GET /audit/exchanges?subject=…` runs), and the first page of 100 accesses of a
  data-subject report with their inclusion proofs (`audit.reports.page` and `accesses`, as
  `GET /audit/subjects/{id}` builds its JSON, without the HTTP layer);
- inclusion proof: `audit.proofs.inclusion(engine, record_id)` (what
  `GET /audit/proofs/inclusion?record=…` runs: id → seq → leaf index → proof against the
  latest checkpoint, full tiles from the process-wide cache once read), each proof then
  checked with `merkle.verify_inclusion` against the checkpoint's root and a leaf hash
  recomputed from the record (outside the timing).

Cold means the server was just restarted (empty shared buffers) and the database's files were
dropped from the OS page cache (and bench/audit.py empties the proofs' tile cache); hot is the
same calls again right after.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from sqlalchemy import text
from sqlalchemy.engine import Engine
from sqlmodel import Session

from bench import audit_rows, procs

T = TypeVar("T")


@dataclass(frozen=True)
class Timing:
    label: str
    samples: list[float]  # seconds, one per call
    rows: float = 0.0  # mean rows (records or proof hashes) per call
    busy: float = 0.0  # cores the whole machine kept busy meanwhile (other agents included)

    def pct(self, q: float) -> float:
        ordered = sorted(self.samples)
        if not ordered:
            return 0.0
        return ordered[min(len(ordered) - 1, max(0, round(q * len(ordered)) - 1))]


def timed(label: str, items: Sequence[T], call: Callable[[T], int]) -> Timing:
    """Call once per item; each call's wall time, and the mean of what the calls returned."""
    samples, counted = [], 0
    busy, started = procs.machine_busy_seconds(), time.perf_counter()
    for item in items:
        began = time.perf_counter()
        counted += call(item)
        samples.append(time.perf_counter() - began)
    cores = (procs.machine_busy_seconds() - busy) / (time.perf_counter() - started)
    return Timing(label, samples, counted / max(len(items), 1), cores)


# ---------------------------------------------------------------- subjects


def subjects(kind: str, count: int, seed: int) -> list[str]:
    """Personal ids to look up: `citizen` any person (uniform over the 10^6 ranks, most with a
    few records, some with none), `frequent` drawn like the records' subjects (skewed)."""
    rng = random.Random(seed)
    ranks = (
        [rng.randrange(audit_rows.SUBJECTS) for _ in range(count)]
        if kind == "citizen"
        else [audit_rows.zipf_rank(rng) for _ in range(count)]
    )
    return [audit_rows.personal_id(r) for r in ranks]


def search_call(engine: Engine) -> Callable[[str], int]:
    from audit.queries import ExchangeFilter, search

    def call(identifier: str) -> int:
        where = ExchangeFilter(subject_hash=audit_rows.subject_hash(identifier))
        with Session(engine) as session:
            rows, _ = search(session, where=where, limit=100, cursor=None)
        return len(rows)

    return call


def report_call(engine: Engine) -> Callable[[str], int]:
    """The JSON report's first page as `gateway/audit_api.py` builds it (100 accesses)."""
    from audit import reports

    def call(identifier: str) -> int:
        where = reports.subject_filter(audit_rows.subject_hash(identifier), since=None, until=None)
        with Session(engine) as session:
            checkpoint = reports.latest_checkpoint(session)
            rows, _ = reports.page(session, where=where, after=0, limit=100)
            items = reports.accesses(
                session, rows, checkpoint=checkpoint, names=reports.Names(session)
            )
        return len(items)

    return call


def by_key_call(engine: Engine) -> Callable[[int], int]:
    """Baseline: one record by primary key through the same ORM session."""
    from audit.records import ExchangeRecord

    def call(seq: int) -> int:
        with Session(engine) as session:
            return 1 if session.get(ExchangeRecord, seq) is not None else 0

    return call


# ---------------------------------------------------------------- proofs


def record_ids(engine: Engine, records: int, count: int, seed: int) -> list[str]:
    rng = random.Random(seed)
    seqs = [rng.randint(1, records) for _ in range(count)]
    with engine.connect() as connection:
        rows = connection.execute(
            text("SELECT id FROM exchange_record WHERE seq = ANY(:seqs)"), {"seqs": seqs}
        ).all()
    ids = [str(r[0]) for r in rows]
    rng.shuffle(ids)
    return ids


def proof_call(engine: Engine, checked: list[Any]) -> Callable[[str], int]:
    from audit import proofs

    def call(record_id: str) -> int:
        found = proofs.inclusion(engine, record_id)
        checked.append(found)
        return len(found.proof)

    return call


def _columns(row: Any) -> dict[str, Any]:
    return {c.name: getattr(row, c.name) for c in row.__table__.columns}


def verify(engine: Engine, found: list[Any]) -> int:
    """Check every proof against its checkpoint's root, with the leaf hash recomputed from the
    record itself; the number that failed."""
    from audit import merkle
    from audit.canonical import leaf_hash
    from audit.records import ExchangeRecord

    failed = 0
    with Session(engine) as session:
        for item in found:
            row = session.get(ExchangeRecord, item.seq)
            leaf = leaf_hash(_columns(row)) if row is not None else b""
            ok = leaf == item.leaf_hash and merkle.verify_inclusion(
                leaf, item.leaf_index, item.checkpoint.size, item.proof, item.checkpoint.root
            )
            failed += 0 if ok else 1
    return failed


def memory_proof_call(engine: Engine, found: list[Any]) -> tuple[Callable[[Any], int], int]:
    """Baseline: the same proofs from tiles already in memory (no database round trip): what
    the proof itself costs. Returns the call and the bytes of tiles held."""
    from audit import merkle
    from audit.tree import read_tile

    tiles: dict[tuple[int, int], bytes] = {}
    with engine.connect() as connection:

        def load(level: int, idx: int) -> bytes:
            if (level, idx) not in tiles:
                tiles[(level, idx)] = read_tile(connection, level, idx)
            return tiles[(level, idx)]

        nodes = merkle.tile_nodes(load)
        for item in found:  # load every tile these proofs touch
            merkle.inclusion_proof(item.leaf_index, item.checkpoint.size, nodes)

    def call(item: Any) -> int:
        in_memory = merkle.tile_nodes(lambda level, idx: tiles[(level, idx)])
        proof = merkle.inclusion_proof(item.leaf_index, item.checkpoint.size, in_memory)
        return len(proof)

    return call, sum(len(t) for t in tiles.values())
