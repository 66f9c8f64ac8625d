"""The provable audit log at scale: records/s with group commit, subject search and inclusion
proofs over 10^7 records, each beside a baseline measured in the same run. Every timed row is
the hub's code as it is (no bench-side variant of it).

Usage: python -m bench.audit [--records 10000000] [--seconds 10] [--samples 1000] [--quick]
                             [--only write,search,proof,http] [--keep]

- write: records/s on PostgreSQL through AuditWriter.write (a COPY per batch, one commit) from
  256 coroutines per process (1 and 2 processes), without and with the integrator beside them
  (audit/log.py, as in every hub process: one process integrates at a time), against COPY of
  the same rows without the hub's writer (the database's ceiling). Each configuration writes
  into a fresh database for `--seconds`.
- search: over `--records` records (bench/audit_data.py generates them once into a cache dir,
  brings a cached dataset's indexes in line with the models, and the hub's integrator builds
  their tree): p50/p95/p99 of a subject's page of 100, newest first, for random subjects, cold
  and hot, against one record by primary key; and a data-subject report's first page with its
  proofs.
- proof: inclusion proofs through `audit.proofs.inclusion` (the API's code path, with its
  process-wide cache of full tiles), every proof verified, against the same proofs from tiles
  held in memory. `http`: search and proof through `lgsp serve`, against GET /healthz.

The result is printed and written to bench/results/audit-<UTC timestamp>.md (bench/README.md).
"""

from __future__ import annotations

import argparse
import contextlib
import random
import shutil
import signal
import sys
import tempfile
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType
from typing import Any

from sqlalchemy.engine import Engine

from bench import (
    audit_data,
    audit_load,
    audit_pg,
    audit_query,
    audit_tree,
    machine,
)
from bench.audit_query import Timing

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"


@dataclass(frozen=True)
class Options:
    records: int
    seconds: float
    samples: int
    parts: set[str]
    keep: bool


def parse_args(argv: list[str] | None = None) -> Options:
    parser = argparse.ArgumentParser(
        prog="python -m bench.audit",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--records", type=int, help="records searched and proven (10^7)")
    parser.add_argument("--seconds", type=float, help="length of each write run (10)")
    parser.add_argument("--samples", type=int, help="calls per timed series (1000)")
    parser.add_argument("--quick", action="store_true", help="10^5 records, 3 s, 200 samples")
    parser.add_argument(
        "--only",
        default="write,search,proof,http",
        help="parts to run: write, search, proof, http",
    )
    parser.add_argument("--keep", action="store_true", help="keep the writers' logs")
    args = parser.parse_args(argv)
    quick = args.quick
    parts = {p.strip() for p in args.only.split(",") if p.strip()}
    if not parts <= {"write", "search", "proof", "http"}:
        parser.error("--only takes write, search, proof and http")
    return Options(
        records=args.records or (100_000 if quick else 10_000_000),
        seconds=args.seconds or (3.0 if quick else 10.0),
        samples=args.samples or (200 if quick else 1000),
        parts=parts,
        keep=args.keep,
    )


def _say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def _ms(seconds: float) -> str:
    ms = seconds * 1000
    return f"{ms:.2f}" if ms < 10 else f"{ms:.1f}" if ms < 100 else f"{ms:,.0f}"


def _pcts(t: Timing) -> str:
    return f"{_ms(t.pct(0.5))} / {_ms(t.pct(0.95))} / {_ms(t.pct(0.99))} ms"


# ---------------------------------------------------------------- the parts


def run_write(options: Options, cluster: audit_pg.Cluster, tmp: Path) -> list[audit_load.Result]:
    from audit.notes import Signer

    _say("records/s with group commit")
    audit_load.prepare_template(cluster.base)
    skey = Signer.generate(audit_tree.ORIGIN).skey
    return [
        audit_load.measure(
            config,
            base=cluster.base,
            pg_pid=cluster.pid,
            seconds=options.seconds,
            skey=skey,
            tmp=tmp,
            say=_say,
        )
        for config in audit_load.CONFIGS
    ]


@contextlib.contextmanager
def _engine(url: str) -> Iterator[Engine]:
    from gateway.db import make_engine

    engine = make_engine(url, pool_size=4)
    try:
        yield engine
    finally:
        engine.dispose()


def _cold(cluster: audit_pg.Cluster, url: str) -> None:
    """Empty shared buffers (restart), drop the database's files from the page cache, and empty
    the proofs' process-wide tile cache (audit/proofs.py), as in a hub process just started."""
    from audit import proofs

    with proofs._tiles_lock:
        proofs._tiles.clear()
    cluster.restart()
    evicted = audit_pg.evict(url, cluster.data)
    _say(f"    (cold: server restarted, {evicted / 2**30:.1f} GiB evicted from the page cache)")


def _series(
    cluster: audit_pg.Cluster,
    url: str,
    label: str,
    items: Sequence[Any],
    make: Callable[[Engine], Callable[[Any], int]],
) -> tuple[Timing, Timing]:
    """The same calls cold, then hot."""
    out = []
    for state in ("cold", "hot"):
        if state == "cold":
            _cold(cluster, url)
        with _engine(url) as engine:
            with engine.connect() as connection:  # a first connect is not a query's cost
                connection.exec_driver_sql("SELECT 1")
            timing = audit_query.timed(f"{label}, {state}", items, make(engine))
        _say(f"  {timing.label}: p50/p95/p99 {_pcts(timing)}, {timing.rows:.1f} rows a call")
        out.append(timing)
    return out[0], out[1]


def run_search(options: Options, cluster: audit_pg.Cluster, url: str) -> dict[str, Timing]:
    _say(f"subject search over {options.records:,} records")
    n = options.samples
    citizens = audit_query.subjects("citizen", n, seed=11)
    frequent = audit_query.subjects("frequent", n, seed=12)
    rng = random.Random(13)
    seqs = [rng.randint(1, options.records) for _ in range(n)]
    series: list[tuple[str, str, Sequence[Any], Callable[[Engine], Callable[[Any], int]]]] = [
        ("pk", "one record by primary key", seqs, audit_query.by_key_call),
        ("citizen", "subject search, any citizen", citizens, audit_query.search_call),
        (
            "frequent",
            "subject search, subject drawn like the records",
            frequent,
            audit_query.search_call,
        ),
    ]
    if "proof" in options.parts:
        series.append(
            (
                "report",
                "subject report page (100 accesses + proofs), drawn like the records",
                frequent[: max(20, n // 5)],
                audit_query.report_call,
            )
        )
    out: dict[str, Timing] = {}
    for key, label, items, make in series:
        out[f"{key}-cold"], out[f"{key}-hot"] = _series(cluster, url, label, items, make)
    return out


def _record_ids(options: Options, url: str, seed: int = 21) -> list[str]:
    with _engine(url) as engine:
        return audit_query.record_ids(engine, options.records, options.samples, seed=seed)


def run_http(options: Options, url: str, tmp: Path) -> dict[str, Timing]:
    from bench import audit_http

    _say("the same over HTTP (lgsp serve, one worker)")
    identifiers = audit_query.subjects("frequent", options.samples, seed=12)
    out = audit_http.measure(
        url, tmp, venv=ROOT / ".venv", identifiers=identifiers, record_ids=_record_ids(options, url)
    )
    for timing in out.values():
        _say(f"  {timing.label}: p50/p95/p99 {_pcts(timing)}")
    return out


def run_proof(options: Options, cluster: audit_pg.Cluster, url: str) -> dict[str, object]:
    _say(f"inclusion proofs at {options.records:,} leaves")
    ids = _record_ids(options, url)
    found: list[object] = []
    cold, hot = _series(
        cluster,
        url,
        "inclusion proof",
        ids,
        lambda engine: audit_query.proof_call(engine, found),
    )
    # Hot repeats the cold calls, so their level-0 tiles are in the hub's tile cache by then;
    # other records on the same hot server and cache read their level-0 tile once more.
    others = _record_ids(options, url, seed=22)
    with _engine(url) as engine:
        fresh = audit_query.timed(
            "inclusion proof, hot server and tile cache, other records (read for the first time)",
            others,
            audit_query.proof_call(engine, found),
        )
    _say(f"  {fresh.label}: p50/p95/p99 {_pcts(fresh)}")
    with _engine(url) as engine:
        failed = audit_query.verify(engine, found)
        memory, held = audit_query.memory_proof_call(engine, found[: len(ids)])
        baseline = audit_query.timed("same proofs, tiles in memory", found[: len(ids)], memory)
    _say(f"  {len(found):,} proofs checked, {failed} failed; in memory {_pcts(baseline)}")
    return {
        "cold": cold,
        "hot": hot,
        "fresh": fresh,
        "memory": baseline,
        "verified": len(found),
        "failed": failed,
        "held": held,
    }


# ---------------------------------------------------------------- the report


def render(
    options: Options,
    stamp: datetime,
    writes: list[audit_load.Result],
    dataset: audit_data.Dataset | None,
    tree: tuple[float, int] | None,
    search: dict[str, Timing],
    proof: dict[str, object],
    http: dict[str, Timing],
) -> str:
    from bench.audit_report import render as render_report

    return render_report(
        options=options,
        stamp=stamp,
        writes=writes,
        dataset=dataset,
        tree=tree,
        search=search,
        proof=proof,
        http=http,
        machine=machine.describe(),
    )


def run(options: Options) -> int:
    stamp = datetime.now(UTC)
    tmp = Path(tempfile.mkdtemp(prefix="lgsp-bench-audit-"))
    writes: list[audit_load.Result] = []
    dataset, tree = None, None
    search: dict[str, Timing] = {}
    proof: dict[str, object] = {}
    http: dict[str, Timing] = {}
    try:
        with audit_pg.running() as cluster:
            if "write" in options.parts:
                writes = run_write(options, cluster, tmp)
            if options.parts & {"search", "proof", "http"}:
                dataset = audit_data.generate(cluster.base, options.records, say=_say)
                if "proof" in options.parts:
                    tree = audit_tree.build(dataset.url, options.records, say=_say)
                search = (
                    run_search(options, cluster, dataset.url) if "search" in options.parts else {}
                )
                if "proof" in options.parts:
                    proof = run_proof(options, cluster, dataset.url)
                if "http" in options.parts:
                    try:
                        http = run_http(options, dataset.url, tmp)
                    except (RuntimeError, OSError) as exc:  # the other parts still count
                        _say(f"over HTTP: not measured: {exc}")
    finally:
        if options.keep or any(w.error for w in writes):
            _say(f"logs kept in {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    text = render(options, stamp, writes, dataset, tree, search, proof, http)
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = RESULTS / f"audit-{stamp:%Y%m%d-%H%M%S}.md"
    out.write_text(text, encoding="utf-8")
    print(text, flush=True)
    _say(f"written to {out.relative_to(ROOT)}")
    return 1 if any(w.error for w in writes) or proof.get("failed") else 0


def _terminate(signum: int, _: FrameType | None) -> None:
    raise SystemExit(128 + signum)  # unwinds through every `finally`, which stops the children


def main(argv: list[str] | None = None) -> int:
    signal.signal(signal.SIGTERM, _terminate)
    signal.signal(signal.SIGHUP, _terminate)
    try:
        return run(parse_args(argv))
    except KeyboardInterrupt:
        _say("interrupted; every process started was stopped")
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
