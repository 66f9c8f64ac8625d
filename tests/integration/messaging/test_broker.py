"""The test broker speaks Kafka to kafka-python: acks=all produce, keyed partitioning, and
reads by assignment (no group join to wait for). Not idempotent: tansu's memory storage answers
InitProducerId with an error."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import KafkaAdminClient, NewTopic

from tests.kafka import Broker, running_broker
from tests.wait import wait_until


@pytest.fixture(scope="module")
def broker() -> Iterator[Broker]:
    with running_broker() as running:
        yield running


def test_produce_and_consume_keyed_messages(broker: Broker) -> None:
    admin = KafkaAdminClient(bootstrap_servers=broker.bootstrap)
    try:
        admin.create_topics([NewTopic("ho-so.trang-thai", num_partitions=3, replication_factor=1)])
    finally:
        admin.close()
    producer = KafkaProducer(bootstrap_servers=broker.bootstrap, acks="all", linger_ms=5)
    sent = []
    for n in range(30):
        key = f"H12.99-261124-{n % 5:04d}".encode()
        meta = producer.send("ho-so.trang-thai", key=key, value=b'{"TrangThaiHoSo": %d}' % n)
        sent.append((key, meta.get(timeout=10).partition))
    producer.close()
    # One key, one partition: the order per key is the partition's order.
    partitions_of: dict[bytes, set[int]] = {}
    for key, partition in sent:
        partitions_of.setdefault(key, set()).add(partition)
    assert all(len(p) == 1 for p in partitions_of.values())

    consumer = KafkaConsumer(bootstrap_servers=broker.bootstrap, auto_offset_reset="earliest")
    consumer.assign([TopicPartition("ho-so.trang-thai", p) for p in range(3)])
    received: list[Any] = []  # kafka-python's ConsumerRecord (untyped)

    def consumed() -> bool:
        for records in consumer.poll(timeout_ms=200).values():  # waits up to 0.2 s itself
            received.extend(records)
        return len(received) >= 30

    try:
        wait_until(consumed, timeout=15, interval=0, what="the 30 messages consumed")
    finally:
        consumer.close()
    assert len(received) == 30
    by_key: dict[bytes, list[int]] = {}
    for record in received:
        by_key.setdefault(record.key, []).append(int(record.value.split(b": ")[1][:-1]))
    assert all(values == sorted(values) for values in by_key.values())


def test_crc32c_is_accelerated() -> None:
    """Without the crc32c package kafka-python checksums in pure Python (about tenfold slower)."""
    import crc32c
    from kafka.record import util

    assert util.calc_crc32c.__defaults__ == (crc32c.crc32c,)
