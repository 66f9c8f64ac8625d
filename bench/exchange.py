"""Throughput and latency of one exchange: direct to the provider, through nginx, through the hub.

Run it as `bench/run` (see bench/README.md). Every process it starts (nginx, the hub, PostgreSQL)
runs in its own process group and is stopped on exit, Ctrl-C or error.
"""

from __future__ import annotations

import argparse
import contextlib
import shutil
import signal
import sys
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType

from bench import hub, machine, nginx, payloads, procs, report, wrk

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"

DIRECT = "direct to upstream"
PROXY = "nginx proxy"
HUB = "hub, full pipeline"
HUB_BEARER = "hub, full pipeline, bearer token"
HUB_AGAIN = "hub, full pipeline, API key again"
LIMITED = "hub, rate-limited grant"


@dataclass(frozen=True)
class Options:
    duration: float
    warmup: float
    connections: int
    threads: int
    workers: int
    database: str
    nginx_workers: str
    venv: Path
    keep: bool


def parse_args(argv: list[str] | None = None) -> Options:
    parser = argparse.ArgumentParser(prog="bench/run", description=__doc__)
    parser.add_argument("--duration", type=float, default=10, help="seconds per target")
    parser.add_argument("--warmup", type=float, default=3, help="seconds of warm-up per target")
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--threads", type=int, default=2, help="wrk threads")
    parser.add_argument("--workers", type=int, default=2, help="hub worker processes")
    parser.add_argument("--database", choices=["sqlite", "postgresql"], default="sqlite")
    parser.add_argument("--nginx-workers", default="auto", help="nginx worker_processes")
    parser.add_argument("--venv", type=Path, default=ROOT / ".venv")
    parser.add_argument("--keep", action="store_true", help="keep the temp dir (logs, database)")
    args = parser.parse_args(argv)
    return Options(
        duration=args.duration,
        warmup=args.warmup,
        connections=args.connections,
        threads=args.threads,
        workers=args.workers,
        database=args.database,
        nginx_workers=args.nginx_workers,
        venv=args.venv,
        keep=args.keep,
    )


def _say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def measure(
    options: Options,
    *,
    target: str,
    url: str,
    lua: Path,
    watched: dict[str, int],
    before_run: Callable[[], None] | None = None,
) -> report.Row:
    """A warm-up run, then the measured run with the CPU time of each watched process tree."""
    _say(f"  {target}: warm-up {options.warmup:g} s, then {options.duration:g} s on {url}")
    if options.warmup > 0:
        wrk.run(
            url,
            lua,
            connections=options.connections,
            threads=options.threads,
            seconds=options.warmup,
        )
    if before_run is not None:
        before_run()
    start = {name: procs.tree_cpu_seconds(pid) for name, pid in watched.items()}
    busy = procs.machine_busy_seconds()
    load = wrk.run(
        url,
        lua,
        connections=options.connections,
        threads=options.threads,
        seconds=options.duration,
    )
    cpu = {name: procs.tree_cpu_seconds(pid) - start[name] for name, pid in watched.items()}
    cpu["wrk"] = load.cpu_seconds
    cpu["machine"] = procs.machine_busy_seconds() - busy
    cpu["other"] = cpu["machine"] - sum(cpu[name] for name in [*watched, "wrk"])
    _say(f"    {load.rps:,.0f} req/s, p50 {load.p50_ms:.2f} ms, p99 {load.p99_ms:.2f} ms")
    return report.Row(target=target, load=load, cpu=cpu)


@contextlib.contextmanager
def database(options: Options, tmp: Path) -> Iterator[tuple[str, int | None]]:
    """The hub's database URL, and the server's pid when there is a server."""
    if options.database == "postgresql":
        _say("starting PostgreSQL (pgserver)")
        with hub.postgresql(tmp) as (url, pid):
            yield url, pid
    else:
        yield f"sqlite:///{tmp / 'hub.db'}", None


def bench_hub(
    options: Options, tmp: Path, *, upstream: nginx.Nginx, footer: list[str]
) -> list[report.Row]:
    """The hub rows: start, provision, check by hand, measure with the API key, count the audit
    records; then the same exchange with an OAuth2 access token (Authorization: Bearer), with the
    key again (what drifts over the run), and by a consumer whose grant has a rate limit far
    above the load (each call pays for the shared counter's statement), in the same run."""
    with database(options, tmp) as (database_url, database_pid):
        _say(f"starting the hub ({options.workers} workers, {options.database})")
        with hub.running(
            tmp, venv=options.venv, database_url=database_url, workers=options.workers
        ) as running:
            key = hub.provision(running, upstream_url=upstream.upstream_url)
            answer = hub.check_exchange(running, key=key, workers=options.workers)
            footer.append(
                f"hub answer (checked by hand, projected by the grant): `{hub.describe(answer)}`"
            )
            lua = wrk.script(
                tmp / "hub.lua", body=payloads.REQUEST_BYTES, headers=hub.consumer_headers(key)
            )
            baseline: list[int] = []
            row = measure(
                options,
                target=HUB,
                url=running.url + hub.API_PATH,
                lua=lua,
                watched={"nginx": upstream.pid, "hub": running.pid}
                | ({"postgresql": database_pid} if database_pid else {}),
                before_run=lambda: baseline.append(hub.settled_records(database_url)),
            )
            running.check_alive()
            assert row.load is not None
            if row.load.errors:
                _say(f"the hub answered {row.load.errors} errors; its log ends with:")
                _say(procs.tail(running.log))
            records = hub.settled_records(database_url) - baseline[0]
            answered = row.load.requests
            footer.append(
                f"audit: {records:,} exchange records committed during the measured hub run, "
                f"for {answered:,} requests wrk counted as answered "
                f"({records - answered:+,}: calls still in flight when wrk stopped are answered "
                "and audited too)"
            )
            per_request = row.cpu["hub"] / max(answered, 1)
            footer.append(
                f"hub CPU per answered request: {per_request * 1e6:,.0f} µs (all its workers); "
                f"at that cost {machine.cores()} whole cores would carry at most "
                f"{machine.cores() / per_request:,.0f} req/s"
            )
            if records < answered:
                footer.append("audit: FEWER RECORDS THAN ANSWERED REQUESTS")
            watched = {"nginx": upstream.pid, "hub": running.pid} | (
                {"postgresql": database_pid} if database_pid else {}
            )

            def again_with(target: str, headers: dict[str, str]) -> report.Row:
                """The same exchange, sent with other headers, measured as the next row."""
                name = "".join(c if c.isalnum() else "-" for c in target)
                script = wrk.script(
                    tmp / f"{name}.lua", body=payloads.REQUEST_BYTES, headers=headers
                )
                measured = measure(
                    options, target=target, url=running.url + hub.API_PATH, lua=script,
                    watched=watched,
                )  # fmt: skip
                running.check_alive()
                assert measured.load is not None
                return measured

            bearer = again_with(HUB_BEARER, hub.bearer_headers(hub.access_token(running)))
            # The API-key row again: later rows run on a larger database (and a warmer or busier
            # VM), so the bearer row is compared with the mean of the key rows around it.
            again = again_with(HUB_AGAIN, hub.consumer_headers(key))
            assert bearer.load is not None
            assert again.load is not None
            keyed = (row.load.rps + again.load.rps) / 2
            footer.append(
                f"bearer token against the API key (the mean of the key rows before and after "
                f"it, {keyed:,.0f} req/s): {bearer.load.rps / keyed - 1:+.1%}"
            )
            limited_key = hub.provision_limited(running)
            hub.check_exchange(running, key=limited_key, workers=options.workers)
            limited = again_with(LIMITED, hub.consumer_headers(limited_key))
            footer.append(
                f"rate-limited grant: {hub.FAR_ABOVE['requests']:,} calls per "
                f"{hub.FAR_ABOVE['seconds']} s (never reached): one GCRA statement per call"
            )
            return [row, bearer, again, limited]


def run(options: Options) -> int:
    stamp = datetime.now(UTC)
    tmp = Path(tempfile.mkdtemp(prefix="lgsp-bench-"))
    rows: list[report.Row] = []
    footer: list[str] = []
    failed, keep = False, options.keep
    try:
        with nginx.running(
            tmp / "nginx", record=payloads.CITIZEN_BYTES, workers=options.nginx_workers
        ) as server:
            plain = wrk.script(
                tmp / "plain.lua",
                body=payloads.REQUEST_BYTES,
                headers={"Content-Type": "application/json"},
            )
            _say(f"nginx up: provider {server.upstream_url}, proxy {server.proxy_url}")
            watched = {"nginx": server.pid}
            for target, base in ((DIRECT, server.upstream_url), (PROXY, server.proxy_url)):
                rows.append(
                    measure(
                        options,
                        target=target,
                        url=base + nginx.UPSTREAM_PATH,
                        lua=plain,
                        watched=watched,
                    )
                )
            try:
                rows.extend(bench_hub(options, tmp, upstream=server, footer=footer))
            except hub.BenchError as exc:
                failed = True
                _say(f"the hub could not be measured: {exc}")
                first_line = str(exc).splitlines()[0]
                rows.append(report.Row(target=HUB, load=None, note=f"failed: {first_line}"))
                footer.append(f"hub: not measured: {exc}")
            failed = failed or any(row.load is not None and row.load.errors for row in rows)
    except Exception:
        keep = True  # the logs say why
        raise
    finally:
        if keep or failed:
            _say(f"logs and data kept in {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)

    heading = [
        f"# Exchange benchmark, {stamp:%Y-%m-%d %H:%M} UTC",
        "",
        f"- machine: {machine.describe()}",
        f"- load: wrk -t{options.threads} -c{options.connections}, {options.duration:g} s per "
        f"target after {options.warmup:g} s of warm-up; every request is a POST of the same "
        f"{len(payloads.REQUEST_BYTES):,}-byte JSON document, the provider answers a "
        f"{len(payloads.CITIZEN_BYTES):,}-byte JSON citizen record",
        f"- hub: {options.workers} workers, {options.database} database; full pipeline: API key "
        "(or an access token, EdDSA-signed JWT, on the bearer row), grant and purpose, request "
        "schema, connector call, response schema, field projection, audit record committed",
        f"- shared CPU: wrk, nginx (provider and proxy) and the hub all run on the same "
        f"{machine.cores()} cores, so each row also pays for its load generator",
    ]
    text = report.render(heading=heading, rows=rows, footer=footer)
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = RESULTS / f"exchange-{stamp:%Y%m%d-%H%M%S}.md"
    out.write_text(text, encoding="utf-8")
    print(text, flush=True)
    _say(f"written to {out.relative_to(ROOT)}")
    return 1 if failed else 0


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
    except (RuntimeError, OSError) as exc:
        _say(f"bench failed: {exc}")
        return 1


if __name__ == "__main__":
    raise SystemExit(main())
