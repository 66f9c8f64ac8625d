"""Records/s into PostgreSQL with group commit, with and without the integrator (bench row 1).

Each configuration gets a fresh database cloned from a migrated template, its writing processes
(`python -m bench.audit_write`, each in its own process group) start together when all are
ready, and this process samples the table and the tree twice a second meanwhile: records
committed, leaves integrated, and the gap between them (the integration lag).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import psycopg

from bench import audit_data, audit_pg, procs

TEMPLATE = "audit_write_template"
TICKS = os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True)
class Config:
    label: str
    mode: str = "writer"  # writer | copy
    processes: int = 1
    writers: int = 256
    integrate: bool = False


@dataclass
class Result:
    config: Config
    records: int = 0
    leaves: int = 0  # integrated during the window
    wall: float = 0.0
    max_lag: int = 0  # records committed but not yet leaves, at the worst sample
    max_lag_seconds: float = 0.0  # that lag over the commit rate
    catch_up: float | None = None  # seconds after the writers stopped until the tree covered all
    p50: float = 0.0
    p99: float = 0.0
    cpu: dict[str, float] = field(default_factory=dict)  # client, postgresql, machine
    hashed: int = 0  # records read and hashed by the integrators' passes (whole run)
    appended: int = 0  # leaves those passes appended
    error: str | None = None

    @property
    def rate(self) -> float:
        return self.records / self.wall if self.wall else 0.0

    @property
    def leaf_rate(self) -> float:
        return self.leaves / self.wall if self.wall else 0.0


def server_cpu_seconds(pid: int) -> float:
    """CPU seconds of the server: its live processes, and the backends that have exited (the
    postmaster reaps them, so their time is in its children's counters)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    reaped = (int(fields[13]) + int(fields[14])) / TICKS  # cutime, cstime
    return procs.tree_cpu_seconds(pid) + reaped


def prepare_template(base: str) -> None:
    """A migrated, empty database that each configuration's database is cloned from."""
    url = audit_pg.create(base, TEMPLATE, replace=True)
    audit_data.migrate(url)


def _sample(url: str) -> tuple[int, int]:
    """(records committed, tree size): max(seq) counts records (no gaps in a bench run)."""
    with psycopg.connect(url) as conn:
        row = conn.execute(
            "SELECT (SELECT coalesce(max(seq), 0) FROM exchange_record), "
            "(SELECT size FROM audit_tree WHERE id = 1)"
        ).fetchone()
    assert row is not None
    return int(row[0]), int(row[1] or 0)


@contextlib.contextmanager
def _workers(argv: list[list[str]], logs: list[Path]) -> Iterator[list[subprocess.Popen[str]]]:
    """Start the writing processes one after the other, each once the previous is ready: two
    AuditLog.start() at the same moment on a fresh database both insert the signing key
    (audit/log.py `_startup_events`) and one fails on the duplicate; see bench/README.md."""
    started: list[subprocess.Popen[str]] = []
    try:
        for args, log in zip(argv, logs, strict=True):
            with log.open("w") as err:
                process = subprocess.Popen(
                    args,
                    stdin=subprocess.PIPE,
                    stdout=subprocess.PIPE,
                    stderr=err,
                    text=True,
                    start_new_session=True,
                )
            started.append(process)
            assert process.stdout is not None
            if process.stdout.readline().strip() != "ready":
                raise RuntimeError(f"a writer did not start:\n{procs.tail(log)}")
        yield started
    finally:
        for process in started:
            procs.stop_group(process, grace=5)


def measure(
    config: Config,
    *,
    base: str,
    pg_pid: int,
    seconds: float,
    skey: str,
    tmp: Path,
    say: Callable[[str], None],
) -> Result:
    name = "audit_write_" + re.sub(r"\W+", "_", config.label).strip("_").lower()[:40]
    with psycopg.connect(base, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}" TEMPLATE "{TEMPLATE}"')
    url = audit_pg.database_url(base, name)
    result = Result(config)
    argv = [
        [
            sys.executable,
            "-m",
            "bench.audit_write",
            "--url",
            url,
            "--mode",
            config.mode,
            "--seconds",
            str(seconds),
            "--writers",
            str(config.writers),
            "--skey",
            skey,
            "--seed",
            str(index + 1),
            *(["--integrate"] if config.integrate else []),
        ]
        for index in range(config.processes)
    ]
    logs = [tmp / f"{name}-{i}.log" for i in range(config.processes)]
    say(f"  {config.label}: {config.processes} process(es), {seconds:g} s")
    try:
        with _workers(argv, logs) as workers:
            start_at = time.time() + 0.5
            for worker in workers:
                assert worker.stdin is not None
                worker.stdin.write(f"{start_at}\n")
                worker.stdin.flush()
            time.sleep(max(0.0, start_at - time.time()))
            cpu0 = {
                "postgresql": server_cpu_seconds(pg_pid),
                "machine": procs.machine_busy_seconds(),
            }
            first = _sample(url)
            samples = [first]
            while time.time() < start_at + seconds:
                time.sleep(0.5)
                samples.append(_sample(url))
            last = samples[-1]
            cpu1 = {
                "postgresql": server_cpu_seconds(pg_pid),
                "machine": procs.machine_busy_seconds(),
            }
            window = time.time() - start_at
            outputs = []
            for worker, log in zip(workers, logs, strict=True):
                assert worker.stdout is not None
                line = worker.stdout.readline()
                if not line.strip():
                    raise RuntimeError(f"a writer failed:\n{procs.tail(log)}")
                outputs.append(json.loads(line))
    except RuntimeError as exc:
        result.error = str(exc).splitlines()[0]
        say(f"    failed: {exc}")
        return result
    finally:
        with psycopg.connect(base, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    result.wall = max(o["wall"] for o in outputs)
    result.records = sum(o["records"] for o in outputs)
    result.leaves = last[1] - first[1]
    lags = [committed - size for committed, size in samples] if config.integrate else [0]
    result.max_lag = max(lags)
    result.max_lag_seconds = result.max_lag / result.rate if result.rate else 0.0
    catch = [o["catch_up"] for o in outputs if o["catch_up"] is not None]
    result.catch_up = max(catch) if catch else None
    result.hashed = sum(o.get("hashed", 0) for o in outputs)
    result.appended = sum(o.get("appended", 0) for o in outputs)
    result.p50 = max(o["p50"] for o in outputs)
    result.p99 = max(o["p99"] for o in outputs)
    result.cpu = {k: (cpu1[k] - cpu0[k]) / window for k in cpu0}
    # The writers' own CPU over their window (every thread: the integrator's too).
    result.cpu["client"] = sum(o["cpu"] for o in outputs) / result.wall
    say(
        f"    {result.rate:,.0f} records/s committed"
        + (
            f", {result.leaf_rate:,.0f} leaves/s integrated, max lag {result.max_lag:,} "
            f"records, caught up {result.catch_up or 0:.1f} s after"
            if config.integrate
            else ""
        )
    )
    return result


CONFIGS = [
    Config("COPY, no hub writer (database ceiling)", mode="copy"),
    Config("AuditWriter, 1 process"),
    Config("AuditWriter, 2 processes", processes=2),
    Config("AuditWriter + integrator, 1 process", integrate=True),
    Config("AuditWriter + integrator, 2 processes", processes=2, integrate=True),
]
