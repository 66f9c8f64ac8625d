"""The Kafka yardstick: the same 1 KB messages produced and consumed with kafka-python directly.

The producer runs in the benchmark's process (acks=all, keyed, the default murmur2 partitioner);
the consumer is its own process (`python -m bench.kafka_baseline consume ...`): it reads every
partition without a group (assign, from the beginning), notes each record's arrival time
(`time.time_ns()`, the clock of `sent_ns`) and, once it has the expected count (or times out),
writes `{"sent": [...], "arrived": [...]}` and exits. What the hub adds to Kafka is the
difference between this row and the hub's.
"""

from __future__ import annotations

import argparse
import contextlib
import signal
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from bench import events, procs
from bench.publisher import Sent

FETCH_MAX_WAIT_MS = 10  # the consumer's long poll: short, so an idle fetch adds little latency


def create_topic(bootstrap: str, topic: str, partitions: int) -> None:
    from kafka import KafkaAdminClient
    from kafka.admin import NewTopic

    admin = KafkaAdminClient(bootstrap_servers=bootstrap, client_id="bench-admin")
    try:
        admin.create_topics(
            [NewTopic(topic, num_partitions=partitions, replication_factor=1)], timeout_ms=10_000
        )
    finally:
        admin.close()


def _producer(bootstrap: str, *, linger_ms: int) -> Any:
    from kafka import KafkaProducer

    return KafkaProducer(
        bootstrap_servers=bootstrap,
        acks="all",
        linger_ms=linger_ms,
        batch_size=256 * 1024,
        max_request_size=4 * 1024 * 1024,
        client_id="bench-producer",
    )


def _wait_for_partitions(producer: Any, topic: str, partitions: int) -> None:
    deadline = time.monotonic() + 15
    while set(producer.partitions_for(topic) or ()) != set(range(partitions)):
        if time.monotonic() > deadline:
            raise RuntimeError(f"Kafka shows no partitions of {topic}")
        time.sleep(0.05)


def flood(bootstrap: str, topic: str, partitions: int, *, messages: int) -> Sent:
    """Every message sent as fast as the producer takes it (linger 5 ms), then flushed."""
    producer = _producer(bootstrap, linger_ms=5)
    try:
        _wait_for_partitions(producer, topic, partitions)
        sent = Sent(started_ns=time.time_ns())
        futures = [
            producer.send(topic, key=events.key(n).encode(), value=events.encode(n, time.time_ns()))
            for n in range(messages)
        ]
        producer.flush()
        for future in futures:
            if future.succeeded():
                sent.messages += 1
            else:
                sent.errors.append(repr(future.exception))
        sent.requests = messages
        sent.finished_ns = time.time_ns()
        return sent
    finally:
        producer.close()


def paced(bootstrap: str, topic: str, partitions: int, *, rate: float, batch: int,
          seconds: float) -> Sent:  # fmt: skip
    """`batch` messages every `batch / rate` seconds (no linger), each acknowledged by the end."""
    producer = _producer(bootstrap, linger_ms=0)
    try:
        _wait_for_partitions(producer, topic, partitions)
        interval = batch / rate
        ticks = max(1, round(seconds / interval))
        futures = []
        sent = Sent(started_ns=time.time_ns())
        begin = time.monotonic()
        for tick in range(ticks):
            delay = begin + tick * interval - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            stamp = time.time_ns()
            for i in range(batch):
                n = tick * batch + i
                value = events.encode(n, stamp)
                futures.append(producer.send(topic, key=events.key(n).encode(), value=value))
        producer.flush()
        sent.messages = sum(1 for f in futures if f.succeeded())
        sent.errors = [repr(f.exception) for f in futures if f.failed()][:10]
        sent.requests = ticks
        sent.finished_ns = time.time_ns()
        return sent
    finally:
        producer.close()


# ---------------------------------------------------------------- the consumer process


@dataclass(frozen=True)
class Consumer:
    process: subprocess.Popen[bytes]
    out: Path

    @property
    def pid(self) -> int:
        return self.process.pid

    def result(self, timeout: float) -> dict[str, Any]:
        """Its samples, once it has them all or gave up (it exits either way)."""
        deadline = time.monotonic() + timeout + 10
        while not self.out.exists() and self.process.poll() is None:
            if time.monotonic() > deadline:
                break
            time.sleep(0.02)
        if not self.out.exists():
            raise RuntimeError(f"the Kafka consumer wrote no result (exit {self.process.poll()})")
        result: dict[str, Any] = orjson.loads(self.out.read_bytes())
        return result


@contextlib.contextmanager
def consuming(
    tmp: Path, *, python: Path, bootstrap: str, topic: str, partitions: int, expect: int,
    timeout: float,
) -> Iterator[Consumer]:  # fmt: skip
    """The consumer process, assigned and polling before the block starts."""
    out, ready = tmp / f"{topic}.json", tmp / f"{topic}.ready"
    argv = [
        str(python), "-m", "bench.kafka_baseline", "consume", "--bootstrap", bootstrap,
        "--topic", topic, "--partitions", str(partitions), "--expect", str(expect),
        "--timeout", str(timeout), "--out", str(out), "--ready", str(ready),
    ]  # fmt: skip
    with procs.group(argv, log=tmp / f"{topic}-consumer.log") as process:
        if not procs.wait_until(lambda: ready.exists() or process.poll() is not None, timeout=30):
            raise RuntimeError("the Kafka consumer did not start")
        if process.poll() is not None:
            raise RuntimeError(
                f"the Kafka consumer exited:\n{procs.tail(tmp / f'{topic}-consumer.log')}"
            )
        yield Consumer(process=process, out=out)


def consume(args: argparse.Namespace) -> None:
    from kafka import KafkaConsumer, TopicPartition

    consumer = KafkaConsumer(
        bootstrap_servers=args.bootstrap,
        group_id=None,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        fetch_max_wait_ms=FETCH_MAX_WAIT_MS,
        client_id="bench-consumer",
    )
    consumer.assign([TopicPartition(args.topic, p) for p in range(args.partitions)])
    consumer.poll(timeout_ms=100)
    Path(args.ready).touch()
    sent: list[int] = []
    arrived: list[int] = []
    deadline = time.monotonic() + args.timeout
    while len(sent) < args.expect and time.monotonic() < deadline:
        batches = consumer.poll(timeout_ms=100, max_records=5000)
        now = time.time_ns()
        for records in batches.values():
            for record in records:
                sent.append(int(orjson.loads(record.value)["sent_ns"]))
                arrived.append(now)
    consumer.close()
    partial = Path(args.out + ".part")
    partial.write_bytes(orjson.dumps({"sent": sent, "arrived": arrived}))
    partial.rename(args.out)
    # Alive until stopped, so that the benchmark reads its CPU time after the run.
    signal.pause()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    commands = parser.add_subparsers(required=True)
    command = commands.add_parser("consume")
    command.add_argument("--bootstrap", required=True)
    command.add_argument("--topic", required=True)
    command.add_argument("--partitions", type=int, required=True)
    command.add_argument("--expect", type=int, required=True)
    command.add_argument("--timeout", type=float, required=True)
    command.add_argument("--out", required=True)
    command.add_argument("--ready", required=True)
    command.set_defaults(func=consume)
    args = parser.parse_args()
    args.func(args)


if __name__ == "__main__":
    main()
