"""The audit benchmark's result as Markdown: conditions, one table of figures beside their
baselines and goals, then where the write runs spent their CPU."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from bench import audit_pg
from bench.audit_data import Dataset
from bench.audit_load import Result
from bench.audit_query import Timing

GOAL_RECORDS = 10_000
GOAL_SEARCH_P95 = 0.050
GOAL_PROOF_P99 = 0.010
GOAL_ROW = "AuditWriter + integrator, 2 processes"


def _ms(seconds: float) -> str:
    ms = seconds * 1000
    return f"{ms:.2f}" if ms < 10 else f"{ms:.1f}" if ms < 100 else f"{ms:,.0f}"


def pcts(t: Timing) -> str:
    return f"{_ms(t.pct(0.5))} / {_ms(t.pct(0.95))} / {_ms(t.pct(0.99))} ms"


def _met(ok: bool) -> str:
    return "met" if ok else "**not met**"


def _write_rows(writes: list[Result]) -> list[str]:
    copy = next((w for w in writes if w.config.mode == "copy"), None)
    base = f"{copy.rate:,.0f} (COPY, same rows, 4 connections, 512 a commit)" if copy else "-"
    lines = []
    for w in writes:
        if w.config.mode == "copy":
            continue
        c = w.config
        label = f"records/s, {c.label} × {c.writers} writers"
        if w.error:
            lines.append(f"| {label} | failed: {w.error} | {base} | |")
            continue
        figure = f"{w.rate:,.0f} committed"
        if c.integrate:
            figure += (
                f"; {w.leaf_rate:,.0f} leaves/s integrated; lag ≤ {w.max_lag:,} records "
                f"(~{w.max_lag_seconds:.1f} s); caught up {w.catch_up or 0:.1f} s after the stop"
            )
        goal = ""
        if c.label == GOAL_ROW:
            goal = f"≥ {GOAL_RECORDS:,}/s: {_met(min(w.rate, w.leaf_rate) >= GOAL_RECORDS)}"
        lines.append(f"| {label} | {figure} | {base} | {goal} |")
    return lines


def _search_rows(search: dict[str, Timing]) -> list[str]:
    lines = []
    for state in ("cold", "hot"):
        pk = search.get(f"pk-{state}")
        base = f"{pcts(pk)} (one record by primary key, {state})" if pk else "-"
        for key in ("citizen", "frequent", "report"):
            t = search.get(f"{key}-{state}")
            if t is None:
                continue
            goal = (
                f"p95 < 50 ms: {_met(t.pct(0.95) < GOAL_SEARCH_P95)}"
                if key != "report"
                else "(a report in seconds)"
            )
            lines.append(
                f"| {t.label} (p50 / p95 / p99; {t.rows:.1f} rows a call; machine "
                f"{t.busy:.1f} cores busy) | {pcts(t)} | {base} | {goal} |"
            )
    return lines


def _proof_rows(proof: dict[str, Any]) -> list[str]:
    memory: Timing | None = proof.get("memory")
    base = f"{pcts(memory)} (same proofs from tiles in memory)" if memory else "-"
    lines = []
    for state in ("cold", "hot", "fresh"):
        t: Timing | None = proof.get(state)
        if t is None:
            continue
        lines.append(
            f"| {t.label} (p50 / p95 / p99; {t.rows:.0f} hashes; machine "
            f"{t.busy:.1f} cores busy) | {pcts(t)} "
            f"| {base} | p99 < 10 ms: {_met(t.pct(0.99) < GOAL_PROOF_P99)} |"
        )
    return lines


def _http_rows(http: dict[str, Timing]) -> list[str]:
    health = http.get("health")
    base = f"{pcts(health)} ({health.label})" if health else "-"
    lines = []
    for key, goal in (("search", "p95 < 50 ms"), ("proof", "p99 < 10 ms")):
        t = http.get(key)
        if t is None:
            continue
        ok = t.pct(0.95) < GOAL_SEARCH_P95 if key == "search" else t.pct(0.99) < GOAL_PROOF_P99
        lines.append(
            f"| over HTTP: {t.label} (p50 / p95 / p99; machine {t.busy:.1f} cores busy) "
            f"| {pcts(t)} | {base} | {goal}: {_met(ok)} |"
        )
    return lines


def _cpu_table(writes: list[Result]) -> list[str]:
    lines = [
        "CPU during each write run, in cores (CPU seconds over wall seconds): the writing "
        "processes (client: rows, writer, integrator), PostgreSQL, and the whole machine "
        "(other agents included); and per record committed. Records hashed per leaf: how many "
        "records the integrators' passes read and hashed for each leaf they appended (a pass "
        "that finds the tree moved on by another process throws its work away).",
        "",
        "| configuration | records/s | write p50 / p99 | client | PostgreSQL | machine "
        "| client µs/record | PostgreSQL µs/record | records hashed per leaf |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for w in writes:
        if w.error or not w.rate:
            continue
        cpu = w.cpu
        per = 1e6 / w.rate
        latency = f"{_ms(w.p50)} / {_ms(w.p99)} ms" if w.p50 else "-"
        lines.append(
            f"| {w.config.label} | {w.rate:,.0f} | {latency} | {cpu['client']:.2f} "
            f"| {cpu['postgresql']:.2f} | {cpu['machine']:.2f} | {cpu['client'] * per:,.0f} "
            f"| {cpu['postgresql'] * per:,.0f} "
            f"| {w.hashed / w.appended if w.appended else 0:.2f} |"
        )
    return lines


def render(
    *,
    options: Any,
    stamp: datetime,
    writes: list[Result],
    dataset: Dataset | None,
    tree: tuple[float, int] | None,
    search: dict[str, Timing],
    proof: dict[str, Any],
    http: dict[str, Timing],
    machine: str,
) -> str:
    settings = ", ".join(f"{k} {v}" for k, v in audit_pg.SETTINGS.items())
    head = [
        f"# Audit log benchmark, {stamp:%Y-%m-%d %H:%M} UTC",
        "",
        f"- machine: {machine}",
        f"- PostgreSQL 16 (pgserver), {settings}; fsync and synchronous_commit on (a commit "
        "is on disk before the writer's caller resumes)",
    ]
    if writes:
        head.append(
            f"- writes: {options.seconds:g} s per configuration into a fresh database; realistic "
            "exchange rows (bench/audit_rows.py); AuditWriter as in the hub (a COPY and one "
            "commit per batch); the integrator is audit/log.py's AuditLog in each writing "
            "process (started and looping as in the hub; one process integrates at a time)"
        )
    if dataset is not None:
        steps = ", ".join(f"{k} {v:,.0f} s" for k, v in dataset.timings.items())
        head.append(
            f"- data: {dataset.records:,} records generated by bench/audit_data.py in "
            f"{dataset.generation_seconds:,.0f} s ({steps}); 10^6 subjects, Zipf-like skew, "
            "30 consumers, 40 services, two years"
        )
        if dataset.aligned:
            head.append(
                "- indexes of the cached data brought in line with the models (bench/audit_data.py "
                f"align_indexes): {dataset.aligned}"
            )
    if tree is not None:
        seconds, leaves = tree
        head.append(
            f"- tree: {leaves:,} leaves integrated by AuditLog.integrate in {seconds:,.0f} s "
            f"({leaves / seconds:,.0f} leaves/s, one process), checkpoint signed over all"
        )
    if search or proof:
        head.append(
            f"- timed series: {options.samples:,} calls each (the report: fewer), one at a time "
            "on a warm pool; cold = server restarted and the database's files evicted from the "
            "page cache, hot = the same calls again"
        )
    table = [
        "| measure | result | baseline (same run) | goal |",
        "|---|---|---|---|",
        *_write_rows(writes),
        *_search_rows(search),
        *_proof_rows(proof),
        *_http_rows(http),
    ]
    foot: list[str] = []
    if proof:
        foot.append(
            f"proofs: {proof['verified']:,} verified against their checkpoint's root with the "
            f"leaf hash recomputed from the record: {proof['failed']} failed"
        )
    body = [*head, "", *table, ""]
    if writes:
        body += [*_cpu_table(writes), ""]
    return "\n".join(body + foot) + "\n"
