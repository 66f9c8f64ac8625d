"""The civil-status system announcing birth registrations on civil.birth-registered, against a
fake hub on loopback."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from simulators import citizens
from simulators.civil_status import BIRTH_TOPIC, create_app
from simulators.server import run_in_thread
from tests.integration.simulators.fakes import FakeHub, contract_errors
from tests.integration.simulators.test_civil_status import CLIENT, birth
from tests.wait import wait_until

KEY = "ho-tich-consumer-key"
MOTHER = next(c for c in citizens.citizens() if c.gioi_tinh == 2 and c.ngay_sinh.year > 1985)


@pytest.fixture
def setup() -> Iterator[tuple[FakeHub, httpx.Client]]:
    fake = FakeHub(api_keys={KEY})
    with run_in_thread(fake.app()) as hub_url:
        app = create_app(hub_url=hub_url, hub_api_key=KEY)
        with run_in_thread(app) as url, httpx.Client(base_url=url, timeout=10) as http:
            token = http.post(
                "/oauth/token",
                data={
                    "grant_type": "client_credentials",
                    "client_id": CLIENT[0],
                    "client_secret": CLIENT[1],
                },
            ).json()["access_token"]
            http.headers["Authorization"] = f"Bearer {token}"
            yield fake, http


def test_a_registration_is_published_as_registered(setup: tuple[FakeHub, httpx.Client]) -> None:
    fake, http = setup
    created = http.post("/api/khai-sinh", json=birth(me_so_dinh_danh=MOTHER.so_dinh_danh))
    assert created.status_code == 201, created.text
    [published] = wait_until(
        lambda: fake.values(BIRTH_TOPIC),
        timeout=10,
        interval=0.02,
        what="the birth registration published",
    )
    assert published == created.json()
    assert contract_errors("ho-tich.khai-sinh", published) == []
    [call] = fake.calls
    assert call["api_key"] == KEY and call["key"]

    [listed] = wait_until(
        lambda: [p for p in http.get("/_sim/published").json() if p["state"] != "queued"],
        timeout=10,
        interval=0.02,
        what="the hub's answer to the publication, as the simulator lists it",
    )
    assert listed["topic"] == BIRTH_TOPIC
    assert listed["state"] == "accepted"
    assert listed["message_id"] == fake.published[0].message_id
    assert listed["idempotency_key"] == call["key"]


def test_a_refused_registration_publishes_nothing(setup: tuple[FakeHub, httpx.Client]) -> None:
    fake, http = setup
    refused = http.post("/api/khai-sinh", json=birth(gioi_tinh=3))
    assert refused.status_code == 422
    assert http.get("/_sim/published").json() == []
    assert fake.calls == []


def test_without_a_hub_nothing_is_published() -> None:
    with run_in_thread(create_app()) as url, httpx.Client(base_url=url) as http:
        assert http.get("/_sim/published").status_code == 404  # no outbox at all
