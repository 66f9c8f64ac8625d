"""The national portal receiving dossier.status pushes over real HTTP: signatures, duplicates,
stale timestamps, per-dossier history."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from simulators.portal import DEMO_WEBHOOK_SECRET, WEBHOOK_PATH, create_app
from simulators.server import run_in_thread
from tests.integration.simulators.fakes import push, signed_headers, stale

OTHER_SECRET = "whsec_" + "QUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFB"  # base64 of 24 x "A"


@pytest.fixture(scope="module")
def base_url() -> Iterator[str]:
    with run_in_thread(create_app()) as url:
        yield url


@pytest.fixture
def http(base_url: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=base_url, timeout=10) as client:
        client.delete("/_sim/received")
        client.delete("/_sim/webhooks")
        yield client


def update(code: str = "H12.99-251124-0001", status: int = 4, **more: Any) -> dict[str, Any]:
    return {"MaHoSo": code, "TrangThaiHoSo": status, "ThoiDiemXuLy": "20251124080000", **more}


def test_a_signed_push_is_applied_to_the_dossiers_history(http: httpx.Client) -> None:
    sent = update(NoiDungXuLy="Chuyển phòng chuyên môn")
    answer = push(http, WEBHOOK_PATH, sent, DEMO_WEBHOOK_SECRET, msg_id="m-1", attempt=1)
    assert answer.status_code == 200, answer.text
    assert answer.json() == {
        "webhook_id": "m-1",
        "duplicate": False,
        "error_code": 0,
        "message": "Thành công",
        "MaHoSo": sent["MaHoSo"],
    }
    dossier = http.get(f"/_sim/ho-so/{sent['MaHoSo']}").json()
    assert dossier["TrangThaiHoSo"] == 4
    [change] = dossier["LichSu"]
    assert change["service"] == "CapNhatTienDoHoSoMC"
    assert change["webhook_id"] == "m-1"
    assert change["NoiDungXuLy"] == "Chuyển phòng chuyên môn"
    [logged] = http.get("/_sim/webhooks").json()
    assert logged["outcome"] == "applied"
    assert (logged["topic"], logged["subscription"], logged["attempt"]) == (
        "test.topic",
        "test-sub",
        1,
    )


def test_statuses_accumulate_in_arrival_order(http: httpx.Client) -> None:
    for status in (2, 4, 9, 10):
        answer = push(http, WEBHOOK_PATH, update(status=status), DEMO_WEBHOOK_SECRET)
        assert answer.status_code == 200
    dossier = http.get("/_sim/ho-so/H12.99-251124-0001").json()
    assert [c["TrangThaiHoSo"] for c in dossier["LichSu"]] == [2, 4, 9, 10]
    assert dossier["TrangThaiHoSo"] == 10
    assert [d["MaHoSo"] for d in http.get("/_sim/ho-so").json()] == ["H12.99-251124-0001"]


def test_a_duplicate_webhook_id_is_answered_200_and_applied_once(http: httpx.Client) -> None:
    first = push(http, WEBHOOK_PATH, update(), DEMO_WEBHOOK_SECRET, msg_id="m-dup", attempt=1)
    again = push(http, WEBHOOK_PATH, update(), DEMO_WEBHOOK_SECRET, msg_id="m-dup", attempt=2)
    assert first.status_code == again.status_code == 200
    assert again.json()["duplicate"] is True
    assert again.json()["MaHoSo"] == "H12.99-251124-0001"  # the first answer, repeated
    assert len(http.get("/_sim/ho-so/H12.99-251124-0001").json()["LichSu"]) == 1
    outcomes = [(e["outcome"], e["attempt"]) for e in http.get("/_sim/webhooks").json()]
    assert outcomes == [("applied", 1), ("duplicate", 2)]


@pytest.mark.parametrize(
    "case",
    [
        "wrong secret",
        "body changed after signing",
        "stale timestamp",
        "no signature",
        "malformed signature",
    ],
)
def test_a_push_that_fails_verification_is_refused_401(http: httpx.Client, case: str) -> None:
    # The reason is standardwebhooks' own sentence, whose words change between its releases:
    # the test holds the receiver to what it decides (401, nothing applied), not to that text.
    body = json.dumps(update())
    headers = signed_headers(DEMO_WEBHOOK_SECRET, body, msg_id="m-bad")
    if case == "wrong secret":
        headers = signed_headers(OTHER_SECRET, body, msg_id="m-bad")
    elif case == "body changed after signing":
        body = json.dumps(update(status=10))
    elif case == "stale timestamp":
        headers = signed_headers(DEMO_WEBHOOK_SECRET, body, msg_id="m-bad", at=stale())
    elif case == "no signature":
        del headers["webhook-signature"]
    elif case == "malformed signature":
        headers["webhook-signature"] = "v1"
    answer = http.post(WEBHOOK_PATH, content=body.encode(), headers=headers)
    assert answer.status_code == 401, answer.text
    assert answer.headers["content-type"] == "application/problem+json"
    problem = answer.json()
    assert problem["type"].endswith("/invalid-webhook")
    assert problem["detail"].startswith("the push failed Standard Webhooks verification: ")
    assert http.get("/_sim/ho-so").json() == []
    [logged] = http.get("/_sim/webhooks").json()
    assert (logged["outcome"], logged["status"]) == ("refused", 401)


def test_a_refused_id_is_not_remembered_as_applied(http: httpx.Client) -> None:
    """A forged push must not make the genuine one with the same id look like a duplicate."""
    forged = push(http, WEBHOOK_PATH, update(status=8), OTHER_SECRET, msg_id="m-x")
    genuine = push(http, WEBHOOK_PATH, update(status=4), DEMO_WEBHOOK_SECRET, msg_id="m-x")
    assert (forged.status_code, genuine.status_code) == (401, 200)
    assert genuine.json()["duplicate"] is False
    assert http.get("/_sim/ho-so/H12.99-251124-0001").json()["TrangThaiHoSo"] == 4


def test_during_a_rotation_any_matching_signature_is_accepted(http: httpx.Client) -> None:
    # The hub signs with every live secret (newest first); the portal still holds the old one.
    answer = push(http, WEBHOOK_PATH, update(), [OTHER_SECRET, DEMO_WEBHOOK_SECRET])
    assert answer.status_code == 200


def test_a_portal_configured_with_both_secrets_accepts_either() -> None:
    app = create_app(webhook_secrets=[OTHER_SECRET, DEMO_WEBHOOK_SECRET])
    with run_in_thread(app) as url, httpx.Client(base_url=url) as client:
        assert push(client, WEBHOOK_PATH, update(), OTHER_SECRET).status_code == 200
        assert push(client, WEBHOOK_PATH, update(), DEMO_WEBHOOK_SECRET).status_code == 200


def test_a_signed_push_that_is_not_a_status_update_is_422_and_not_applied(
    http: httpx.Client,
) -> None:
    answer = push(http, WEBHOOK_PATH, {"MaHoSo": "", "TrangThaiHoSo": 11}, DEMO_WEBHOOK_SECRET)
    assert answer.status_code == 422
    assert {e["pointer"] for e in answer.json()["errors"]} == {"/MaHoSo", "/TrangThaiHoSo"}
    assert http.get("/_sim/ho-so").json() == []


def test_the_session_api_and_pushes_share_the_history(http: httpx.Client) -> None:
    session = http.post(
        "/api/token", json={"username": "laichau-mc", "password": "matkhau-dvcqg"}
    ).json()["session"]
    http.post(
        "/api/CapNhatTienDoHoSoMC",
        json=update(status=2),
        headers={"Authorization": f"Bearer {session}"},
    )
    push(http, WEBHOOK_PATH, update(status=4), DEMO_WEBHOOK_SECRET)
    history = http.get("/_sim/ho-so/H12.99-251124-0001").json()["LichSu"]
    assert [(c["TrangThaiHoSo"], "webhook_id" in c) for c in history] == [(2, False), (4, True)]


def test_an_unknown_dossier_is_404(http: httpx.Client) -> None:
    assert http.get("/_sim/ho-so/H12.99-000000-9999").status_code == 404
