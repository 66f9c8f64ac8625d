"""The simulators' outbox against a real (fake) hub on loopback: in order, retried with the same
Idempotency-Key through 503s, 429s and an outage, refusals recorded and passed over."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import httpx
import pytest

from simulators.publisher import ACCEPTED, QUEUED, REFUSED, Publisher
from simulators.server import run_in_thread
from tests.integration.simulators.fakes import FakeHub
from tests.wait import wait_until_async

KEY = "consumer-key-of-the-test"


@pytest.fixture
def hub() -> Iterator[tuple[FakeHub, str]]:
    fake = FakeHub(api_keys={KEY})
    with run_in_thread(fake.app()) as url:
        yield fake, url


async def _settle(publisher: Publisher) -> None:
    """Until every publication is taken or refused."""

    async def settled() -> bool:
        return all(p.state != QUEUED for p in publisher.publications)

    await wait_until_async(
        settled,
        timeout=10,
        interval=0.01,
        what="every publication taken or refused by the hub",
    )


def run(publisher: Publisher, *messages: tuple[str, dict[str, object]]) -> None:
    """Publish `messages` from a running outbox and wait until each is taken or refused."""

    async def main() -> None:
        async with publisher.running():
            for topic, value in messages:
                publisher.publish(topic, value)
            await _settle(publisher)

    asyncio.run(main())


def test_messages_reach_the_hub_in_order_with_key_and_idempotency_key(
    hub: tuple[FakeHub, str],
) -> None:
    fake, url = hub
    publisher = Publisher(hub_url=url, api_key=KEY)
    run(publisher, *(("dossier.status", {"MaHoSo": "H-1", "TrangThaiHoSo": s}) for s in (2, 4, 9)))
    assert [v["TrangThaiHoSo"] for v in fake.values("dossier.status")] == [2, 4, 9]
    assert all(c["api_key"] == KEY for c in fake.calls)
    keys = [c["key"] for c in fake.calls]
    assert len(set(keys)) == 3 and None not in keys
    assert [p.idempotency_key for p in publisher.publications] == keys
    assert all(p.state == ACCEPTED and p.attempts == 1 for p in publisher.publications)
    assert [p.message_id for p in publisher.publications] == [m.message_id for m in fake.published]


def test_a_503_is_retried_with_the_same_idempotency_key(hub: tuple[FakeHub, str]) -> None:
    fake, url = hub
    fake.fail_next = [(503, {}), (502, {})]
    publisher = Publisher(hub_url=url, api_key=KEY, retry_initial=0.01)
    run(publisher, ("civil.birth-registered", {"so_dang_ky": "KS-2025-03390-000001"}))
    assert [c["key"] for c in fake.calls] == [fake.calls[0]["key"]] * 3
    [publication] = publisher.publications
    assert (publication.state, publication.attempts) == (ACCEPTED, 3)
    assert publication.last_error is None
    assert len(fake.published) == 1


def test_a_lost_answer_retried_is_stored_once(hub: tuple[FakeHub, str]) -> None:
    """The hub took the message but the 202 never arrived: the retry is a no-op there."""
    fake, url = hub
    publisher = Publisher(hub_url=url, api_key=KEY, retry_initial=0.01)

    async def main() -> None:
        async with publisher.running(), httpx.AsyncClient() as client:
            first = publisher.publish("edxml.status", {"StatusCode": "01"})
            # What a lost answer looks like from here: send once ourselves, then let the
            # outbox send again with the same key.
            await client.post(
                f"{url}/topics/edxml.status/messages",
                json={"value": first.value},
                headers={"Idempotency-Key": first.idempotency_key, "X-API-Key": KEY},
            )
            await _settle(publisher)

    asyncio.run(main())
    [publication] = publisher.publications
    assert publication.state == ACCEPTED
    assert len(fake.published) == 1
    assert publication.message_id == fake.published[0].message_id


def test_retry_after_is_honoured(hub: tuple[FakeHub, str]) -> None:
    fake, url = hub
    fake.fail_next = [(429, {"Retry-After": "0.3"})]
    waits: list[float] = []

    async def sleep(seconds: float) -> None:
        waits.append(seconds)

    publisher = Publisher(hub_url=url, api_key=KEY, retry_initial=0.01, sleep=sleep)
    run(publisher, ("dossier.status", {"MaHoSo": "H-1", "TrangThaiHoSo": 2}))
    assert waits == [0.3]
    assert publisher.publications[0].state == ACCEPTED


def test_a_refusal_is_recorded_and_the_queue_moves_on(hub: tuple[FakeHub, str]) -> None:
    fake, url = hub
    problem = {"status": 422, "errors": [{"pointer": "/messages/0/value/MaHoSo", "message": "x"}]}
    fake.refuse["dossier.status"] = (422, problem)
    publisher = Publisher(hub_url=url, api_key=KEY)
    run(
        publisher,
        ("dossier.status", {"TrangThaiHoSo": 2}),
        ("civil.birth-registered", {"so_dang_ky": "KS-1"}),
    )
    refused, taken = publisher.publications
    assert (refused.state, refused.attempts, refused.problem) == (REFUSED, 1, problem)
    assert refused.last_error == "the hub answered 422"
    assert taken.state == ACCEPTED
    assert fake.values("civil.birth-registered") == [{"so_dang_ky": "KS-1"}]


def test_a_wrong_key_is_a_refusal_not_a_retry(hub: tuple[FakeHub, str]) -> None:
    fake, url = hub
    publisher = Publisher(hub_url=url, api_key="not-a-key")
    run(publisher, ("dossier.status", {"MaHoSo": "H-1", "TrangThaiHoSo": 2}))
    assert publisher.publications[0].state == REFUSED
    assert len(fake.calls) == 1


def test_messages_queued_while_the_hub_is_down_arrive_in_order_when_it_is_back() -> None:
    fake = FakeHub(api_keys={KEY})
    with run_in_thread(fake.app()) as url:
        port = int(url.rsplit(":", 1)[1])  # known free: the hub will come back on it
    publisher = Publisher(hub_url=url, api_key=KEY, retry_initial=0.01, retry_max=0.05)

    async def main() -> None:
        async with publisher.running():
            for status in (2, 4):
                publisher.publish("dossier.status", {"MaHoSo": "H-9", "TrangThaiHoSo": status})
            # Connection refused, retried:

            async def retried() -> bool:
                return publisher.publications[0].attempts >= 3

            await wait_until_async(retried, timeout=10, interval=0.01, what="three attempts")
            assert publisher.publications[0].state == QUEUED
            assert "ConnectError" in str(publisher.publications[0].last_error)
            assert publisher.publications[1].attempts == 0  # waits behind the first
            with run_in_thread(fake.app(), port=port):
                await _settle(publisher)

    asyncio.run(main())
    assert [v["TrangThaiHoSo"] for v in fake.values("dossier.status")] == [2, 4]
    assert all(p.state == ACCEPTED for p in publisher.publications)
