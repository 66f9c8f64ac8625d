"""The document-management simulator over real HTTP: two agencies' desks exchange an edXML
document and its status packets through a fake hub, the test carrying pushes as the hub would."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from simulators.documents import (
    DEMO_DESKS,
    DEMO_STP_SECRET,
    DEMO_UBND_SECRET,
    DOCUMENTS_TOPIC,
    STATUS_TOPIC,
    Desk,
    create_app,
)
from simulators.server import run_in_thread
from tests.integration.simulators.fakes import (
    FakeHub,
    Published,
    contract_errors,
    push,
    stale,
)
from tests.wait import wait_until

UBND, STP = "000.00.12.H12", "000.00.15.H12"
KEYS = {UBND: "qlvb-ubnd-key", STP: "qlvb-stp-key"}
SECRETS = {UBND: DEMO_UBND_SECRET, STP: DEMO_STP_SECRET}


@pytest.fixture
def setup() -> Iterator[tuple[FakeHub, httpx.Client]]:
    fake = FakeHub(api_keys=set(KEYS.values()))
    desks = [
        Desk(
            code=d.code,
            name=d.name,
            notation=d.notation,
            signer=d.signer,
            webhook_secret=d.webhook_secret,
            hub_api_key=KEYS[d.code],
        )
        for d in DEMO_DESKS
    ]
    with run_in_thread(fake.app()) as hub_url:
        with (
            run_in_thread(create_app(desks=desks, hub_url=hub_url)) as url,
            httpx.Client(base_url=url, timeout=10) as http,
        ):
            yield fake, http


def document(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "To": [{"OrganId": STP, "OrganName": "Sở Tư pháp tỉnh Lai Châu"}],
        "Subject": "V/v rà soát thủ tục đăng ký khai sinh liên thông",
        "DueDate": "20251215",
    }
    body.update(overrides)
    return body


def published(fake: FakeHub, topic: str, count: int) -> list[Published]:
    wait_until(
        lambda: len([p for p in fake.published if p.topic == topic]) >= count,
        timeout=10,
        interval=0.02,
        what=f"{count} on {topic}",
    )
    return [p for p in fake.published if p.topic == topic]


def deliver(http: httpx.Client, message: Published, desk: str, kind: str) -> httpx.Response:
    """What the hub does for a push subscription: POST the message, signed, to the desk."""
    return push(
        http,
        f"/webhooks/{desk}/{kind}",
        message.value,
        SECRETS[desk],
        msg_id=message.message_id,
        topic=message.topic,
    )


def test_a_document_goes_out_and_its_statuses_come_back(
    setup: tuple[FakeHub, httpx.Client],
) -> None:
    fake, http = setup
    sent = http.post(f"/api/{UBND}/van-ban-di", json=document())
    assert sent.status_code == 201, sent.text
    envelope = sent.json()["edXML"]
    doc_id = sent.json()["DocumentId"]
    today = envelope["PromulgationInfo"]["PromulgationDate"]
    assert doc_id == f"{UBND},{today},1/UBND-VX"
    assert envelope["From"] == {"OrganId": UBND, "OrganName": "Văn phòng UBND tỉnh Lai Châu"}

    [out] = published(fake, DOCUMENTS_TOPIC, 1)
    assert out.value == envelope
    assert out.api_key == KEYS[UBND]
    assert contract_errors("edxml.envelope", out.value) == []

    # The hub pushes the document to the Department of Justice: in the book, 01 and 03 back.
    taken = deliver(http, out, STP, "van-ban")
    assert taken.status_code == 200, taken.text
    assert taken.json()["SoDen"] == 1
    [incoming] = http.get(f"/api/{STP}/van-ban-den").json()["items"]
    assert (incoming["DocumentId"], incoming["webhook_id"]) == (doc_id, out.message_id)
    arrived, accepted = published(fake, STATUS_TOPIC, 2)
    assert (arrived.value["StatusCode"], accepted.value["StatusCode"]) == ("01", "03")
    assert arrived.api_key == KEYS[STP]
    assert arrived.value["ResponseFor"] == {
        "OrganId": UBND,
        "Code": "1/UBND-VX",
        "PromulgationDate": today,
        "DocumentId": doc_id,
    }
    assert arrived.value["From"]["OrganId"] == STP
    for packet in (arrived, accepted):
        assert contract_errors("edxml.status", packet.value) == []

    # The officer finishes the work: 06 goes out too.
    done = http.post(
        f"/api/{STP}/van-ban-den/1/trang-thai",
        json={"StatusCode": "06", "StaffInfo": {"Department": "Phòng HCTP", "Staff": "Lò Thị A"}},
    )
    assert done.status_code == 202, done.text
    *_, finished = published(fake, STATUS_TOPIC, 3)
    assert finished.value["StatusCode"] == "06"
    assert finished.value["StaffInfo"]["Staff"] == "Lò Thị A"

    # The hub pushes the statuses back to the sender, who keeps them per recipient.
    for packet in published(fake, STATUS_TOPIC, 3):
        assert deliver(http, packet, UBND, "trang-thai").status_code == 200
    [mine] = http.get(f"/api/{UBND}/van-ban-di").json()["items"]
    assert [s["StatusCode"] for s in mine["TrangThai"][STP]] == ["01", "03", "06"]
    assert mine["publication"]["state"] == "accepted"
    assert mine["publication"]["message_id"] == out.message_id


def test_each_desk_ignores_what_is_not_its_own(setup: tuple[FakeHub, httpx.Client]) -> None:
    fake, http = setup
    http.post(f"/api/{UBND}/van-ban-di", json=document())
    [out] = published(fake, DOCUMENTS_TOPIC, 1)
    # Every desk subscribes to edxml.documents: the sender gets its own document back.
    answer = deliver(http, out, UBND, "van-ban")
    assert answer.json()["ignored"] == f"not addressed to {UBND}"
    assert http.get(f"/api/{UBND}/van-ban-den").json()["total"] == 0
    deliver(http, out, STP, "van-ban")
    [arrived, _] = published(fake, STATUS_TOPIC, 2)
    answer = deliver(http, arrived, STP, "trang-thai")  # about UBND's document, not STP's
    assert answer.json()["ignored"] == f"about a document of {UBND}"


def test_a_document_pushed_twice_is_registered_once(setup: tuple[FakeHub, httpx.Client]) -> None:
    fake, http = setup
    http.post(f"/api/{UBND}/van-ban-di", json=document())
    [out] = published(fake, DOCUMENTS_TOPIC, 1)
    first, again = deliver(http, out, STP, "van-ban"), deliver(http, out, STP, "van-ban")
    assert again.json() == {**first.json(), "duplicate": True}
    assert http.get(f"/api/{STP}/van-ban-den").json()["total"] == 1
    published(fake, STATUS_TOPIC, 2)
    assert len(fake.values(STATUS_TOPIC)) == 2  # no second 01/03 pair


@pytest.mark.parametrize("kind", ["van-ban", "trang-thai"])
def test_pushes_are_verified_with_the_desks_own_secret(
    setup: tuple[FakeHub, httpx.Client], kind: str
) -> None:
    fake, http = setup
    http.post(f"/api/{UBND}/van-ban-di", json=document())
    [out] = published(fake, DOCUMENTS_TOPIC, 1)
    wrong_desk = push(http, f"/webhooks/{STP}/{kind}", out.value, DEMO_UBND_SECRET)
    too_old = push(http, f"/webhooks/{STP}/{kind}", out.value, DEMO_STP_SECRET, at=stale())
    assert (wrong_desk.status_code, too_old.status_code) == (401, 401)
    assert http.get(f"/api/{STP}/van-ban-den").json()["total"] == 0
    log = http.get("/_sim/webhooks").json()
    assert [e["outcome"] for e in log] == ["refused", "refused"]
    assert {e["endpoint"] for e in log} == {f"/webhooks/{STP}/{kind}"}


def test_a_refusal_needs_a_reason(setup: tuple[FakeHub, httpx.Client]) -> None:
    fake, http = setup
    http.post(f"/api/{UBND}/van-ban-di", json=document())
    [out] = published(fake, DOCUMENTS_TOPIC, 1)
    deliver(http, out, STP, "van-ban")
    path = f"/api/{STP}/van-ban-den/1/trang-thai"
    without = http.post(path, json={"StatusCode": "02"})
    assert without.status_code == 422
    assert [e["pointer"] for e in without.json()["errors"]] == ["/Description"]
    recall = http.post(path, json={"StatusCode": "13"})  # the sender's code, not the receiver's
    assert [e["pointer"] for e in recall.json()["errors"]] == ["/StatusCode"]
    refused = http.post(path, json={"StatusCode": "02", "Description": "Gửi nhầm cơ quan"})
    assert refused.status_code == 202
    packet = refused.json()["TrangThai"]
    assert packet["Description"] == "Gửi nhầm cơ quan"
    assert contract_errors("edxml.status", packet) == []


def test_sending_is_validated(setup: tuple[FakeHub, httpx.Client]) -> None:
    fake, http = setup
    bad = http.post(
        f"/api/{UBND}/van-ban-di",
        json=document(To=[{"OrganId": "12.H12", "OrganName": ""}], Subject="", DueDate="31/12"),
    )
    assert bad.status_code == 422
    assert {e["pointer"] for e in bad.json()["errors"]} == {
        "/To/0/OrganId",
        "/To/0/OrganName",
        "/Subject",
        "/DueDate",
    }
    assert http.post("/api/000.00.99.H12/van-ban-di", json=document()).status_code == 404
    assert http.post(f"/api/{STP}/van-ban-den/7/trang-thai", json={}).status_code == 404
    assert fake.calls == []


def test_numbers_are_per_desk_and_serial(setup: tuple[FakeHub, httpx.Client]) -> None:
    _, http = setup
    to_ubnd = document(To=[{"OrganId": UBND, "OrganName": "Văn phòng UBND tỉnh Lai Châu"}])
    codes = [
        http.post(f"/api/{UBND}/van-ban-di", json=document()).json()["edXML"]["Code"],
        http.post(f"/api/{UBND}/van-ban-di", json=document()).json()["edXML"]["Code"],
        http.post(f"/api/{STP}/van-ban-di", json=to_ubnd).json()["edXML"]["Code"],
    ]
    assert [f"{c['CodeNumber']}/{c['CodeNotation']}" for c in codes] == [
        "1/UBND-VX",
        "2/UBND-VX",
        "1/STP-HCTP",
    ]


def test_without_a_hub_documents_are_kept_but_not_sent() -> None:
    with run_in_thread(create_app()) as url, httpx.Client(base_url=url) as http:
        sent = http.post(f"/api/{UBND}/van-ban-di", json=document())
        assert sent.status_code == 201
        assert sent.json()["publication"] is None
        assert http.get("/_sim/published").json() == []
