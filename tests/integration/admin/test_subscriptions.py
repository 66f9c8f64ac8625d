"""/admin/subscriptions: rules, write-only signing secrets, and the operator's actions (pause and
resume, rotation, replay, positions, dead letters), each an audit record."""

from __future__ import annotations

import base64
import json
import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlmodel import Session, select

from messaging.models import DeadLetter, DeadLetterState, LogEntry, Position
from registry.models import Subscription
from registry.types import SubscriptionStatus
from tests.integration import sealed
from tests.integration.admin.conftest import Registry, ok, problem
from tests.integration.admin.test_topics import rid, topic


def whsec(size: int = 32) -> str:
    return "whsec_" + base64.b64encode(secrets.token_bytes(size)).decode()


@dataclass
class World:
    """An agency with a consumer, a connector and a topic of its own."""

    agency: str
    consumer: str
    connector: str
    topic: str
    partitions: int


def unsubscribe(reg: Registry, topic: str) -> None:
    """Delete the topic's subscriptions: the session's hub then runs no delivery for them."""
    for found in ok(reg.client.get("/admin/subscriptions", params={"topic": topic})):
        reg.client.delete(f"/admin/subscriptions/{found['name']}")


@pytest.fixture
def world(reg: Registry) -> Iterator[World]:
    agency = reg.agency()
    made = topic(reg, agency, partitions=2)
    yield World(
        agency, reg.consumer(agency)["name"], reg.connector(agency)["name"], made["name"], 2
    )
    unsubscribe(reg, made["name"])


def push_body(reg: Registry, world: World, **fields: Any) -> dict[str, Any]:
    return {
        "name": reg.unique("sub"),
        "topic": world.topic,
        "consumer": world.consumer,
        "delivery": "push",
        "connector": world.connector,
        "path": "/hooks/ho-so",
        **fields,
    }


def group_body(reg: Registry, world: World, **fields: Any) -> dict[str, Any]:
    return {"name": reg.unique("sub"), "topic": world.topic, "consumer": world.consumer,
            "delivery": "group", **fields}  # fmt: skip


def create(reg: Registry, body: dict[str, Any]) -> dict[str, Any]:
    return dict(ok(reg.client.post("/admin/subscriptions", json=body), 201))


def stored(reg: Registry, name: str) -> Subscription:
    with Session(reg.hub.hub.runtime.engine) as session:
        return session.exec(select(Subscription).where(Subscription.name == name)).one()


def stored_secrets(reg: Registry, name: str) -> list[str]:
    return sealed.subscription_secrets(reg.hub.hub.runtime.engine, name)


def records(reg: Registry, headers: dict[str, str]) -> list[dict[str, Any]]:
    return reg.changes(request_id=headers["X-Request-Id"])


# ---------------------------------------------------------------- the registry object


def test_push_subscription_gets_a_secret_shown_once(reg: Registry, world: World) -> None:
    headers = rid()
    body = push_body(reg, world, filter={"pointer": "/TrangThai", "values": [3, 4]})
    answer = reg.client.post("/admin/subscriptions", json=body, headers=headers)
    created = ok(answer, 201)
    (secret,) = created["secrets"]
    assert secret.startswith("whsec_") and len(base64.b64decode(secret[6:])) == 24
    assert created["secrets_set"] == 1 and created["status"] == "active"
    assert created["filter"] == {"pointer": "/TrangThai", "values": [3, 4]}
    assert created["retry"]["max_attempts"] == 10 and created["replay_generation"] == 0
    assert stored_secrets(reg, body["name"]) == [secret]
    (record,) = records(reg, headers)
    assert (record["action"], record["object_type"], record["object_key"]) == (
        "create", "subscription", body["name"],
    )  # fmt: skip
    assert record["details"]["changes"]["secrets"] == [None, "(changed)"]

    name = body["name"]
    url = f"/admin/subscriptions/{name}"
    fetched = ok(reg.client.get(url))
    assert "secrets" not in fetched and fetched["secrets_set"] == 1
    listed = ok(reg.client.get("/admin/subscriptions", params={"topic": world.topic}))
    assert [s["name"] for s in listed] == [name]
    assert ok(reg.client.get("/admin/subscriptions", params={"topic": "no.such-topic"})) == []

    headers = rid()
    patch = {"path": "/v2/hooks", "filter": None, "retry": {"max_attempts": 3}}
    patched = ok(reg.client.patch(url, json=patch, headers=headers))
    assert patched["path"] == "/v2/hooks" and patched["filter"] is None
    assert patched["retry"]["max_attempts"] == 3 and patched["secrets_set"] == 1
    (record,) = records(reg, headers)
    assert record["details"]["changes"]["path"] == ["/hooks/ho-so", "/v2/hooks"]
    assert stored_secrets(reg, name) == [secret]  # a PATCH never touches the secrets

    seen = [reg.client.get(url).text, reg.client.get("/admin/subscriptions").text,
            reg.client.get("/admin/export").text, json.dumps(reg.changes())]  # fmt: skip
    assert not any(secret in text for text in seen)

    headers = rid()
    assert reg.client.delete(url, headers=headers).status_code == 204
    assert [r["action"] for r in records(reg, headers)] == ["delete"]
    problem(reg.client.get(url), 404)


def test_a_given_secret_is_kept(reg: Registry, world: World) -> None:
    given = [whsec(), whsec(24)]
    created = create(reg, push_body(reg, world, secrets=given))
    assert created["secrets_set"] == 2 and created["secrets"] == given
    assert stored_secrets(reg, created["name"]) == given
    url = f"/admin/subscriptions/{created['name']}"
    problem(reg.client.patch(url, json={"secrets": [whsec()]}), 422, "/secrets")


def test_group_subscription(reg: Registry, world: World) -> None:
    created = create(reg, group_body(reg, world))
    assert created["secrets"] is None and created["secrets_set"] == 0
    assert created["connector"] is None
    url = f"/admin/subscriptions/{created['name']}"
    problem(reg.client.patch(url, json={"connector": world.connector}), 422, "/connector")
    problem(reg.client.post(f"{url}/secrets"), 409)
    bad = group_body(reg, world, secrets=[whsec()])
    problem(reg.client.post("/admin/subscriptions", json=bad), 422, "/secrets")


@pytest.mark.parametrize(
    ("fields", "pointer"),
    [
        ({"name": "Sub One"}, "/name"),
        ({"topic": "Bad Topic"}, "/topic"),
        ({"topic": "no.such-topic"}, "/topic"),
        ({"consumer": "no-such-app-y1"}, "/consumer"),
        ({"delivery": "email"}, "/delivery"),
        ({"connector": None}, "/connector"),
        ({"connector": "no-such-connector-y1"}, "/connector"),
        ({"path": "hooks"}, "/path"),
        ({"secrets": ["not-a-webhook-secret"]}, "/secrets/0"),
        ({"secrets": [whsec(), "whsec_" + base64.b64encode(b"short").decode()]}, "/secrets/1"),
        ({"secrets": ["whsec_not base64!"]}, "/secrets/0"),
        ({"secrets": [whsec(65)]}, "/secrets/0"),
        ({"secrets": []}, "/secrets"),
        ({"filter": {"pointer": "TrangThai", "values": [1]}}, "/filter/pointer"),
        ({"filter": {"pointer": "/a~2b", "values": [1]}}, "/filter/pointer"),
        ({"filter": {"pointer": "", "values": [1]}}, "/filter/pointer"),
        ({"filter": {"pointer": "/TrangThai", "values": []}}, "/filter/values"),
        ({"retry": {"max_attempts": 0}}, "/retry/max_attempts"),
        ({"retry": {"delays": [-1]}}, "/retry/delays"),
        ({"colour": "red"}, "/colour"),
    ],
)  # fmt: skip
def test_subscription_field_rules(
    reg: Registry, world: World, fields: dict[str, Any], pointer: str
) -> None:
    problem(reg.client.post("/admin/subscriptions", json=push_body(reg, world, **fields)), 422,
            pointer)  # fmt: skip


def test_duplicate_subscription(reg: Registry, world: World) -> None:
    body = group_body(reg, world)
    create(reg, body)
    doc = problem(reg.client.post("/admin/subscriptions", json=body), 409)
    assert body["name"] in doc["detail"]


def test_who_may_subscribe_and_where_to(reg: Registry, world: World) -> None:
    """A consumer of another agency needs the owner's leave (topic.subscribers); a push goes
    only to a connector of the consumer's own agency."""
    other = reg.agency()
    outsider = reg.consumer(other)["name"]
    body = group_body(reg, world, consumer=outsider)
    doc = problem(reg.client.post("/admin/subscriptions", json=body), 403, "/consumer")
    assert "subscribers" in doc["detail"]
    ok(reg.client.patch(f"/admin/topics/{world.topic}", json={"subscribers": [outsider]}))
    create(reg, body)
    # The topic owner's connector is not the outsider's to push to.
    push = push_body(reg, world, consumer=outsider)
    problem(reg.client.post("/admin/subscriptions", json=push), 422, "/connector")
    create(reg, {**push, "connector": reg.connector(other)["name"]})


def test_topic_and_consumer_and_delivery_are_fixed(reg: Registry, world: World) -> None:
    name = create(reg, group_body(reg, world))["name"]
    url = f"/admin/subscriptions/{name}"
    for field, value in (("topic", "x.y"), ("consumer", world.consumer), ("delivery", "push")):
        problem(reg.client.patch(url, json={field: value}), 422, f"/{field}")


# ---------------------------------------------------------------- operator actions


def test_pause_and_resume_are_recorded(reg: Registry, world: World) -> None:
    name = create(reg, push_body(reg, world))["name"]
    url = f"/admin/subscriptions/{name}"
    headers = rid()
    paused = ok(reg.client.post(f"{url}/pause", json={"reason": "bảo trì"}, headers=headers))
    assert (paused["status"], paused["status_reason"]) == ("paused", "bảo trì")
    assert paused["status_changed_at"] is not None
    (record,) = records(reg, headers)
    assert record["action"] == "pause"
    assert record["details"]["changes"]["status"] == ["active", "paused"]
    # Pausing a paused one changes nothing, and records nothing.
    headers = rid()
    assert ok(reg.client.post(f"{url}/pause", headers=headers))["status"] == "paused"
    assert records(reg, headers) == []

    headers = rid()
    resumed = ok(reg.client.post(f"{url}/resume", headers=headers))
    assert (resumed["status"], resumed["status_reason"]) == ("active", None)
    assert [r["action"] for r in records(reg, headers)] == ["resume"]

    # A subscription disabled by a 410 Gone is re-enabled by resume.
    with Session(reg.hub.hub.runtime.engine) as session:
        row = session.exec(select(Subscription).where(Subscription.name == name)).one()
        row.status, row.status_reason = SubscriptionStatus.DISABLED, "410 Gone"
        session.add(row)
        session.commit()
    headers = rid()
    assert ok(reg.client.post(f"{url}/resume", headers=headers))["status"] == "active"
    (record,) = records(reg, headers)
    assert record["details"]["changes"]["status"] == ["disabled", "active"]
    problem(reg.client.post(f"{url}/pause", json={"colour": "red"}), 422, "/colour")
    problem(reg.client.post("/admin/subscriptions/no-such-sub-z1/pause"), 404)
    problem(reg.client.post("/admin/subscriptions/no-such-sub-z1/resume"), 404)


def test_secret_rotation_keeps_three_then_drops_the_previous(reg: Registry, world: World) -> None:
    created = create(reg, push_body(reg, world))
    name, first = created["name"], created["secrets"][0]
    url = f"/admin/subscriptions/{name}"
    issued = []
    for expected in (2, 3, 3):
        headers = rid()
        answer = ok(reg.client.post(f"{url}/secrets", headers=headers), 201)
        assert answer["secrets_set"] == expected and answer["secret"].startswith("whsec_")
        issued.append(answer["secret"])
        (record,) = records(reg, headers)
        assert record["action"] == "rotate-secret"
        assert record["details"]["changes"]["secrets"] == ["(hidden)", "(changed)"]
    assert stored_secrets(reg, name) == [
        issued[2],
        issued[1],
        issued[0],
    ]  # newest first

    headers = rid()
    dropped = ok(reg.client.delete(f"{url}/secrets/previous", headers=headers))
    assert dropped["secrets_set"] == 1
    assert stored_secrets(reg, name) == [issued[2]]
    (record,) = records(reg, headers)
    assert record["action"] == "drop-secrets"
    assert record["details"]["changes"] == {"secrets_set": [3, 1]}
    headers = rid()
    assert ok(reg.client.delete(f"{url}/secrets/previous", headers=headers))["secrets_set"] == 1
    assert records(reg, headers) == []

    text = json.dumps(reg.changes()) + reg.client.get(url).text
    assert not any(s in text for s in [first, *issued])
    problem(reg.client.post("/admin/subscriptions/no-such-sub-z2/secrets"), 404)


def test_replay_from_offsets(reg: Registry, world: World) -> None:
    name = create(reg, group_body(reg, world))["name"]
    url = f"/admin/subscriptions/{name}/replay"
    headers = rid()
    replayed = ok(reg.client.post(url, json={"offset": 0}, headers=headers))
    assert replayed == {"subscription": name, "replay_generation": 1,
                        "positions": {"0": 0, "1": 0}}  # fmt: skip
    (record,) = records(reg, headers)
    assert record["action"] == "replay"
    assert record["details"]["changes"]["replay_generation"] == [0, 1]
    assert record["details"]["changes"]["positions.1"][1] == 0

    replayed = ok(reg.client.post(url, json={"offsets": {"1": 5}}))
    assert replayed["replay_generation"] == 2 and replayed["positions"] == {"1": 5}
    with Session(reg.hub.hub.runtime.engine) as session:
        rows = session.exec(select(Position).where(Position.subscription == name)).all()
        assert sorted((r.partition, r.offset) for r in rows) == [(0, 0), (1, 5)]
    assert ok(reg.client.get(f"/admin/subscriptions/{name}"))["replay_generation"] == 2

    problem(reg.client.post(url, json={"offsets": {"2": 1}}), 422, "/offsets/2")
    problem(reg.client.post(url, json={"offsets": {"x": 1}}), 422, "/offsets/x")
    problem(reg.client.post(url, json={"offsets": {}}), 422, "/offsets")
    problem(reg.client.post(url, json={"offset": -1}), 422, "/offset")
    problem(reg.client.post(url, json={}), 422, "/offset")
    problem(reg.client.post(url, json={"offset": 1, "time": "2026-01-01T00:00:00Z"}), 422, "/time")
    problem(reg.client.post(url, json={"time": "yesterday"}), 422, "/time")
    problem(reg.client.post("/admin/subscriptions/no-such-sub-z3/replay", json={"offset": 0}), 404)
    assert ok(reg.client.get(f"/admin/subscriptions/{name}"))["replay_generation"] == 2


def _log(reg: Registry, topic: str, partition: int, times: list[datetime]) -> None:
    """Messages in the database backend's log, as the relay would have written them."""
    with Session(reg.hub.hub.runtime.engine) as session:
        for offset, when in enumerate(times):
            session.add(
                LogEntry(
                    topic=topic, partition=partition, offset=offset,
                    message_id=secrets.token_hex(16), key=f"k{offset}", value="{}",
                    timestamp_ms=int(when.timestamp() * 1000),
                )
            )  # fmt: skip
        session.commit()


def test_replay_from_a_time_and_positions_with_lag(reg: Registry, world: World) -> None:
    """Needs the runtime's broker (`database` backend: the log is the broker_log table)."""
    name = create(reg, group_body(reg, world))["name"]
    start = datetime(2026, 11, 24, 8, 0, tzinfo=UTC)
    _log(reg, world.topic, 0, [start + timedelta(minutes=m) for m in (0, 10, 20, 30)])
    _log(reg, world.topic, 1, [start + timedelta(minutes=m) for m in (5, 25)])

    headers = rid()
    when = (start + timedelta(minutes=15)).isoformat()
    replayed = ok(reg.client.post(f"/admin/subscriptions/{name}/replay", json={"time": when},
                                  headers=headers))  # fmt: skip
    assert replayed["positions"] == {"0": 2, "1": 1}
    (record,) = records(reg, headers)
    assert record["details"]["changes"]["from_time"] == [None, "2026-11-24T08:15:00+00:00"]

    found = ok(reg.client.get(f"/admin/subscriptions/{name}/positions"))
    assert found["topic"] == world.topic and found["replay_generation"] == 1
    assert found["partitions"] == [
        {"partition": 0, "position": 2, "end_offset": 4, "lag": 2},
        {"partition": 1, "position": 1, "end_offset": 2, "lag": 1},
    ]
    assert found["lag"] == 3
    # A time after the last message: every partition's end.
    later = (start + timedelta(days=1)).isoformat()
    replayed = ok(reg.client.post(f"/admin/subscriptions/{name}/replay", json={"time": later}))
    assert replayed["positions"] == {"0": 4, "1": 2}
    assert ok(reg.client.get(f"/admin/subscriptions/{name}/positions"))["lag"] == 0
    problem(reg.client.get("/admin/subscriptions/no-such-sub-z4/positions"), 404)


def _dead_letters(reg: Registry, world: World, subscription: str, count: int) -> list[int]:
    now = datetime.now(UTC)
    ids = []
    with Session(reg.hub.hub.runtime.engine) as session:
        for i in range(count):
            row = DeadLetter(
                subscription=subscription, message_id=secrets.token_hex(16), topic=world.topic,
                partition=i % world.partitions, offset=i, key=f"HS-{i}",
                value=json.dumps({"MaHoSo": f"HS-{i}", "TrangThai": 3}),
                reason="no success after 10 attempts", attempts=10,
                first_error="connect error", last_error="503 Service Unavailable",
                first_attempt_at=now - timedelta(hours=1), last_attempt_at=now,
            )  # fmt: skip
            session.add(row)
            session.flush()
            assert row.id is not None
            ids.append(row.id)
        session.commit()
    return ids


def dead_state(reg: Registry, dead_letter_id: int) -> str:
    with Session(reg.hub.hub.runtime.engine) as session:
        row = session.get(DeadLetter, dead_letter_id)
        assert row is not None
        return str(row.state)


def test_dead_letters_are_listed_and_redelivered_once(reg: Registry, world: World) -> None:
    name = create(reg, push_body(reg, world))["name"]
    url = f"/admin/subscriptions/{name}"
    # Paused, so that delivery leaves the requeued letters where the test can see them.
    ok(reg.client.post(f"{url}/pause"))
    first, second, third = _dead_letters(reg, world, name, 3)

    page = ok(reg.client.get(f"{url}/dead-letters", params={"limit": 2}))
    assert [d["id"] for d in page["items"]] == [first, second]
    assert page["counts"] == {"dead": 3, "requeued": 0, "redelivering": 0, "redelivered": 0}
    assert page["next_after_id"] == second
    item = page["items"][0]
    assert item["value"] == {"MaHoSo": "HS-0", "TrangThai": 3}
    assert (item["attempts"], item["first_error"], item["state"]) == (10, "connect error", "dead")
    rest = ok(reg.client.get(f"{url}/dead-letters", params={"limit": 2, "after_id": second}))
    assert [d["id"] for d in rest["items"]] == [third] and rest["next_after_id"] is None
    assert ok(reg.client.get(f"{url}/dead-letters/{third}"))["key"] == "HS-2"

    headers = rid()
    answer = ok(reg.client.post(f"{url}/dead-letters/{first}/redeliver", headers=headers))
    assert (answer["id"], answer["state"], answer["changed"]) == (first, "requeued", True)
    assert dead_state(reg, first) == DeadLetterState.REQUEUED
    (record,) = records(reg, headers)
    assert record["action"] == "redeliver" and record["object_key"] == name
    assert record["details"]["changes"]["state"] == ["dead", "requeued"]
    assert record["details"]["changes"]["dead_letter"] == [None, first]
    # Asking again is a no-op, and says so.
    headers = rid()
    again = ok(reg.client.post(f"{url}/dead-letters/{first}/redeliver", headers=headers))
    assert (again["changed"], again["state"]) == (False, "requeued")
    assert "already requeued" in again["detail"]
    assert records(reg, headers) == []

    listed = ok(reg.client.get(f"{url}/dead-letters", params={"state": "requeued"}))
    assert [d["id"] for d in listed["items"]] == [first]
    assert len(ok(reg.client.get(f"{url}/dead-letters", params={"state": "all"}))["items"]) == 3

    headers = rid()
    every = ok(reg.client.post(f"{url}/dead-letters/redeliver", headers=headers))
    assert every["requeued"] == 2
    (record,) = records(reg, headers)
    assert (record["action"], record["details"]["changes"]) == ("redeliver", {"requeued": [0, 2]})
    headers = rid()
    assert ok(reg.client.post(f"{url}/dead-letters/redeliver", headers=headers))["requeued"] == 0
    assert records(reg, headers) == []
    counts = ok(reg.client.get(f"{url}/dead-letters"))["counts"]
    assert counts == {"dead": 0, "requeued": 3, "redelivering": 0, "redelivered": 0}

    # Another subscription's letter, an unknown one, an unknown subscription: 404.
    other = create(reg, push_body(reg, world))["name"]
    problem(reg.client.post(f"/admin/subscriptions/{other}/dead-letters/{first}/redeliver"), 404)
    problem(reg.client.get(f"/admin/subscriptions/{other}/dead-letters/{first}"), 404)
    problem(reg.client.post(f"{url}/dead-letters/2147483647/redeliver"), 404)
    problem(reg.client.get("/admin/subscriptions/no-such-sub-z5/dead-letters"), 404)
    problem(reg.client.post("/admin/subscriptions/no-such-sub-z5/dead-letters/redeliver"), 404)
    problem(reg.client.get(f"{url}/dead-letters", params={"state": "lost"}), 422, "/query/state")
    problem(reg.client.get(f"{url}/dead-letters", params={"limit": 0}), 422, "/query/limit")
    problem(reg.client.post(f"{url}/dead-letters/0/redeliver"), 422)


def test_deleting_drops_positions_and_dead_letters(reg: Registry, world: World) -> None:
    body = push_body(reg, world)
    name = create(reg, body)["name"]
    url = f"/admin/subscriptions/{name}"
    ok(reg.client.post(f"{url}/pause"))
    ok(reg.client.post(f"{url}/replay", json={"offset": 7}))
    _dead_letters(reg, world, name, 2)
    headers = rid()
    assert reg.client.delete(url, headers=headers).status_code == 204
    (record,) = records(reg, headers)
    assert record["details"]["changes"] == {"positions": [2, 0], "dead_letters": [2, 0]}
    again = create(reg, body)
    assert again["replay_generation"] == 0
    assert ok(reg.client.get(f"{url}/dead-letters", params={"state": "all"}))["items"] == []


def test_integrators_act_on_their_consumers_subscriptions(reg: Registry, world: World) -> None:
    mine = create(reg, push_body(reg, world))["name"]
    other = reg.agency()
    outsider = reg.consumer(other)["name"]
    ok(reg.client.patch(f"/admin/topics/{world.topic}", json={"subscribers": [outsider]}))
    theirs = create(reg, group_body(reg, world, consumer=outsider))["name"]

    ours_key, their_key = (
        reg.principal("integrator", world.agency),
        reg.principal("integrator", other),
    )
    with reg.as_key(their_key) as client:
        url = f"/admin/subscriptions/{mine}"
        problem(client.get(url), 403)
        problem(client.patch(url, json={"description": "x"}), 403)
        problem(client.delete(url), 403)
        for action in ("pause", "resume", "secrets"):
            problem(client.post(f"{url}/{action}"), 403)
        problem(client.post(f"{url}/replay", json={"offset": 0}), 403)
        problem(client.get(f"{url}/dead-letters"), 403)
        problem(client.post(f"{url}/dead-letters/redeliver"), 403)
        problem(client.post(f"{url}/dead-letters/1/redeliver"), 403)
        problem(client.delete(f"{url}/secrets/previous"), 403)
        # Subscribing the owner's consumer, or pushing to the owner's connector: refused.
        problem(client.post("/admin/subscriptions", json=group_body(reg, world)), 403)
        assert [s["name"] for s in ok(client.get("/admin/subscriptions"))] == [theirs]
        assert ok(client.post(f"/admin/subscriptions/{theirs}/pause"))["status"] == "paused"
    with reg.as_key(ours_key) as client:
        # The topic's owner sees the subscriptions on its topic, and acts only on its own.
        listed = {s["name"] for s in ok(client.get("/admin/subscriptions"))}
        assert listed == {mine, theirs}
        assert ok(client.get(f"/admin/subscriptions/{theirs}"))["status"] == "paused"
        problem(client.post(f"/admin/subscriptions/{theirs}/resume"), 403)
        assert ok(client.post(f"/admin/subscriptions/{mine}/secrets"), 201)["secrets_set"] == 2
        ok(client.post(f"/admin/subscriptions/{mine}/replay", json={"offset": 0}))
