"""One writing process of the audit benchmark: records for `--seconds`, then a JSON line.

Run by bench/audit.py, once or several times at once (`python -m bench.audit_write …`):
- `--mode writer`: `--writers` coroutines, each awaiting the hub's `AuditWriter.write` (as it
  is: a COPY per batch on PostgreSQL) of one realistic exchange row at a time (as the data
  plane does before answering), and with `--integrate` the
  process runs the integrator beside them as a hub process does (`AuditLog.start`, then its
  loop). At the end it waits until the tree covers every record (the catch-up), then stops
  the log;
- `--mode copy`: the ceiling of the database, the same rows through COPY on `--connections`
  connections, one commit per `--batch` rows, without the hub's writer (no batching of
  callers, no wake-ups, no integrator: what PostgreSQL takes when fed flat out).

Each process says `ready` on stdout once set up, then starts at the wall-clock time the parent
writes on its stdin (all at once), so the parent's samples of the table and the tree cover the
same window.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import sys
import time
from typing import Any

import psycopg

from audit.writer import COLUMNS, AuditWriter
from bench.audit_rows import ExchangeRows

COPY_STATEMENT = f"COPY exchange_record ({', '.join(COLUMNS)}) FROM STDIN"


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


async def _ready_then_start() -> float:
    """Say so, then wait for the parent's start time (every process starts at once)."""
    print("ready", flush=True)
    line = await asyncio.to_thread(sys.stdin.readline)
    start_at = float(line) if line.strip() else time.time()
    await asyncio.sleep(max(0.0, start_at - time.time()))
    return start_at


def _tree(url: str) -> tuple[int, int]:
    """(tree size, records committed) right now."""
    with psycopg.connect(url) as conn:
        size = conn.execute("SELECT size FROM audit_tree WHERE id = 1").fetchone()
        records = conn.execute("SELECT count(*) FROM exchange_record").fetchone()
    return int(size[0] if size else 0), int(records[0] if records else 0)


async def write(args: argparse.Namespace) -> dict[str, Any]:
    from gateway.db import make_engine

    engine = make_engine(args.url, pool_size=4)
    writer = AuditWriter(engine, batch_max=args.batch)
    audit_log: Any = None
    hashing = {"hashed": 0, "appended": 0}
    if args.integrate:
        from audit.log import AuditLog
        from audit.notes import Signer

        audit_log = AuditLog(
            engine,
            signers=[Signer.from_skey(args.skey)],
            origin="bench.lgsp.example/audit",
            checkpoint_seconds=5.0,
            writer=writer,
        )
        _count_hashing(audit_log, hashing)
        await audit_log.start()
    rows = ExchangeRows(seed=args.seed)
    await writer.write(rows.next())  # connect before the clock starts
    latencies: list[float] = []
    deadline = await _ready_then_start() + args.seconds
    # If the log takes a hint that records were committed, give it, as the hub would.
    wake = getattr(audit_log, "appended", None)

    async def one_writer() -> None:
        while time.time() < deadline:
            row = rows.next()
            began = time.perf_counter()
            await writer.write(row)
            latencies.append(time.perf_counter() - began)
            if wake is not None:
                wake()

    cpu, began = _cpu(), time.time()
    before = writer.records
    await asyncio.gather(*(one_writer() for _ in range(args.writers)))
    wall = time.time() - began
    written, batches = writer.records - before, writer.batches
    cpu_used = _cpu() - cpu
    catch_up = None
    if audit_log is not None:
        # The tree must cover every record: the other processes' too, written in the same window.
        stopped = time.time()
        while True:
            size, records = await asyncio.to_thread(_tree, args.url)
            if size >= records:
                break
            if time.time() - stopped > args.catch_up_limit:
                break
            await asyncio.sleep(0.05)
        catch_up = time.time() - stopped
        await audit_log.stop("bench")
    await writer.aclose()
    engine.dispose()
    latencies.sort()
    return {
        "records": written,
        "batches": batches,
        "wall": wall,
        "cpu": cpu_used,
        "p50": latencies[len(latencies) // 2] if latencies else 0.0,
        "p99": latencies[int(len(latencies) * 0.99)] if latencies else 0.0,
        "catch_up": catch_up,
        **hashing,
    }


def _count_hashing(audit_log: Any, counts: dict[str, int]) -> None:
    """Count the records this process's passes read and hash, and the leaves they append: a
    pass that finds the tree moved under it (another process integrated first) discards its
    work, so with several processes `hashed` exceeds `appended`."""
    read, integrate = audit_log._new_records, audit_log.integrate

    def counting_read(*args: Any, **kwargs: Any) -> Any:
        rows = read(*args, **kwargs)
        counts["hashed"] += len(rows)
        return rows

    def counting_integrate(*args: Any, **kwargs: Any) -> Any:
        result = integrate(*args, **kwargs)
        counts["appended"] += result.leaves
        return result

    audit_log._new_records = counting_read
    audit_log.integrate = counting_integrate


async def copy(args: argparse.Namespace) -> dict[str, Any]:
    """The same rows through COPY, `--batch` rows per commit, on several connections."""
    rows = ExchangeRows(seed=args.seed)
    statement = COPY_STATEMENT
    connections = [await psycopg.AsyncConnection.connect(args.url) for _ in range(args.connections)]
    done = [0]

    async def one_connection(conn: psycopg.AsyncConnection[Any]) -> None:
        while time.time() < deadline:
            async with conn.cursor() as cursor, cursor.copy(statement) as out:
                for _ in range(args.batch):
                    row = rows.next()
                    await out.write_row(list(row.row().values()))
            await conn.commit()
            done[0] += args.batch

    deadline = await _ready_then_start() + args.seconds
    cpu, began = _cpu(), time.time()
    await asyncio.gather(*(one_connection(conn) for conn in connections))
    wall = time.time() - began
    for conn in connections:
        await conn.close()
    return {
        "records": done[0],
        "batches": done[0] // args.batch,
        "wall": wall,
        "cpu": _cpu() - cpu,
        "p50": 0.0,
        "p99": 0.0,
        "catch_up": None,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.audit_write", description=__doc__)
    parser.add_argument("--url", required=True)
    parser.add_argument("--mode", choices=["writer", "copy"], default="writer")
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--writers", type=int, default=256, help="coroutines (writer mode)")
    parser.add_argument("--connections", type=int, default=4, help="connections (copy mode)")
    parser.add_argument("--batch", type=int, default=512, help="writer batch_max / COPY rows")
    parser.add_argument("--integrate", action="store_true", help="run the integrator too")
    parser.add_argument("--skey", default="", help="the checkpoint signer's key (integrate)")
    parser.add_argument("--catch-up-limit", type=float, default=120.0)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)
    run = write if args.mode == "writer" else copy
    result = asyncio.run(run(args))
    print(json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
