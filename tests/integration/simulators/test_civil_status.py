"""The civil-status simulator over real HTTP: OAuth2 client credentials and birth registrations."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from simulators.civil_status import create_app
from simulators.personal_id import is_valid_personal_id
from simulators.server import run_in_thread

CLIENT = ("lgsp-hub", "bi-mat-demo")


class Clock:
    """A clock the test moves by hand, so expiry needs no sleeping."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture(scope="module")
def clock() -> Clock:
    return Clock()


@pytest.fixture(scope="module")
def base_url(clock: Clock) -> Iterator[str]:
    with run_in_thread(create_app(token_ttl=60, clock=clock)) as url:
        yield url


@pytest.fixture
def http(base_url: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=base_url, timeout=10) as client:
        yield client


def get_token(http: httpx.Client, **form: str) -> httpx.Response:
    data = {"grant_type": "client_credentials", "client_id": CLIENT[0], "client_secret": CLIENT[1]}
    data.update(form)
    return http.post("/oauth/token", data={k: v for k, v in data.items() if v != "-"})


@pytest.fixture
def bearer(http: httpx.Client) -> dict[str, str]:
    return {"Authorization": f"Bearer {get_token(http).json()['access_token']}"}


def birth(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "ho_va_ten": "Tòng Thị Ánh",
        "gioi_tinh": 2,
        "ngay_sinh": "20250314",
        "noi_sinh_ma_xa": "03595",
        "me_so_dinh_danh": "012193000104",
    }
    body.update(overrides)
    return body


def test_token_with_credentials_in_the_form(http: httpx.Client) -> None:
    before = http.get("/_sim/stats").json()["tokens_issued"]
    response = get_token(http, scope="khai-sinh.doc")
    assert response.status_code == 200
    token = response.json()
    assert token["token_type"] == "Bearer"
    assert token["expires_in"] == 60
    assert token["scope"] == "khai-sinh.doc"
    assert len(token["access_token"]) >= 32
    assert response.headers["cache-control"] == "no-store"
    assert http.get("/_sim/stats").json() == {"tokens_issued": before + 1}


def test_token_with_basic_client_authentication(http: httpx.Client) -> None:
    response = http.post("/oauth/token", data={"grant_type": "client_credentials"}, auth=CLIENT)
    assert response.status_code == 200
    headers = {"Authorization": f"Bearer {response.json()['access_token']}"}
    assert http.get("/api/khai-sinh", headers=headers).status_code == 200


def test_tokens_differ(http: httpx.Client) -> None:
    assert get_token(http).json()["access_token"] != get_token(http).json()["access_token"]


@pytest.mark.parametrize(
    ("form", "status", "error"),
    [
        ({"client_secret": "sai"}, 401, "invalid_client"),
        ({"client_id": "ke-la"}, 401, "invalid_client"),
        ({"client_secret": "-"}, 401, "invalid_client"),
        ({"grant_type": "password"}, 400, "unsupported_grant_type"),
    ],
)
def test_token_errors(http: httpx.Client, form: dict[str, str], status: int, error: str) -> None:
    before = http.get("/_sim/stats").json()["tokens_issued"]
    response = get_token(http, **form)
    assert response.status_code == status
    assert response.json()["error"] == error
    assert http.get("/_sim/stats").json()["tokens_issued"] == before


def test_wrong_basic_secret_is_invalid_client(http: httpx.Client) -> None:
    response = http.post(
        "/oauth/token", data={"grant_type": "client_credentials"}, auth=("lgsp-hub", "sai")
    )
    assert response.status_code == 401
    assert response.json()["error"] == "invalid_client"
    assert response.headers["www-authenticate"].startswith("Basic")


def test_two_client_authentication_methods_are_refused(http: httpx.Client) -> None:
    response = http.post(
        "/oauth/token",
        data={"grant_type": "client_credentials", "client_secret": CLIENT[1]},
        auth=CLIENT,
    )
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_request"


@pytest.mark.parametrize(
    "authorization", [None, "Bearer", "Bearer not-a-token", "Basic bGdzcC1odWI6YmktbWF0LWRlbW8="]
)
def test_resources_need_a_bearer_token(http: httpx.Client, authorization: str | None) -> None:
    headers = {"Authorization": authorization} if authorization else {}
    response = http.get("/api/khai-sinh", headers=headers)
    assert response.status_code == 401
    assert response.headers["www-authenticate"].startswith("Bearer")
    assert response.headers["content-type"] == "application/problem+json"


def test_expired_token_is_401(http: httpx.Client, clock: Clock) -> None:
    headers = {"Authorization": f"Bearer {get_token(http).json()['access_token']}"}
    assert http.get("/api/khai-sinh", headers=headers).status_code == 200
    clock.now += 59
    assert http.get("/api/khai-sinh", headers=headers).status_code == 200
    clock.now += 1
    response = http.get("/api/khai-sinh", headers=headers)
    assert response.status_code == 401
    assert 'error="invalid_token"' in response.headers["www-authenticate"]


def test_seeded_registrations_are_consistent(http: httpx.Client, bearer: dict[str, str]) -> None:
    listing = http.get("/api/khai-sinh", headers=bearer).json()
    assert 24 <= listing["total"] <= 60
    for entry in listing["items"]:
        assert entry["ngay_sinh"] >= "20000101"
        assert is_valid_personal_id(
            entry["so_dinh_danh"], sex=entry["gioi_tinh"], birth_year=int(entry["ngay_sinh"][:4])
        )
    first = listing["items"][0]
    one = http.get(f"/api/khai-sinh/{first['so_dang_ky']}", headers=bearer)
    assert one.json() == first
    by_person = http.get(
        "/api/khai-sinh", params={"so_dinh_danh": first["so_dinh_danh"]}, headers=bearer
    ).json()
    assert first in by_person["items"]


def test_register_birth_assigns_a_consistent_number(
    http: httpx.Client, bearer: dict[str, str]
) -> None:
    response = http.post("/api/khai-sinh", json=birth(), headers=bearer)
    assert response.status_code == 201
    entry = response.json()
    assert entry["so_dinh_danh"].startswith("012325")
    assert is_valid_personal_id(entry["so_dinh_danh"], sex=2, birth_year=2025)
    assert entry["so_dang_ky"]
    assert entry["noi_sinh_ten_xa"] == "Xã Than Uyên"
    assert http.get(f"/api/khai-sinh/{entry['so_dang_ky']}", headers=bearer).json() == entry
    boy = http.post(
        "/api/khai-sinh", json=birth(gioi_tinh=1, ngay_sinh="19991231"), headers=bearer
    ).json()
    assert is_valid_personal_id(boy["so_dinh_danh"], sex=1, birth_year=1999)
    assert boy["so_dinh_danh"] != entry["so_dinh_danh"]


def test_register_birth_validation(http: httpx.Client, bearer: dict[str, str]) -> None:
    bad = birth(gioi_tinh=3, ngay_sinh="20251340", noi_sinh_ma_xa="00000", cha_so_dinh_danh="1")
    del bad["ho_va_ten"], bad["me_so_dinh_danh"]
    response = http.post("/api/khai-sinh", json=bad, headers=bearer)
    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"
    problem = response.json()
    assert {"type", "title", "status", "detail"} <= problem.keys()
    assert {e["pointer"] for e in problem["errors"]} == {
        "/ho_va_ten",
        "/gioi_tinh",
        "/ngay_sinh",
        "/noi_sinh_ma_xa",
        "/me_so_dinh_danh",
        "/cha_so_dinh_danh",
    }
    assert all(e["message"] for e in problem["errors"])


def test_future_birth_is_refused(http: httpx.Client, bearer: dict[str, str]) -> None:
    response = http.post("/api/khai-sinh", json=birth(ngay_sinh="29990101"), headers=bearer)
    assert response.status_code == 422


def test_unknown_registration_is_404(http: httpx.Client, bearer: dict[str, str]) -> None:
    assert http.get("/api/khai-sinh/KS-0000-00000-000000", headers=bearer).status_code == 404
