"""The result as Markdown: conditions, one row per target, CPU shares, the goal's verdict."""

from __future__ import annotations

from dataclasses import dataclass, field

from bench.wrk import Load

GOAL_RPS = 3_000
GOAL_SHARE = 0.12


@dataclass(frozen=True)
class Row:
    target: str
    load: Load | None  # None: the target could not be measured
    cpu: dict[str, float] = field(default_factory=dict)  # process -> CPU seconds in the run
    note: str = ""


def _ms(value: float) -> str:
    if value < 1:
        return f"{value * 1000:.0f} µs"
    return f"{value:.2f} ms" if value < 1000 else f"{value / 1000:.2f} s"


def _share(load: Load, nginx: Load | None) -> str:
    return f"{100 * load.rps / nginx.rps:.1f} %" if nginx and nginx.rps else "-"


def _errors(load: Load) -> str:
    if not load.errors:
        return "0"
    return f"{load.errors} ({load.non_2xx} non-2xx, {load.socket_errors} socket)"


def _cores(row: Row, name: str) -> str:
    if row.load is None or name not in row.cpu:
        return "-"
    return f"{row.cpu[name] / row.load.seconds:.2f}"


def verdict(hub: Load | None, nginx: Load | None) -> str:
    if hub is None or nginx is None:
        return "not measured"
    share = hub.rps / nginx.rps if nginx.rps else 0.0
    met = hub.rps >= GOAL_RPS and share >= GOAL_SHARE and hub.errors == 0
    return (
        f"{'met' if met else 'not met'} "
        f"(hub {hub.rps:,.0f} req/s, {100 * share:.1f} % of nginx, {hub.errors} errors)"
    )


def render(*, heading: list[str], rows: list[Row], footer: list[str]) -> str:
    nginx = next((r.load for r in rows if r.target.startswith("nginx")), None)
    hub = next((r.load for r in rows if r.target.startswith("hub")), None)
    lines = [*heading, ""]
    lines += [
        "| target | req/s | p50 | p99 | errors | % of nginx |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for row in rows:
        if row.load is None:
            lines.append(f"| {row.target} | - | - | - | - | {row.note or 'not measured'} |")
            continue
        load = row.load
        lines.append(
            f"| {row.target} | {load.rps:,.0f} | {_ms(load.p50_ms)} | {_ms(load.p99_ms)} "
            f"| {_errors(load)} | {_share(load, nginx)} |"
        )
    names = ["wrk", "nginx", "hub"]
    names += ["postgresql"] if any("postgresql" in row.cpu for row in rows) else []
    names += ["other", "machine"]
    lines += [
        "",
        "CPU used during each measured run, in cores: each process tree (with the kernel's work "
        "on its behalf, loopback traffic included); other = the rest of the machine; "
        "machine = all.",
        "",
        "| target | " + " | ".join(names) + " |",
        "|---|" + "---:|" * len(names),
    ]
    lines += [
        f"| {row.target} | " + " | ".join(_cores(row, name) for name in names) + " |"
        for row in rows
    ]
    busiest = max(
        (row.cpu.get("other", 0.0) / row.load.seconds for row in rows if row.load), default=0.0
    )
    if busiest > 0.25:
        footer = [
            f"warning: other processes took up to {busiest:.2f} cores during a measured run; "
            "every row is lower than it would be on a quiet machine",
            *footer,
        ]
    lines += [
        "",
        *footer,
        "",
        f"goal: >= {GOAL_RPS:,} req/s and >= {100 * GOAL_SHARE:.0f} % of "
        f"nginx: {verdict(hub, nginx)}",
    ]
    return "\n".join(lines) + "\n"
