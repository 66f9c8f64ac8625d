"""A topic the broker refuses is set aside, the others flow, and it comes back in order once fixed.

Through the hub's API, on each broker. On Kafka (tansu) the refusal is real: the topic was made
on the broker beforehand with one partition, fewer than the hub's three, and the operator's fix
is to make it again with three. The embedded broker cannot be misconfigured so: there the
relay's broker refuses the topic with the same TopicMisconfigured, at the broker's boundary
(see test_relay.py), and the fix is to stop refusing it. Either way the fix is followed by a
registry change (the operator edits the topic), which has the hub try the topic at once.
"""

from __future__ import annotations

import contextlib
import secrets
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from kafka import KafkaAdminClient, KafkaConsumer
from kafka.admin import NewTopic
from kafka.errors import TopicAlreadyExistsError

from messaging.database_broker import DatabaseBroker
from tests.conftest import RunningHub
from tests.integration.conftest import audit_records, ok
from tests.integration.messaging.receiver import Channel, make_channel, running_receiver
from tests.wait import wait_until

pytestmark = pytest.mark.slow

KEYS = ["HS-01", "HS-02", "HS-03", "HS-04", "HS-05", "HS-06"]


@pytest.fixture(scope="module")
def receiver_url() -> Iterator[str]:
    yield from running_receiver()


@contextlib.contextmanager
def misconfigured(hub: RunningHub, topic: str) -> Iterator[Callable[[], None]]:
    """The broker refuses `topic` until the callable given is called (the operator's fix)."""
    runtime = hub.hub.runtime
    if runtime.broker.name == "kafka":
        name = hub.settings.kafka_topic_prefix + topic
        admin = KafkaAdminClient(bootstrap_servers=hub.settings.kafka_bootstrap)
        admin.create_topics([NewTopic(name, num_partitions=1, replication_factor=1)])

        def remake() -> None:
            admin.delete_topics([name])

            def made_again() -> bool:
                try:
                    admin.create_topics([NewTopic(name, num_partitions=3, replication_factor=1)])
                    return True
                except TopicAlreadyExistsError:  # not deleted yet, or made again by the hub
                    return partitions(hub, name) == {0, 1, 2}

            wait_until(made_again, what=f"Kafka topic {name} made again with 3 partitions")

        try:
            yield remake
        finally:
            admin.close()
        return
    from tests.integration.messaging.refusing import Refusing  # the errors of this change

    assert isinstance(runtime.broker, DatabaseBroker)
    refusing = Refusing(runtime.broker, "ensure")
    refusing.broken = {topic}
    runtime.relay.broker = refusing
    try:
        yield refusing.broken.clear
    finally:
        runtime.relay.broker = runtime.broker


def partitions(hub: RunningHub, name: str) -> set[int]:
    """The topic's partitions, as a new client learns them from the broker."""
    consumer = KafkaConsumer(bootstrap_servers=hub.settings.kafka_bootstrap)
    try:
        return set(consumer.partitions_for_topic(name) or ())
    finally:
        consumer.close()


def readyz(hub: RunningHub) -> dict[str, Any]:
    answer = httpx.get(f"{hub.url}/readyz", timeout=10)
    assert answer.status_code == 200, answer.text  # the hub still serves
    body: dict[str, Any] = answer.json()
    # Serving (200) either way; degraded while messaging is.
    assert body["status"] == ("degraded" if body["messaging"]["status"] == "degraded" else "ready")
    return body


def ordered(channel: Channel, values: list[dict[str, Any]]) -> bool:
    """Every value delivered, and per key in publish order."""
    got = [a.value for a in channel.inbox.delivered()]
    return len(got) == len(values) and all(
        [v["n"] for v in got if v["id"] == key] == [v["n"] for v in values if v["id"] == key]
        for key in KEYS
    )


def actions(hub: RunningHub, **filters: Any) -> list[str]:
    """The hub's own registry-change records (set aside, resumed), oldest first."""
    records = audit_records(hub, kind="registry_change", actor="hub", **filters)
    return [r["action"] for r in reversed(records)]


def test_a_misconfigured_topic_is_set_aside_while_another_flows_then_comes_back_in_order(
    mhub: RunningHub, receiver_url: str
) -> None:
    tag = secrets.token_hex(4)
    kafka = mhub.hub.runtime.broker.name == "kafka"
    with misconfigured(mhub, f"test.t{tag}") as fix:
        bad = make_channel(mhub, receiver_url, tag=tag)
        good = make_channel(mhub, receiver_url)
        try:
            bad_values = [{"id": k, "n": n} for n in range(4) for k in KEYS]
            good_values = [{"id": k, "n": n} for n in range(5) for k in KEYS]
            # The broken topic's messages are accepted first: the relay reads oldest first.
            assert bad.publish(*bad_values).status_code == 202
            assert good.publish(*good_values).status_code == 202

            wait_until(lambda: ordered(good, good_values), what="the other topic delivered")
            shown = wait_until(
                lambda: readyz(mhub)["messaging"]["set_aside_topics"],
                what="the topic set aside in /readyz",
            )
            [aside] = shown
            assert aside["topic"] == bad.topic and aside["error"] == "TopicMisconfigured"
            assert aside["reason"] and aside["since"] and aside["waiting"] == len(bad_values)
            assert readyz(mhub)["messaging"]["status"] == "degraded"
            with mhub.admin() as admin:
                relay = ok(admin.get(f"/admin/topics/{bad.topic}"), 200)["relay"]
            assert relay["set_aside"] and relay["outbox"] == len(bad_values)  # nothing lost
            assert relay["error"] == "TopicMisconfigured"
            assert bad.inbox.delivered() == []
            assert actions(mhub, topic=bad.topic) == ["set-aside"]
            if kafka:  # its subscription's delivery cannot start either: set aside, shown
                wait_until(
                    lambda: [
                        s
                        for s in readyz(mhub)["messaging"]["set_aside_subscriptions"]
                        if s["subscription"] == bad.subscription
                    ],
                    what="the subscription set aside in /readyz",
                )
                assert actions(mhub, subscription=bad.subscription) == ["set-aside"]

            fix()
            with mhub.admin() as admin:  # the operator's edit: a new registry revision
                ok(admin.patch(f"/admin/topics/{bad.topic}", json={"title": "Đã sửa"}), 200)
            wait_until(lambda: ordered(bad, bad_values), what="the fixed topic delivered in order")
            wait_until(
                lambda: readyz(mhub)["messaging"]["status"] == "ok",
                what="messaging no longer degraded",
            )
            assert actions(mhub, topic=bad.topic) == ["set-aside", "resumed"]
            with mhub.admin() as admin:
                relay = ok(admin.get(f"/admin/topics/{bad.topic}"), 200)["relay"]
            assert relay == {**relay, "set_aside": False, "outbox": 0}
        finally:
            for channel in (bad, good):
                channel.admin("DELETE", "")
