"""Push delivery and group reads, on the embedded broker (SQLite, PostgreSQL) and on Kafka.

Every test publishes through the hub's API and watches a real receiver on loopback; signatures
are verified with the Standard Webhooks reference library.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from standardwebhooks.webhooks import Webhook

from registry.models import RetrySchedule
from tests.conftest import RunningHub
from tests.integration.conftest import audit_records
from tests.integration.dripping import DrippingServer
from tests.integration.messaging.receiver import Channel, make_channel, running_receiver
from tests.wait import wait_until


@pytest.fixture(scope="module")
def receiver_url() -> Iterator[str]:
    yield from running_receiver()


@pytest.fixture
def channel(mhub: RunningHub, receiver_url: str) -> Iterator[Channel]:
    made = make_channel(mhub, receiver_url)
    yield made
    made.admin("DELETE", "")  # stops its delivery: the next tests share the hub


def delivering(channel: Channel) -> bool:
    """Whether the hub runs a delivery worker for the channel's subscription."""
    return channel.subscription in channel.hub.hub.runtime.delivery.workers


def retry_of(channel: Channel) -> RetrySchedule:
    """The retry schedule the hub's delivery uses for the channel's subscription."""
    return channel.hub.hub.runtime.snapshot.subscriptions[channel.subscription].retry


def test_push_is_signed_and_keeps_order_per_key(channel: Channel) -> None:
    keys = ["HS-A", "HS-B", "HS-C"]
    for batch in range(4):
        values = [{"id": k, "n": batch * 10 + i} for i in range(5) for k in keys]
        assert channel.publish(*values).status_code == 202
    wait_until(lambda: len(channel.inbox.delivered()) == 60, what="all 60 messages delivered")
    assert channel.secret is not None  # a push subscription is given its signing secret
    hook = Webhook(channel.secret)
    for arrival in channel.inbox.delivered():
        assert hook.verify(arrival.body, arrival.headers) == arrival.value
        assert arrival.headers["x-lgsp-topic"] == channel.topic
    for key in keys:
        ns = [a.value["n"] for a in channel.inbox.delivered() if a.value["id"] == key]
        assert ns == sorted(ns) and len(ns) == 20


def test_retries_keep_the_webhook_id_and_each_attempt_is_recorded(channel: Channel) -> None:
    channel.inbox.fail_first = 2
    message_id = channel.publish({"id": "R", "n": 1}).json()["messages"][0]["id"]
    wait_until(channel.inbox.delivered, what="the message delivered (third attempt)")
    attempts = [a for a in channel.inbox.arrivals if a.headers["webhook-id"] == message_id]
    assert [a.headers["x-test-answered"] for a in attempts] == ["503", "503", "200"]
    assert [a.headers["x-lgsp-attempt"] for a in attempts] == ["1", "2", "3"]
    records = wait_until(
        lambda: (
            (r := audit_records(channel.hub, kind="delivery", message_id=message_id))
            and len(r) == 3
            and r
        ),
        what="three delivery attempts recorded",
    )
    assert sorted((r["attempts"], r["provider_status"]) for r in records) == [
        (1, 503), (2, 503), (3, 200),
    ]  # fmt: skip
    assert {r["subscription"] for r in records} == {channel.subscription}


def test_a_failing_key_waits_while_other_keys_flow(channel: Channel) -> None:
    channel.inbox.failing = {"BAD"}
    # 30 retries at 0.05 s: the BAD key stays blocked for the whole test.
    changed = channel.admin(
        "PATCH", "", json={"retry": {"delays": [0.05], "jitter": 0, "max_attempts": 100}}
    )
    assert changed.status_code == 200, changed.text
    wait_until(
        lambda: retry_of(channel).max_attempts == 100, what="the new retry schedule in delivery"
    )
    assert (
        channel.publish(
            {"id": "BAD", "n": 1},
            {"id": "GOOD", "n": 1},
            {"id": "BAD", "n": 2},
            {"id": "GOOD", "n": 2},
        ).status_code
        == 202
    )
    wait_until(
        lambda: [a.value["n"] for a in channel.inbox.delivered()] == [1, 2],
        what="the GOOD key's two messages delivered",
    )
    assert all(a.value["id"] == "GOOD" for a in channel.inbox.delivered())
    channel.inbox.failing = set()
    wait_until(lambda: len(channel.inbox.delivered()) == 4, what="the BAD key's messages too")
    bad = [a.value["n"] for a in channel.inbox.delivered() if a.value["id"] == "BAD"]
    assert bad == [1, 2]


def test_failing_forever_dead_letters_and_redelivery_is_idempotent(channel: Channel) -> None:
    channel.inbox.status = 500
    message_id = channel.publish({"id": "D", "n": 1}).json()["messages"][0]["id"]
    (letter,) = wait_until(
        lambda: channel.admin("GET", "/dead-letters").json()["items"], what="a dead letter"
    )
    assert letter["message_id"] == message_id and letter["attempts"] == 5
    assert letter["topic"] == channel.topic and letter["offset"] >= 0
    assert "500" in letter["first_error"] and "5 attempts" in letter["reason"]
    # The key is not blocked by its dead letter.
    channel.inbox.status = 200
    channel.publish({"id": "D", "n": 2})
    wait_until(
        lambda: [a.value["n"] for a in channel.inbox.delivered()] == [2],
        what="the key's next message delivered past its dead letter",
    )
    first = channel.admin("POST", f"/dead-letters/{letter['id']}/redeliver")
    again = channel.admin("POST", f"/dead-letters/{letter['id']}/redeliver")
    assert first.status_code == 200 and again.status_code == 200
    wait_until(lambda: len(channel.inbox.delivered()) == 2, what="the dead letter redelivered")
    assert channel.inbox.delivered()[1].headers["webhook-id"] == message_id
    done = wait_until(
        lambda: channel.admin("GET", "/dead-letters", params={"state": "redelivered"}).json()[
            "items"
        ],
        what="the dead letter marked redelivered",
    )
    assert done[0]["state"] == "redelivered" and done[0]["redeliveries"] == 1
    # Both requests were answered, yet it was requeued once (redeliveries 1) and is redelivered:
    # no requeued dead letter is left for delivery to push again. So: one push answered 200.
    assert len([a for a in channel.inbox.arrivals if a.headers["webhook-id"] == message_id
                and a.headers["x-test-answered"] == "200"]) == 1  # fmt: skip


def test_gone_disables_the_subscription_until_resumed(channel: Channel) -> None:
    channel.inbox.status = 410
    channel.publish({"id": "G", "n": 1})
    wait_until(
        lambda: channel.admin("GET", "").json()["status"] == "disabled",
        what="the subscription disabled by the 410",
    )
    assert "410" in channel.admin("GET", "").json()["status_reason"]
    wait_until(lambda: not delivering(channel), what="the subscription's delivery stopped")
    channel.inbox.status = 200
    channel.publish({"id": "G", "n": 2})
    wait_until(lambda: channel.in_log() >= 2, what="both messages in the topic's log")
    assert not delivering(channel)
    assert channel.inbox.delivered() == []
    assert channel.admin("POST", "/resume").status_code == 200
    wait_until(
        lambda: [a.value["n"] for a in channel.inbox.delivered()] == [1, 2],
        what="both messages delivered once resumed",
    )


def test_a_slow_receiver_times_out_and_is_retried(mhub: RunningHub, receiver_url: str) -> None:
    channel = make_channel(
        mhub, receiver_url, retry={"delays": [0.05], "jitter": 0, "max_attempts": 5, "timeout": 0.3}
    )
    channel.inbox.delay = 0.6
    message_id = channel.publish({"id": "S", "n": 1}).json()["messages"][0]["id"]
    wait_until(lambda: channel.inbox.attempts.get(message_id, 0) >= 2, what="a second attempt")
    channel.inbox.delay = 0
    wait_until(
        lambda: any(
            r["provider_status"] == 200
            for r in audit_records(mhub, kind="delivery", message_id=message_id)
        ),
        what="a delivery answered 200 recorded",
    )
    records = audit_records(mhub, kind="delivery", message_id=message_id)
    late = "the receiver did not answer within the attempt deadline of 0.3 s"
    assert any(r["hub_status"] == 504 and r["error"] == late for r in records)


def test_a_dripping_receiver_times_out_at_the_attempt_deadline_and_is_retried(
    mhub: RunningHub, dripping: DrippingServer, unique: Callable[[str], str]
) -> None:
    """The receiver sends its answer a byte at a time: no read waits long, but the attempt
    (the subscription's retry.timeout) has a deadline for the whole answer."""
    key = unique("hook")
    channel = make_channel(
        mhub,
        dripping.url,
        path=f"/drip/{key}/0/2",  # two dripped answers, then 200 at once
        retry={"delays": [0.05], "jitter": 0, "max_attempts": 5, "timeout": 0.5},
    )
    message_id = channel.publish({"id": "D", "n": 1}).json()["messages"][0]["id"]
    records = wait_until(
        lambda: (
            (r := audit_records(mhub, kind="delivery", message_id=message_id)) and len(r) == 3 and r
        ),
        what="three delivery attempts recorded",
    )
    by_attempt = {r["attempts"]: r for r in records}
    late = "the receiver did not finish its answer within the attempt deadline of 0.5 s"
    for attempt in (1, 2):
        record = by_attempt[attempt]
        assert (record["hub_status"], record["provider_status"]) == (504, None)
        assert record["error"] == late
        assert record["details"]["outcome"] == "retry"
        assert record["latency_us"] < (0.5 + 3) * 1_000_000
    assert (by_attempt[3]["hub_status"], by_attempt[3]["error"]) == (200, None)
    assert dripping.keys[key].calls == 3
    wait_until(lambda: dripping.keys[key].cut == 2, what="the receiver to see both drips cut")
    channel.admin("DELETE", "")


def test_pause_resume_and_replay(channel: Channel) -> None:
    assert channel.admin("POST", "/pause").status_code == 200
    assert not delivering(channel)  # a registry change is live before its answer
    channel.publish({"id": "P", "n": 1}, {"id": "P", "n": 2})
    wait_until(lambda: channel.in_log() >= 2, what="both messages in the topic's log")
    assert not delivering(channel)
    assert channel.inbox.delivered() == []
    assert channel.admin("POST", "/resume").status_code == 200
    wait_until(lambda: len(channel.inbox.delivered()) == 2, what="both messages once resumed")
    first_ids = [a.headers["webhook-id"] for a in channel.inbox.delivered()]
    assert channel.admin("POST", "/replay", json={"offset": 0}).status_code == 200
    wait_until(
        lambda: (
            len([a for a in channel.inbox.arrivals if a.headers["x-test-answered"] == "200"]) == 4
        ),
        what="both messages delivered again by the replay",
    )
    again = [a.headers["webhook-id"] for a in channel.inbox.arrivals][2:]
    assert again == first_ids
    actions = {
        r["action"] for r in audit_records(channel.hub, kind="registry_change")
        if r["object_key"] == channel.subscription
    }  # fmt: skip
    assert {"pause", "resume", "replay"} <= actions


def test_a_group_reads_and_commits(mhub: RunningHub, receiver_url: str) -> None:
    channel = make_channel(mhub, receiver_url, delivery="group")
    channel.publish(*[{"id": f"B{i}", "n": i} for i in range(5)])

    got_request_id: list[str] = []

    def read() -> dict[str, Any]:
        with mhub.client(channel.subscriber_key) as client:
            answer = client.get(
                f"/subscriptions/{channel.subscription}/messages", params={"wait": 1}
            )
        assert answer.status_code == 200, answer.text
        got_request_id[:] = [answer.headers["x-request-id"]]
        page: dict[str, Any] = answer.json()
        return page

    got = wait_until(
        lambda: (page := read()) and len(page["messages"]) == 5 and page,
        what="a read handing over all 5 messages",
    )
    first_read = list(got_request_id)
    assert sorted(m["value"]["n"] for m in got["messages"]) == [0, 1, 2, 3, 4]
    assert read()["messages"], "uncommitted messages come back"
    with mhub.client(channel.subscriber_key) as client:
        committed = client.post(
            f"/subscriptions/{channel.subscription}/positions", json={"positions": got["next"]}
        )
        beyond = client.post(
            f"/subscriptions/{channel.subscription}/positions", json={"positions": {"0": 10**6}}
        )
        other = client.get(f"/subscriptions/{channel.subscription}/messages")
    assert committed.status_code == 200, committed.text
    assert beyond.status_code == 422 and beyond.json()["errors"][0]["pointer"] == "/positions/0"
    assert other.status_code == 200 and other.json()["messages"] == []
    with mhub.client(channel.producer_key) as client:
        stranger = client.get(f"/subscriptions/{channel.subscription}/messages")
    assert stranger.status_code == 404
    # A read that hands messages over is recorded with their ids; one that finds nothing new
    # (an idle reader polls all day) leaves no record; the refused one does.
    [handed] = audit_records(mhub, request_id=first_read[0])
    assert sorted(handed["details"]["read"]) == sorted(m["id"] for m in got["messages"])
    assert audit_records(mhub, request_id=other.headers["x-request-id"]) == []
    [refused] = audit_records(mhub, request_id=stranger.headers["x-request-id"])
    assert refused["hub_status"] == 404


def test_a_partition_that_is_not_a_plain_number_is_refused_and_recorded(
    mhub: RunningHub, receiver_url: str
) -> None:
    """A partition "²" is a digit to str.isdigit, not a partition number: 400, not a 500."""
    channel = make_channel(mhub, receiver_url, delivery="group")
    try:
        with mhub.client(channel.subscriber_key) as client:
            answer = client.post(
                f"/subscriptions/{channel.subscription}/positions", json={"positions": {"²": 1}}
            )
        assert answer.status_code == 400, answer.text
        assert answer.json()["type"].endswith("malformed-positions")
        assert answer.json()["errors"][0]["pointer"] == "/positions"
        [refused] = audit_records(mhub, request_id=answer.headers["x-request-id"])
        assert refused["hub_status"] == 400 and refused["subscription"] == channel.subscription
    finally:
        channel.admin("DELETE", "")
