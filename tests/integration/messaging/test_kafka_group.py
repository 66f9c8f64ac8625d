"""A sector system that speaks Kafka reads its group subscription from Kafka itself.

The hub writes each topic to the Kafka topic `lgsp.<topic>`; the subscriber's consumer group is
named after its subscription. The reader here is kafka-python's own group consumer, with
`session_timeout_ms=2000`, so the broker admits it to the group in about a second (tansu holds a
join for half the session timeout); its offsets are Kafka's, committed by the group.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import orjson
import pytest
from kafka import KafkaConsumer

from tests.conftest import RunningHub, start_hub
from tests.integration.messaging.receiver import make_channel, running_receiver
from tests.wait import wait_until


@pytest.fixture(scope="module")
def khub(kafka_bootstrap: str, database_urls: Callable[[str], str]) -> Iterator[RunningHub]:
    yield from start_hub(database_urls("sqlite"), broker="kafka", kafka_bootstrap=kafka_bootstrap)


def _read(
    bootstrap: str, topic: str, group: str, until: Callable[[list[dict[str, Any]]], bool], what: str
) -> list[dict[str, Any]]:
    """What a new member of `group` reads, from where the group is, `until` it holds; then
    commits."""
    consumer = KafkaConsumer(
        f"lgsp.{topic}",
        bootstrap_servers=bootstrap,
        group_id=group,
        session_timeout_ms=2000,
        heartbeat_interval_ms=500,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    got: list[dict[str, Any]] = []

    def read() -> bool:
        for records in consumer.poll(timeout_ms=500).values():  # waits up to 0.5 s itself
            for record in records:
                headers = dict(record.headers)
                got.append(
                    {
                        "id": headers["lgsp-message-id"].decode(),
                        "key": record.key.decode(),
                        "partition": record.partition,
                        "value": orjson.loads(record.value),
                    }
                )
        return until(got)

    try:
        wait_until(read, timeout=30, interval=0, what=what)
        consumer.commit()
    finally:
        consumer.close()
    return got


def test_a_kafka_consumer_group_reads_what_the_hub_accepted(khub: RunningHub) -> None:
    receiver = running_receiver()
    url = next(receiver)
    channel = make_channel(khub, url, delivery="group")
    answer = channel.publish(*[{"id": f"KS-{i % 3}", "n": i} for i in range(9)])
    assert answer.status_code == 202, answer.text
    accepted = {m["id"]: m for m in answer.json()["messages"]}
    bootstrap = khub.settings.kafka_bootstrap or ""
    got = _read(
        bootstrap,
        channel.topic,
        channel.subscription,
        lambda got: len(got) >= 9,
        what="the 9 accepted messages read by the group",
    )
    assert {m["id"] for m in got} == set(accepted)
    for message in got:  # the hub's partition for the key, as Kafka's own partitioner would
        assert message["partition"] == accepted[message["id"]]["partition"]
        assert message["key"] == message["value"]["id"]
    for key in ("KS-0", "KS-1", "KS-2"):
        ns = [m["value"]["n"] for m in got if m["key"] == key]
        assert ns == sorted(ns)
    # The group committed: a new member of the same group starts after what was read. One more
    # message per key, each after its key's first ones in its partition: once the new member
    # has read these, it would have read any of the first ones it had been given before them.
    more = channel.publish(*[{"id": f"KS-{i}", "n": 9 + i} for i in range(3)])
    assert more.status_code == 202, more.text
    later = {m["id"] for m in more.json()["messages"]}
    again = _read(
        bootstrap,
        channel.topic,
        channel.subscription,
        lambda got: later <= {m["id"] for m in got},
        what="the 3 later messages read by a new member of the group",
    )
    assert {m["id"] for m in again} == later
    receiver.close()
