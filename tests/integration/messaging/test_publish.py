"""Publishing: what a producer is answered, stored and recorded (SQLite, PostgreSQL)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from tests.conftest import RunningHub
from tests.integration.conftest import audit_records
from tests.integration.messaging.receiver import Channel, make_channel, running_receiver
from tests.wait import wait_until


@pytest.fixture(scope="module")
def receiver_url() -> Iterator[str]:
    yield from running_receiver()


@pytest.fixture
def channel(hub: RunningHub, receiver_url: str) -> Iterator[Channel]:
    made = make_channel(hub, receiver_url, max_message_bytes=512)
    yield made
    made.admin("DELETE", "")  # stops its delivery: the next tests share the hub


def test_one_message_is_accepted_recorded_and_delivered(channel: Channel) -> None:
    answer = channel.publish({"id": "HS-1", "n": 1})
    assert answer.status_code == 202, answer.text
    body = answer.json()
    assert body["accepted"] == 1 and body["rejected"] == []
    (message,) = body["messages"]
    assert message["key"] == "HS-1" and 0 <= message["partition"] < 3
    assert message["duplicate"] is False
    records = audit_records(channel.hub, kind="publish", topic=channel.topic)
    assert [r["message_id"] for r in records] == [message["id"]]
    assert records[0]["consumer"] == channel.producer and records[0]["hub_status"] == 202
    assert records[0]["details"]["messages"] == [message["id"]]
    arrived = wait_until(channel.inbox.delivered, what="the message delivered")
    assert arrived[0].headers["webhook-id"] == message["id"]
    assert arrived[0].value == {"id": "HS-1", "n": 1}


def test_a_batch_is_all_or_nothing(channel: Channel) -> None:
    answer = channel.publish({"id": "A", "n": 1}, {"id": "B", "n": "two"}, {"n": 3})
    assert answer.status_code == 422, answer.text
    problem = answer.json()
    assert answer.headers["content-type"] == "application/problem+json"
    pointers = {e["pointer"] for e in problem["errors"]}
    assert "/messages/1/value/n" in pointers
    assert "/messages/2/value" in pointers or "/messages/2/value/id" in pointers
    assert "nothing was accepted" in problem["detail"]
    refused = audit_records(channel.hub, kind="publish", topic=channel.topic)
    assert [r["hub_status"] for r in refused] == [422]
    # Nothing of it was stored: once a later message is delivered, the topic's log holds it
    # alone (a stored A or B would be there too, whatever partition and order).
    assert channel.publish({"id": "C", "n": 4}).status_code == 202
    arrived = wait_until(channel.inbox.delivered, what="the later message delivered")
    assert [a.value["id"] for a in arrived] == ["C"]
    assert channel.in_log() == 1


def test_partial_accepts_the_valid_messages(channel: Channel) -> None:
    with channel.hub.client(channel.producer_key) as client:
        answer = client.post(
            f"/topics/{channel.topic}/messages",
            params={"partial": "true"},
            json={"messages": [{"value": {"id": "A", "n": 1}}, {"value": {"id": "B"}}]},
        )
    assert answer.status_code == 202, answer.text
    body = answer.json()
    assert [m["index"] for m in body["messages"]] == [0]
    assert body["rejected"][0]["index"] == 1 and body["rejected"][0]["status"] == 422
    assert body["rejected"][0]["errors"][0]["pointer"] == "/messages/1/value"


def test_an_idempotency_key_makes_a_retry_a_no_op(channel: Channel) -> None:
    first = channel.publish({"id": "K", "n": 1}, headers={"Idempotency-Key": "retry-1"})
    again = channel.publish({"id": "K", "n": 1}, headers={"Idempotency-Key": "retry-1"})
    assert first.status_code == again.status_code == 202
    assert again.json()["messages"][0]["id"] == first.json()["messages"][0]["id"]
    assert again.json()["messages"][0]["duplicate"] is True
    with channel.hub.client(channel.producer_key) as client:
        batch = client.post(
            f"/topics/{channel.topic}/messages",
            json={
                "messages": [
                    {"value": {"id": "L", "n": 1}, "idempotency_key": "m-1"},
                    {"value": {"id": "L", "n": 2}, "idempotency_key": "m-1"},
                ]
            },
        )
    ids = [m["id"] for m in batch.json()["messages"]]
    assert ids[0] == ids[1] and batch.json()["messages"][1]["duplicate"] is True
    wait_until(lambda: len(channel.inbox.delivered()) == 2, what="the two distinct messages")
    assert sorted(a.value["n"] for a in channel.inbox.delivered()) == [1, 1]


@pytest.mark.parametrize(
    ("body", "status", "kind"),
    [
        (b"{not json", 400, "malformed-json"),
        (b'{"messages": {"value": 1}}', 400, "malformed-batch"),
        (b'{"messages": []}', 400, "malformed-batch"),
        (b'{"something": 1}', 400, "malformed-batch"),
        (b'{"messages": [{"valeur": {}}]}', 400, "malformed-message"),
        (b'{"value": {"id": "' + b"x" * 600 + b'", "n": 1}}', 413, "message-too-large"),
        (b'{"value": ' + b"[" * 100 + b"]" * 100 + b"}", 400, "too-deep"),
        # PostgreSQL cannot store NUL in text: refused, not a 503 from the database.
        (b'{"value": {"id": "a\\u0000b", "n": 1}}', 422, "schema-violation"),
        (
            b'{"messages": [{"value": {"id": "a", "n": 1}, "idempotency_key": "k\\u0000"}]}',
            400,
            "malformed-message",
        ),
    ],
)
def test_bad_input_gets_a_clear_problem(
    channel: Channel, body: bytes, status: int, kind: str
) -> None:
    with channel.hub.client(channel.producer_key) as client:
        answer = client.post(
            f"/topics/{channel.topic}/messages",
            content=body,
            headers={"content-type": "application/json"},
        )
    assert answer.status_code == status, answer.text
    assert answer.json()["type"].endswith(kind)
    assert answer.json()["request_id"] == answer.headers["x-request-id"]


def test_who_may_publish(channel: Channel) -> None:
    with channel.hub.client(channel.subscriber_key) as client:
        refused = client.post(
            f"/topics/{channel.topic}/messages", json={"value": {"id": "X", "n": 1}}
        )
        unknown = client.post("/topics/no.such-topic/messages", json={"value": {}})
    with channel.hub.client() as anonymous:
        anonymous_answer = anonymous.post(f"/topics/{channel.topic}/messages", json={"value": {}})
    assert refused.status_code == 403 and refused.json()["type"].endswith("not-a-publisher")
    assert unknown.status_code == 404 and unknown.json()["type"].endswith("unknown-topic")
    assert anonymous_answer.status_code == 401
    statuses = sorted(
        r["hub_status"] for r in audit_records(channel.hub, kind="publish", topic=channel.topic)
    )
    assert statuses == [401, 403]


def test_wrong_media_type_is_415(channel: Channel) -> None:
    with channel.hub.client(channel.producer_key) as client:
        answer = client.post(
            f"/topics/{channel.topic}/messages",
            content=b"id=1",
            headers={"content-type": "text/plain"},
        )
    assert answer.status_code == 415


def test_retention_forgets_old_messages_and_their_idempotency_keys(channel: Channel) -> None:
    from sqlalchemy import text

    old = channel.publish({"id": "OLD", "n": 1}, headers={"Idempotency-Key": "old-1"})
    newer = channel.publish({"id": "OLD", "n": 2})
    assert old.status_code == newer.status_code == 202
    wait_until(  # relayed: in the broker's log
        lambda: len(channel.inbox.delivered()) == 2, what="both messages delivered"
    )
    old_id = old.json()["messages"][0]["id"]
    engine = channel.hub.hub.runtime.engine
    long_ago_ms = int((time.time() - 200 * 3600) * 1000)  # beyond the default 168 h
    with engine.begin() as connection:
        connection.execute(
            text("UPDATE message SET created_at = :t WHERE id = :id"),
            {"t": datetime.now(UTC) - timedelta(hours=200), "id": old_id},
        )
        connection.execute(
            text("UPDATE broker_log SET timestamp_ms = :t WHERE message_id = :id"),
            {"t": long_ago_ms, "id": old_id},
        )
    channel.hub.hub.runtime.relay.retain()
    with engine.connect() as connection:
        kept = {r[0] for r in connection.execute(text("SELECT message_id FROM broker_log"))}
        stored = {r[0] for r in connection.execute(text("SELECT id FROM message"))}
    assert old_id not in kept and old_id not in stored
    assert newer.json()["messages"][0]["id"] in kept  # younger: kept
    again = channel.publish({"id": "OLD", "n": 1}, headers={"Idempotency-Key": "old-1"})
    assert again.json()["messages"][0]["duplicate"] is False  # the key was forgotten with it
