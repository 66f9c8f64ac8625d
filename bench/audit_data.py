"""Generate N realistic exchange records (10^7 by default) into the audit benchmark's PostgreSQL.

Usage: python -m bench.audit_data [--records 10000000] [--replace] [--no-tree] [--drop]

The database `audit_<N>` is made with the hub's migrations (gateway.db.migrate), then filled by
PostgreSQL itself: one INSERT … SELECT over generate_series per million records (the rows of
`bench/audit_rows.py`: UUIDv7 ids, 30 consumers, 40 services, statuses, latencies, payload
digests, subjects HMAC'd from 12-digit personal ids with a Zipf-like skew, times over two years
in record order). The secondary indexes of `exchange_record` are dropped for the load and made
again from their own definitions afterwards (the usual bulk-load order; the schema ends as the
migrations left it), then VACUUM ANALYZE. How long each step took is kept in the database
(`bench_audit_meta`), so later runs reuse the data and still report its generation time.
Then the hub's integrator builds the Merkle tree over them (bench/audit_tree.py) unless --no-tree.

A dataset made by an older revision of the migrations keeps its old indexes: a migration edited
in place (same revision id) is not run again. So every reuse compares `exchange_record`'s
secondary indexes with the models' (`audit.records.ExchangeRecord.__table__.indexes`, what the
migrations make): drops the ones the models no longer have, creates the missing ones from the
models' definitions, says how long it took and keeps that in `bench_audit_meta` (`aligned`).
The records and the tree stay as they are (the tree hashes the records, not the indexes).
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

import psycopg

from bench import audit_pg, audit_rows

CHUNK = 1_000_000

Say = Callable[[str], None]


def _say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


@dataclass(frozen=True)
class Dataset:
    url: str
    records: int
    end: datetime  # the newest record's time (about)
    timings: dict[str, float]  # step -> seconds
    aligned: str = ""  # what align_indexes last changed on this dataset, and when

    @property
    def generation_seconds(self) -> float:
        return sum(v for k, v in self.timings.items() if not k.startswith("tree"))


def name(records: int) -> str:
    return f"audit_{records}"


def migrate(url: str) -> None:
    from gateway.db import make_engine
    from gateway.db import migrate as upgrade

    engine = make_engine(url, pool_size=1)
    try:
        upgrade(engine)
    finally:
        engine.dispose()


def read_meta(url: str) -> dict[str, str]:
    with psycopg.connect(url) as conn:
        exists = conn.execute("SELECT to_regclass('bench_audit_meta')").fetchone()
        if exists is None or exists[0] is None:
            return {}
        return dict(conn.execute("SELECT key, value FROM bench_audit_meta").fetchall())


def write_meta(url: str, values: dict[str, str]) -> None:
    with psycopg.connect(url) as conn:
        conn.execute(
            "CREATE TABLE IF NOT EXISTS bench_audit_meta (key text PRIMARY KEY, value text)"
        )
        for key, value in values.items():
            conn.execute(
                "INSERT INTO bench_audit_meta VALUES (%s, %s) "
                "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                [key, value],
            )


def _dataset(url: str, meta: dict[str, str]) -> Dataset:
    return Dataset(
        url=url,
        records=int(meta["records"]),
        end=datetime.fromisoformat(meta["end"]),
        timings={
            k[len("seconds:") :]: float(v) for k, v in meta.items() if k.startswith("seconds:")
        },
        aligned=meta.get("aligned", ""),
    )


def _secondary_indexes(conn: psycopg.Connection[tuple[object, ...]]) -> list[tuple[str, str]]:
    """(name, CREATE INDEX statement) of exchange_record's indexes that back no constraint."""
    rows = conn.execute(
        """SELECT i.relname, pg_get_indexdef(i.oid)
           FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid
           WHERE x.indrelid = 'exchange_record'::regclass
             AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = x.indexrelid)"""
    ).fetchall()
    return [(str(n), str(d)) for n, d in rows]


def _model_indexes() -> dict[str, str]:
    """(name -> CREATE INDEX statement) of exchange_record's indexes in the models."""
    from sqlalchemy.dialects import postgresql
    from sqlalchemy.schema import CreateIndex

    from audit.records import ExchangeRecord

    dialect = postgresql.dialect()  # type: ignore[no-untyped-call]  # SQLAlchemy leaves it untyped
    return {
        str(index.name): str(CreateIndex(index).compile(dialect=dialect))
        for index in ExchangeRecord.__table__.indexes  # type: ignore[attr-defined]
    }


def align_indexes(url: str, *, say: Say = _say) -> str:
    """Bring exchange_record's secondary indexes in line with the models (by name): drop the
    extra, create the missing, then ANALYZE. What changed and how long it took ("" if none)."""
    wanted = _model_indexes()
    with psycopg.connect(url, autocommit=True) as conn:
        present = dict(_secondary_indexes(conn))
        extra = sorted(set(present) - set(wanted))
        missing = sorted(set(wanted) - set(present))
        if not extra and not missing:
            return ""
        say(f"  indexes: dropping {', '.join(extra) or 'none'}; creating {', '.join(missing)}")
        started = time.perf_counter()
        for index in extra:
            conn.execute(f'DROP INDEX "{index}"')  # a name from the catalogue
        for index in missing:
            step = time.perf_counter()
            conn.execute(wanted[index])  # compiled from the models
            say(f"  index {index}: {time.perf_counter() - step:,.1f} s")
        conn.execute("ANALYZE exchange_record")
        seconds = time.perf_counter() - started
    done = (
        f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC: dropped {', '.join(extra) or 'none'}, "
        f"created {', '.join(missing) or 'none'} in {seconds:,.0f} s"
    )
    say(f"  indexes aligned with the models in {seconds:,.1f} s")
    write_meta(url, {"aligned": done})
    return done


def generate(base: str, records: int, *, replace: bool = False, say: Say = _say) -> Dataset:
    """The dataset of `records` records, generated now unless a complete one is there."""
    db = name(records)
    if audit_pg.exists(base, db) and not replace:
        url = audit_pg.database_url(base, db)
        meta = read_meta(url)
        if meta.get("complete") == "yes":
            migrate(url)  # a newer migration (the tree's tables) applies to old data too
            align_indexes(url, say=say)  # a migration edited in place is not run again
            meta = read_meta(url)
            say(
                f"reusing {records:,} records in database {db} (generated in "
                f"{_dataset(url, meta).generation_seconds:,.0f} s)"
            )
            return _dataset(url, meta)
        say(f"database {db} is incomplete; generating it again")
    url = audit_pg.create(base, db, replace=True)
    timings: dict[str, float] = {}
    started = time.perf_counter()
    migrate(url)
    timings["migrate"] = time.perf_counter() - started
    end = datetime.now(UTC).replace(microsecond=0)
    ipad, opad = audit_rows.hmac_pads()
    statement = audit_rows.generate_sql()
    with psycopg.connect(url, autocommit=True) as conn:
        indexes = _secondary_indexes(conn)
        for index, _ in indexes:
            conn.execute(f'DROP INDEX "{index}"')
        started = time.perf_counter()
        for first in range(1, records + 1, CHUNK):
            last = min(first + CHUNK - 1, records)
            chunk_started = time.perf_counter()
            conn.execute(
                statement,  # built from our constants only
                {
                    "first": first,
                    "last": last,
                    "total": records,
                    "end": end,
                    "ipad": ipad,
                    "opad": opad,
                },
            )
            spent = time.perf_counter() - chunk_started
            say(f"  records {first:,}…{last:,}: {(last - first + 1) / spent:,.0f} records/s")
        timings["insert"] = time.perf_counter() - started
        started = time.perf_counter()
        for index, definition in indexes:
            step = time.perf_counter()
            conn.execute(definition)  # the catalogue's own text
            say(f"  index {index}: {time.perf_counter() - step:,.1f} s")
        timings["indexes"] = time.perf_counter() - started
        started = time.perf_counter()
        conn.execute("VACUUM ANALYZE exchange_record")
        timings["vacuum"] = time.perf_counter() - started
        size = conn.execute("SELECT pg_database_size(current_database())").fetchone()
    meta = {
        "records": str(records),
        "end": end.isoformat(),
        "bytes": str(size[0] if size else 0),
        "complete": "yes",
    } | {f"seconds:{k}": f"{v:.3f}" for k, v in timings.items()}
    write_meta(url, meta)
    dataset = _dataset(url, meta)
    say(
        f"generated {records:,} records in {dataset.generation_seconds:,.0f} s "
        f"({', '.join(f'{k} {v:,.0f} s' for k, v in timings.items())})"
    )
    return dataset


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.audit_data",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--records", type=int, default=10_000_000)
    parser.add_argument("--replace", action="store_true", help="generate again even if present")
    parser.add_argument("--no-tree", action="store_true", help="do not build the Merkle tree")
    parser.add_argument("--drop", action="store_true", help=f"remove the cache ({audit_pg.CACHE})")
    args = parser.parse_args(argv)
    if args.drop:
        audit_pg.drop_cache()
        _say(f"removed {audit_pg.CACHE}")
        return 0
    from bench import audit_tree

    with audit_pg.running() as cluster:
        dataset = generate(cluster.base, args.records, replace=args.replace)
        if not args.no_tree:
            audit_tree.build(dataset.url, args.records, say=_say)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
