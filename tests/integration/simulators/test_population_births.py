"""The population database receiving civil.birth-registered pushes over real HTTP: the newborn's
record is created once, signatures are enforced, and a SOAP lookup then finds the child."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from simulators import citizens
from simulators.personal_id import FEMALE, MALE, make_personal_id
from simulators.population import DEMO_WEBHOOK_SECRET, WEBHOOK_PATH, create_app
from simulators.server import run_in_thread
from tests.integration.simulators.fakes import contract_errors, push, stale
from tests.integration.simulators.test_population import (
    AUTH,
    DC,
    SOAP11,
    body_of,
    call,
    lookup_fields,
)

MOTHER = next(c for c in citizens.citizens() if c.gioi_tinh == FEMALE and c.dan_toc == "Mông")


def registration(serial: int = 990_001, **overrides: Any) -> dict[str, Any]:
    number = make_personal_id(province="012", sex=MALE, birth_year=2025, serial=serial)
    entry: dict[str, Any] = {
        "so_dang_ky": f"KS-2025-03390-{serial - 990_000:06d}",
        "so_dinh_danh": number,
        "ho_va_ten": "Giàng A Páo",
        "gioi_tinh": MALE,
        "ngay_sinh": "20250702",
        "noi_sinh_ma_xa": "03390",
        "noi_sinh_ten_xa": "Xã Bình Lư",
        "me_so_dinh_danh": MOTHER.so_dinh_danh,
        "cha_so_dinh_danh": None,
        "ngay_dang_ky": "20250705",
    }
    entry.update(overrides)
    return entry


@pytest.fixture
def client() -> Iterator[httpx.Client]:
    """A fresh database per test: births recorded by one test stay out of the next."""
    with run_in_thread(create_app()) as url, httpx.Client(base_url=url, auth=AUTH) as c:
        yield c


def looked_up(client: httpx.Client, number: str) -> dict[str, str]:
    """The citizen's record from a SOAP lookup, the address flattened in."""
    answer = call(client, "TraCuuThongTinCongDan", lookup_fields(number))
    assert answer.status_code == 200, answer.text
    record = body_of(answer, SOAP11).find(f"{DC}CongDan")
    assert record is not None
    return {child.tag.removeprefix(DC): child.text or "" for child in record.iter()}


def test_the_sample_registration_follows_the_contract() -> None:
    assert contract_errors("ho-tich.khai-sinh", registration()) == []


def test_a_pushed_birth_creates_the_citizen_found_by_a_lookup(client: httpx.Client) -> None:
    born = registration()
    unknown = call(client, "TraCuuThongTinCongDan", lookup_fields(born["so_dinh_danh"]))
    assert unknown.status_code == 500  # CD_KHONG_TON_TAI before the push

    answer = push(client, WEBHOOK_PATH, born, DEMO_WEBHOOK_SECRET, msg_id="b-1")
    assert answer.status_code == 200, answer.text
    assert answer.json()["created"] is True

    record = looked_up(client, born["so_dinh_danh"])
    assert record["HoVaTen"] == "Giàng A Páo"
    assert record["NgaySinh"] == "20250702"
    assert record["GioiTinh"] == "1"
    # Registered where the mother lives, in her ethnic group (a registration names none).
    assert record["DanToc"] == MOTHER.dan_toc
    assert record["MaXa"] == MOTHER.noi_thuong_tru.ma_xa
    [births] = client.get("/_sim/khai-sinh").json()
    assert births["so_dinh_danh"] == born["so_dinh_danh"]
    assert births["noi_thuong_tru"] == MOTHER.noi_thuong_tru.ma_xa
    assert births["webhook_id"] == "b-1"


def test_verification_of_the_newborn_answers_yes(client: httpx.Client) -> None:
    born = registration()
    push(client, WEBHOOK_PATH, born, DEMO_WEBHOOK_SECRET)
    answer = call(
        client,
        "XacThucThongTinCongDan",
        {
            "MaYeuCau": "YC-2",
            "MaCanBo": "012185000101",
            "SoDinhDanh": born["so_dinh_danh"],
            "HoVaTen": born["ho_va_ten"],
            "NgaySinh": born["ngay_sinh"],
        },
    )
    assert body_of(answer, SOAP11).findtext(f"{DC}KetQua") == "true"


def test_without_a_known_mother_the_child_lives_where_it_was_born(client: httpx.Client) -> None:
    born = registration(me_so_dinh_danh="012190999999", noi_sinh_ma_xa="03445")
    assert push(client, WEBHOOK_PATH, born, DEMO_WEBHOOK_SECRET).status_code == 200
    [births] = client.get("/_sim/khai-sinh").json()
    assert births["noi_thuong_tru"] == "03445"


def test_a_duplicate_push_creates_the_citizen_once(client: httpx.Client) -> None:
    born = registration()
    first = push(client, WEBHOOK_PATH, born, DEMO_WEBHOOK_SECRET, msg_id="b-dup")
    again = push(client, WEBHOOK_PATH, born, DEMO_WEBHOOK_SECRET, msg_id="b-dup", attempt=2)
    assert (first.status_code, again.status_code) == (200, 200)
    assert again.json() == {**first.json(), "duplicate": True}
    assert len(client.get("/_sim/khai-sinh").json()) == 1
    outcomes = [e["outcome"] for e in client.get("/_sim/webhooks").json()]
    assert outcomes == ["applied", "duplicate"]


def test_the_same_child_in_another_message_is_not_created_twice(client: httpx.Client) -> None:
    born = registration()
    push(client, WEBHOOK_PATH, born, DEMO_WEBHOOK_SECRET, msg_id="b-a")
    answer = push(client, WEBHOOK_PATH, born, DEMO_WEBHOOK_SECRET, msg_id="b-b")
    assert answer.status_code == 200
    assert answer.json()["created"] is False
    assert len(client.get("/_sim/khai-sinh").json()) == 1


@pytest.mark.parametrize("case", ["wrong secret", "stale timestamp"])
def test_an_unverified_push_is_refused_and_creates_nobody(client: httpx.Client, case: str) -> None:
    born = registration()
    if case == "wrong secret":
        answer = push(client, WEBHOOK_PATH, born, "whsec_" + "QkJCQkJCQkJCQkJCQkJCQkJCQkJC")
    else:
        answer = push(client, WEBHOOK_PATH, born, DEMO_WEBHOOK_SECRET, at=stale())
    assert answer.status_code == 401
    assert client.get("/_sim/khai-sinh").json() == []
    unknown = call(client, "TraCuuThongTinCongDan", lookup_fields(born["so_dinh_danh"]))
    assert unknown.status_code == 500


def test_a_number_that_contradicts_the_birth_is_422(client: httpx.Client) -> None:
    born = registration(gioi_tinh=FEMALE)  # the number encodes a boy
    answer = push(client, WEBHOOK_PATH, born, DEMO_WEBHOOK_SECRET)
    assert answer.status_code == 422
    assert [e["pointer"] for e in answer.json()["errors"]] == ["/so_dinh_danh"]
    assert client.get("/_sim/khai-sinh").json() == []


def test_soap_still_needs_basic_auth_and_pushes_do_not(client: httpx.Client) -> None:
    with httpx.Client(base_url=str(client.base_url)) as anonymous:
        assert push(anonymous, WEBHOOK_PATH, registration(), DEMO_WEBHOOK_SECRET).is_success
        refused = call(anonymous, "TraCuuThongTinCongDan", lookup_fields(MOTHER.so_dinh_danh))
        assert refused.status_code == 401
