"""Messaging throughput and latency: publish (batched) -> broker -> push to a local receiver.

Run it as `python -m bench.messaging` (see bench/README.md). For each target, two runs:
- flood: N messages published in batches from a few connections as fast as they are accepted;
  msg/s accepted, and msg/s end to end (first publish to last delivery);
- paced: a fixed rate (500 msg/s as 10 messages every 20 ms) for S seconds; p50/p99 from
  publish to delivery, each message stamped `sent_ns` when its request is built and timed by the
  receiver on arrival (the same clock, `time.time_ns()`, in both processes).

Targets: the receiver fed directly by the same client (the ceiling of client and receiver on
this machine), kafka-python produce -> consume (the ceiling of Kafka from Python), and the hub
on each chosen backend. Every process started runs in its own process group and is stopped on
exit, Ctrl-C or error; the temp dir is removed unless --keep or a failure.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import resource
import shutil
import signal
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType
from typing import Any

from bench import (
    events,
    hub,
    kafka_baseline,
    machine,
    messaging_hub,
    procs,
    profiled_hub,
    publisher,
    tansu,
)
from bench import (
    messaging_report as report,
)
from bench.hub import BenchError
from bench.messaging_report import Phase, Row
from bench.publisher import Sent
from bench.receiver import Client as ReceiverClient

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"

DIRECT = "direct to receiver"
KAFKA_RAW = "kafka-python produce → consume"
WARMUP_MESSAGES = 2_000


@dataclass(frozen=True)
class Options:
    backends: list[str]
    databases: list[str]
    messages: int
    seconds: float
    rate: float
    batch: int
    paced_batch: int
    connections: int
    direct_connections: int
    partitions: int
    workers: int
    settings: dict[str, str]
    venv: Path
    keep: bool
    profile: bool


def parse_args(argv: list[str] | None = None) -> Options:
    parser = argparse.ArgumentParser(
        prog="python -m bench.messaging",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--backend", choices=["database", "kafka", "all"], default="all")
    parser.add_argument(
        "--database",
        choices=["sqlite", "postgresql", "all"],
        default="sqlite",
        help="the hub's database (the kafka backend keeps its outbox there)",
    )
    parser.add_argument("--messages", type=int, default=20_000, help="messages in the flood run")
    parser.add_argument("--seconds", type=float, default=20, help="length of the paced run")
    parser.add_argument("--rate", type=float, default=500, help="msg/s of the paced run")
    parser.add_argument("--batch", type=int, default=200, help="messages per publish (flood)")
    parser.add_argument("--paced-batch", type=int, default=10, help="messages per publish (paced)")
    parser.add_argument("--connections", type=int, default=4, help="publishing connections")
    parser.add_argument(
        "--direct-connections",
        type=int,
        default=64,
        help="connections of the direct row (as many as the hub's pushes in flight)",
    )
    parser.add_argument("--partitions", type=int, default=6)
    parser.add_argument("--workers", type=int, default=2, help="hub worker processes")
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="LGSP_NAME=VALUE",
        help="a hub setting, e.g. --set LGSP_DELIVERY_IN_FLIGHT=128 (repeatable)",
    )
    parser.add_argument("--venv", type=Path, default=ROOT / ".venv")
    parser.add_argument("--keep", action="store_true", help="keep the temp dir (logs, database)")
    parser.add_argument(
        "--profile",
        action="store_true",
        help="run the hub under cProfile (slower: for where the time goes, not how fast); "
        "the profiles are written next to the result",
    )
    args = parser.parse_args(argv)
    settings = {}
    for item in args.set:
        name, sep, value = item.partition("=")
        if not sep or not name.startswith("LGSP_"):
            parser.error(f"--set takes LGSP_NAME=VALUE, not {item!r}")
        settings[name] = value
    if args.messages < args.batch or args.batch < 1 or args.paced_batch < 1:
        parser.error("--messages must be at least --batch, and batches at least 1")
    return Options(
        backends=["database", "kafka"] if args.backend == "all" else [args.backend],
        databases=["sqlite", "postgresql"] if args.database == "all" else [args.database],
        messages=args.messages,
        seconds=args.seconds,
        rate=args.rate,
        batch=args.batch,
        paced_batch=args.paced_batch,
        connections=args.connections,
        direct_connections=args.direct_connections,
        partitions=args.partitions,
        workers=args.workers,
        settings=settings,
        venv=args.venv,
        keep=args.keep,
        profile=args.profile,
    )


def _say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


# ---------------------------------------------------------------- measuring


def _self_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)  # every thread of this process, no child
    return usage.ru_utime + usage.ru_stime


class Meter:
    """CPU seconds of the watched process trees (and of this process, the client) over a run."""

    def __init__(self, watched: dict[str, int]) -> None:
        self.watched = watched
        self.start: dict[str, float] = {}
        self.started = time.monotonic()

    def begin(self) -> None:
        self.start = {name: procs.tree_cpu_seconds(pid) for name, pid in self.watched.items()}
        self.start["client"] = _self_cpu()
        self.start["machine"] = procs.machine_busy_seconds()
        self.started = time.monotonic()

    def end(self) -> tuple[dict[str, float], float]:
        cpu = {name: procs.tree_cpu_seconds(pid) for name, pid in self.watched.items()}
        cpu["client"] = _self_cpu()
        cpu["machine"] = procs.machine_busy_seconds()
        used = {name: cpu[name] - self.start[name] for name in cpu}
        used["other"] = used["machine"] - sum(v for k, v in used.items() if k != "machine")
        return used, time.monotonic() - self.started


Collect = Callable[[int], dict[str, Any]]  # expected count -> {"sent", "arrived", "arrivals"?}


def phase(meter: Meter, send: Callable[[], Sent], collect: Collect, expected: int) -> Phase:
    meter.begin()
    sent = send()
    samples = collect(expected)
    cpu, wall = meter.end()
    sent_ns, arrived_ns = samples["sent"], samples["arrived"]
    latencies = [(a - s) / 1e6 for s, a in zip(sent_ns, arrived_ns, strict=True)]
    return Phase(
        sent=sent,
        expected=expected,
        delivered=len(arrived_ns),
        arrivals=int(samples.get("arrivals", len(arrived_ns))),
        first_sent_ns=sent.started_ns,
        last_arrived_ns=max(arrived_ns, default=sent.started_ns),
        latencies_ms=latencies,
        cpu=cpu,
        wall=wall,
    )


def _describe(target: str, row: Phase, kind: str) -> None:
    errors = f", {len(row.sent.errors)} errors: {row.sent.errors[0]}" if row.sent.errors else ""
    if kind == "flood":
        _say(
            f"    flood: {row.sent.messages:,} accepted at {row.sent.rate:,.0f} msg/s, "
            f"{row.delivered:,}/{row.expected:,} delivered, {row.end_to_end:,.0f} msg/s end to "
            f"end{errors}"
        )
    else:
        _say(
            f"    paced: {row.delivered:,}/{row.expected:,} delivered, p50 "
            f"{row.percentile(0.5):.1f} ms, p99 {row.percentile(0.99):.1f} ms{errors}"
        )


def _over_http(
    options: Options,
    target: str,
    sender: publisher.Sender,
    receiver: ReceiverClient,
    meter: Meter,
    *,
    flood_batch: int,
    paced_sender: publisher.Sender,
    mark: Callable[[], None] = lambda: None,
) -> Row:
    """Flood and paced runs of a sender whose messages end at the receiver; `mark` is called
    as each run starts and ends (the profiled hub's phases)."""

    def collect(timeout: float) -> Collect:
        def wait(expected: int) -> dict[str, Any]:
            receiver.wait_for(expected, timeout=timeout)
            return receiver.samples()

        return wait

    _say(f"  {target}: warm-up {WARMUP_MESSAGES:,} messages")
    warm = asyncio.run(publisher.flood(sender, messages=WARMUP_MESSAGES, batch=flood_batch))
    arrived = receiver.wait_for(WARMUP_MESSAGES, timeout=60)["distinct"]
    if warm.errors or arrived < WARMUP_MESSAGES:
        # Stragglers would be counted as the measured run's messages.
        raise BenchError(
            f"warm-up: {warm.messages:,} of {WARMUP_MESSAGES:,} messages accepted "
            f"({warm.errors[:1] or 'no error'}), {arrived:,} arrived within 60 s"
        )
    receiver.reset()
    row = Row(target)
    _say(f"  {target}: flood of {options.messages:,} messages in batches of {flood_batch}")
    mark()
    row.flood = phase(
        meter,
        lambda: asyncio.run(publisher.flood(sender, messages=options.messages, batch=flood_batch)),
        collect(max(60.0, options.messages / 200)),
        options.messages,
    )
    mark()
    _describe(target, row.flood, "flood")
    receiver.reset()
    expected = _paced_count(options)
    _say(f"  {target}: {options.rate:g} msg/s for {options.seconds:g} s")
    mark()
    row.paced = phase(
        meter,
        lambda: asyncio.run(
            publisher.paced(
                paced_sender, rate=options.rate, batch=options.paced_batch, seconds=options.seconds
            )
        ),
        collect(60.0),
        expected,
    )
    mark()
    _describe(target, row.paced, "paced")
    receiver.reset()
    return row


def bench_direct(options: Options, receiver: ReceiverClient, receiver_pid: int) -> Row:
    sender = publisher.DirectPoster(receiver.hook_url, connections=options.direct_connections)
    meter = Meter({"receiver": receiver_pid})
    row = _over_http(options, DIRECT, sender, receiver, meter, flood_batch=1, paced_sender=sender)
    row.note = f"one message per POST, {options.direct_connections} connections"
    return row


def _paced_count(options: Options) -> int:
    """Messages of the paced run: whole batches."""
    return options.paced_batch * max(1, round(options.seconds * options.rate / options.paced_batch))


def _kafka_raw_phase(options: Options, tmp: Path, broker: tansu.Tansu, kind: str) -> Phase:
    topic = f"bench-raw-{kind}"
    kafka_baseline.create_topic(broker.bootstrap, topic, options.partitions)
    expected = options.messages if kind == "flood" else _paced_count(options)
    timeout = max(60.0, options.messages / 200) + options.seconds

    def send() -> Sent:
        if kind == "flood":
            _say(f"  {KAFKA_RAW}: {options.messages:,} messages")
            return kafka_baseline.flood(
                broker.bootstrap, topic, options.partitions, messages=options.messages
            )
        _say(f"  {KAFKA_RAW}: {options.rate:g} msg/s for {options.seconds:g} s")
        return kafka_baseline.paced(
            broker.bootstrap,
            topic,
            options.partitions,
            rate=options.rate,
            batch=options.paced_batch,
            seconds=options.seconds,
        )

    with kafka_baseline.consuming(
        tmp,
        python=options.venv / "bin" / "python",
        bootstrap=broker.bootstrap,
        topic=topic,
        partitions=options.partitions,
        expect=expected,
        timeout=timeout,
    ) as consumer:
        meter = Meter({"receiver": consumer.pid, "tansu": broker.pid})
        measured = phase(meter, send, lambda _: consumer.result(timeout), expected)
    _describe(KAFKA_RAW, measured, kind)
    return measured


def bench_kafka_raw(options: Options, tmp: Path, broker: tansu.Tansu) -> Row:
    row = Row(KAFKA_RAW, note="acks=all; producer linger 5 ms (flood) / 0 (paced)")
    row.flood = _kafka_raw_phase(options, tmp, broker, "flood")
    row.paced = _kafka_raw_phase(options, tmp, broker, "paced")
    return row


@contextlib.contextmanager
def _database(kind: str, tmp: Path) -> Iterator[tuple[str, int | None]]:
    if kind == "postgresql":
        _say("  starting PostgreSQL (pgserver)")
        with hub.postgresql(tmp) as (url, pid):
            yield url, pid
    else:
        yield f"sqlite:///{tmp / 'hub.db'}", None


def bench_hub(
    options: Options,
    tmp: Path,
    *,
    backend: str,
    database: str,
    receiver: ReceiverClient,
    receiver_pid: int,
    broker: tansu.Tansu | None,
) -> Row:
    label = f"{backend}-{database}"
    work = tmp / label
    work.mkdir()
    engine = "SQLite" if database == "sqlite" else "PostgreSQL"
    target = (
        f"hub, database broker ({engine})"
        if backend == "database"
        else f"hub, kafka broker (tansu; outbox in {engine})"
    )
    with _database(database, work) as (database_url, database_pid):
        _say(f"  starting the hub ({options.workers} workers, {backend} broker, {engine})")
        with messaging_hub.running(
            work,
            venv=options.venv,
            database_url=database_url,
            workers=options.workers,
            broker=backend,
            kafka_bootstrap=broker.bootstrap if broker else None,
            settings=options.settings,
            label=label,
            profile=work / "profile" if options.profile else None,
        ) as running:
            channel = messaging_hub.provision(
                running, receiver_url=receiver.url, partitions=options.partitions
            )
            checked = messaging_hub.check_publish(channel, workers=options.workers)
            stats = receiver.wait_for(checked, timeout=60)
            if stats["distinct"] < checked:
                raise BenchError(
                    f"{checked} messages published by hand, {stats['distinct']} pushed to the "
                    f"receiver within 60 s:\n{procs.tail(running.log)}"
                )
            receiver.reset()
            watched = {"receiver": receiver_pid, "hub": running.pid}
            if broker is not None:
                watched["tansu"] = broker.pid
            if database_pid:
                watched["postgresql"] = database_pid
            flood = publisher.HubPublisher(
                channel.publish_url, channel.headers(), connections=options.connections
            )
            paced = publisher.HubPublisher(
                channel.publish_url, channel.headers(), connections=max(options.connections, 8)
            )
            row = _over_http(
                options, target, flood, receiver, Meter(watched),
                flood_batch=options.batch, paced_sender=paced,
                mark=lambda: os.killpg(running.pid, signal.SIGUSR1) if options.profile else None,
            )  # fmt: skip
            running.check_alive()
            if row.flood is not None and row.paced is not None:
                accepted = checked + WARMUP_MESSAGES + row.flood.sent.messages
                accepted += row.paced.sent.messages
                records = messaging_hub.settled_delivery_records(database_url)
                row.footer.append(
                    f"{target}: audit: {records:,} delivery records (2xx) committed for "
                    f"{accepted:,} messages accepted over the hub's life (checks and warm-up "
                    "included)" + ("" if records >= accepted else ": FEWER RECORDS THAN MESSAGES")
                )
    row.note = f"{options.workers} workers, batches of {options.batch}"
    if row.flood is not None:
        per_message = row.flood.cpu["hub"] / max(row.flood.delivered, 1)
        row.footer.append(
            f"{target}: hub CPU per message (publish, relay, push, records): "
            f"{per_message * 1e6:,.0f} µs; at that cost {machine.cores()} whole cores "
            f"would carry at most {machine.cores() / per_message:,.0f} msg/s"
        )
    if options.profile:
        RESULTS.mkdir(parents=True, exist_ok=True)
        out = RESULTS / f"messaging-profile-{label}-{datetime.now(UTC):%Y%m%d-%H%M%S}.txt"
        out.write_text(profiled_hub.summary(work / "profile"), encoding="utf-8")
        row.footer.append(f"{target}: PROFILED (slower than usual); profile in {out.name}")
    return row


# ---------------------------------------------------------------- the run


@contextlib.contextmanager
def _receiver(options: Options, tmp: Path) -> Iterator[tuple[ReceiverClient, int]]:
    port = procs.free_port()
    argv = [str(options.venv / "bin" / "python"), "-m", "bench.receiver", "--port", str(port)]
    with procs.group(argv, log=tmp / "receiver.log") as process:
        client = ReceiverClient(f"http://127.0.0.1:{port}")
        if not procs.wait_until(lambda: process.poll() is not None or client.ready(), timeout=20):
            raise BenchError(f"the receiver did not start:\n{procs.tail(tmp / 'receiver.log')}")
        yield client, process.pid


def _guarded(rows: list[Row], footer: list[str], target: str, run: Callable[[], Row]) -> bool:
    """Run one target; a failure becomes a row saying so (the other targets still run)."""
    try:
        rows.append(run())
        return True
    except (BenchError, RuntimeError) as exc:
        _say(f"{target} could not be measured: {exc}")
        rows.append(Row(target, note=f"failed: {str(exc).splitlines()[0]}"))
        footer.append(f"{target}: not measured: {exc}")
        return False


def _bench_backend(
    options: Options, tmp: Path, backend: str, receiver: ReceiverClient, receiver_pid: int,
    rows: list[Row], footer: list[str],
) -> bool:  # fmt: skip
    """The hub rows of one backend (and Kafka's own row, on the same broker); True if all ran."""
    with contextlib.ExitStack() as stack:
        broker = None
        ok = True
        if backend == "kafka":
            _say("starting tansu")
            broker = stack.enter_context(tansu.running(tmp))
            kafka = broker
            ok &= _guarded(rows, footer, KAFKA_RAW, lambda: bench_kafka_raw(options, tmp, kafka))
        for database in options.databases:

            def measure(database: str = database) -> Row:
                return bench_hub(
                    options,
                    tmp,
                    backend=backend,
                    database=database,
                    receiver=receiver,
                    receiver_pid=receiver_pid,
                    broker=broker,
                )

            ok &= _guarded(rows, footer, f"hub, {backend} broker ({database})", measure)
        return ok


def run(options: Options) -> int:
    stamp = datetime.now(UTC)
    tmp = Path(tempfile.mkdtemp(prefix="lgsp-bench-messaging-"))
    rows: list[Row] = []
    footer: list[str] = []
    failed, keep = False, options.keep
    try:
        with _receiver(options, tmp) as (receiver, receiver_pid):
            _say(f"receiver up on {receiver.url}")
            failed |= not _guarded(
                rows, footer, DIRECT, lambda: bench_direct(options, receiver, receiver_pid)
            )
            for backend in options.backends:
                failed |= not _bench_backend(options, tmp, backend, receiver, receiver_pid,
                                             rows, footer)  # fmt: skip
        failed |= any(
            not p.complete for row in rows for p in (row.flood, row.paced) if p is not None
        )
    except Exception:
        keep = True  # the logs say why
        raise
    finally:
        if keep or failed:
            _say(f"logs and data kept in {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)

    settings = " ".join(f"{k}={v}" for k, v in sorted(options.settings.items())) or "defaults"
    heading = [
        f"# Messaging benchmark, {stamp:%Y-%m-%d %H:%M} UTC",
        "",
        f"- machine: {report.describe_machine()}",
        f"- message: {len(events.encode(0, time.time_ns())):,}-byte JSON (a dossier status "
        f"change, {events.KEYS:,} keys), "
        f"topic of {options.partitions} partitions, push subscription to a local receiver",
        f"- flood: {options.messages:,} messages, batches of {options.batch} over "
        f"{options.connections} connections; end to end = first publish to last delivery",
        f"- paced: {options.rate:g} msg/s as {options.paced_batch} messages every "
        f"{1000 * options.paced_batch / options.rate:g} ms for {options.seconds:g} s; latency = "
        "receiver's arrival time - the publisher's time when it built the request",
        f"- hub: lgsp serve --workers {options.workers}; settings: {settings}",
        f"- shared CPU: the publishers, the receiver, the hub and its brokers all run on the "
        f"same {machine.cores()} cores",
    ]
    text = report.render(heading=heading, rows=rows, footer=footer, rate=options.rate)
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = RESULTS / f"messaging-{stamp:%Y%m%d-%H%M%S}.md"
    out.write_text(text, encoding="utf-8")
    print(text, flush=True)
    _say(f"written to {out.relative_to(ROOT)}")
    return 1 if failed else 0


def _terminate(signum: int, _: FrameType | None) -> None:
    raise SystemExit(128 + signum)  # unwinds through every `finally`, which stops the children


def main(argv: list[str] | None = None) -> int:
    signal.signal(signal.SIGTERM, _terminate)
    signal.signal(signal.SIGHUP, _terminate)
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
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
