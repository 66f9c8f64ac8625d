"""The national portal simulator over real HTTP: session token, dossier sync and progress."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from simulators.portal import create_app
from simulators.server import run_in_thread

ACCOUNT = {"username": "laichau-mc", "password": "matkhau-dvcqg"}


@pytest.fixture(scope="module")
def base_url() -> Iterator[str]:
    with run_in_thread(create_app()) as url:
        yield url


@pytest.fixture
def http(base_url: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=base_url, timeout=10) as client:
        client.delete("/_sim/received")
        yield client


@pytest.fixture
def session(http: httpx.Client) -> str:
    answer = http.post("/api/token", json=ACCOUNT).json()
    assert answer["error_code"] == 0
    return str(answer["session"])


def dossier(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "MaHoSo": "H12.99-251123-0001",
        "MaTTHC": "1.001612",
        "ChuHoSo": "Lò Văn Minh",
        "NgayTiepNhan": "20251123091500",
        "NgayHenTra": "20251128091500",
        "TrangThaiHoSo": 2,
    }
    body.update(overrides)
    return body


def test_wrong_account_gets_no_session(http: httpx.Client) -> None:
    response = http.post("/api/token", json={**ACCOUNT, "password": "sai"})
    assert response.status_code == 401
    assert "session" not in response.json()


def test_sync_with_bearer_session(http: httpx.Client, session: str) -> None:
    response = http.post(
        "/api/DongBoHoSoMC", json=dossier(), headers={"Authorization": f"Bearer {session}"}
    )
    assert response.status_code == 200
    assert response.json()["error_code"] == 0
    [stored] = http.get("/_sim/received").json()
    assert stored["service"] == "DongBoHoSoMC"
    assert stored["item"] == dossier()
    assert len(stored["received_at"]) == 14


def test_sync_in_the_observed_envelope_with_session_in_body(
    http: httpx.Client, session: str
) -> None:
    body = {
        "session": session,
        "madonvi": "000.00.12.H12",
        "service": "DongBoHoSoMC",
        "isUpdating": "False",
        "data": [dossier(), dossier(MaHoSo="H12.99-251123-0002", TrangThaiHoSo="3")],
    }
    response = http.post("/api/DongBoHoSoMC", json=body)
    assert response.status_code == 200
    assert response.json()["count"] == 2
    received = http.get("/_sim/received").json()
    assert [r["item"]["MaHoSo"] for r in received] == ["H12.99-251123-0001", "H12.99-251123-0002"]


def test_progress_update(http: httpx.Client, session: str) -> None:
    update = {"MaHoSo": "H12.99-251123-0001", "TrangThaiHoSo": 4, "ThoiDiemXuLy": "20251124080000"}
    response = http.post(
        "/api/CapNhatTienDoHoSoMC", json=update, headers={"Authorization": f"Bearer {session}"}
    )
    assert response.status_code == 200
    [stored] = http.get("/_sim/received").json()
    assert stored == {
        "service": "CapNhatTienDoHoSoMC",
        "received_at": stored["received_at"],
        "item": update,
    }


@pytest.mark.parametrize("path", ["/api/DongBoHoSoMC", "/api/CapNhatTienDoHoSoMC"])
@pytest.mark.parametrize("session_header", [None, "Bearer made-up"])
def test_session_is_required(http: httpx.Client, path: str, session_header: str | None) -> None:
    headers = {"Authorization": session_header} if session_header else {}
    response = http.post(path, json=dossier(), headers=headers)
    assert response.status_code == 401
    assert http.get("/_sim/received").json() == []


def test_sync_validation(http: httpx.Client, session: str) -> None:
    bad = dossier(TrangThaiHoSo=11, NgayTiepNhan="2025-11-23", ChuHoSo="")
    del bad["MaTTHC"]
    response = http.post("/api/DongBoHoSoMC", json={"session": session, "data": [dossier(), bad]})
    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"
    assert {e["pointer"] for e in response.json()["errors"]} == {
        "/data/1/TrangThaiHoSo",
        "/data/1/NgayTiepNhan",
        "/data/1/ChuHoSo",
        "/data/1/MaTTHC",
    }
    assert http.get("/_sim/received").json() == []


def test_progress_validation(http: httpx.Client, session: str) -> None:
    response = http.post(
        "/api/CapNhatTienDoHoSoMC",
        json={"MaHoSo": "H12.99-251123-0001", "TrangThaiHoSo": 0, "ThoiDiemXuLy": "hom nay"},
        headers={"Authorization": f"Bearer {session}"},
    )
    assert response.status_code == 422
    assert {e["pointer"] for e in response.json()["errors"]} == {"/TrangThaiHoSo", "/ThoiDiemXuLy"}
