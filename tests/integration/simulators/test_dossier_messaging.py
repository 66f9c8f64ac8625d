"""The dossier system's asynchronous side against a fake hub on loopback: every status change
published to dossier.status; birth registrations read from a group subscription, attached to
the parent's dossier, positions committed, a redelivery handled once."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from simulators import citizens
from simulators.dossier import STATUS_TOPIC, create_app
from simulators.server import run_in_thread
from tests.integration.simulators.fakes import FakeHub, contract_errors
from tests.integration.simulators.test_dossier import KEY, application
from tests.wait import wait_until

HUB_KEY = "mot-cua-consumer-key"
SUBSCRIPTION = "mot-cua-khai-sinh"
MOTHER = next(c for c in citizens.citizens() if c.gioi_tinh == 2 and c.ngay_sinh.year > 1985)


def applicant(person: citizens.Citizen) -> dict[str, str]:
    return {
        "HoVaTen": person.ho_va_ten,
        "SoDinhDanh": person.so_dinh_danh,
        "NgaySinh": person.ngay_sinh.strftime("%Y%m%d"),
    }


def registration(mother: str = MOTHER.so_dinh_danh, code: str = "KS-2025-03390-000901") -> Any:
    return {
        "so_dang_ky": code,
        "so_dinh_danh": "012225990901",
        "ho_va_ten": "Lò Văn Páo",
        "gioi_tinh": 1,
        "ngay_sinh": "20250702",
        "noi_sinh_ma_xa": "03390",
        "noi_sinh_ten_xa": "Xã Bình Lư",
        "me_so_dinh_danh": mother,
        "cha_so_dinh_danh": None,
        "ngay_dang_ky": "20250705",
    }


@pytest.fixture
def setup() -> Iterator[tuple[FakeHub, httpx.Client]]:
    fake = FakeHub(api_keys={HUB_KEY})
    fake.logs[SUBSCRIPTION] = []
    with run_in_thread(fake.app()) as hub_url:
        app = create_app(hub_url=hub_url, hub_api_key=HUB_KEY, birth_subscription=SUBSCRIPTION)
        with run_in_thread(app) as url, httpx.Client(base_url=url, headers=KEY) as http:
            yield fake, http


def statuses(fake: FakeHub) -> list[tuple[str, int]]:
    return [(v["MaHoSo"], v["TrangThaiHoSo"]) for v in fake.values(STATUS_TOPIC)]


def test_each_status_change_is_published(setup: tuple[FakeHub, httpx.Client]) -> None:
    fake, http = setup
    dossier = http.post("/api/ho-so", json=application()).json()
    code = dossier["MaHoSo"]
    assert dossier["TrangThaiHoSo"] == 2  # the fake hub verified the applicant
    changed = http.put(
        f"/api/ho-so/{code}/trang-thai",
        json={"TrangThaiHoSo": 4, "NguoiXuLy": "Trần Thị Hoa", "NoiDungXuLy": "Thẩm định"},
    )
    assert changed.status_code == 200
    http.put(f"/api/ho-so/{code}/trang-thai", json={"TrangThaiHoSo": 9})
    wait_until(
        lambda: len(statuses(fake)) == 3,
        timeout=10,
        interval=0.02,
        what="three status messages published",
    )
    assert statuses(fake) == [(code, 2), (code, 4), (code, 9)]
    received, processing, _ = fake.values(STATUS_TOPIC)
    assert received["ThoiDiemXuLy"] == dossier["NgayTiepNhan"]
    assert received["NoiDungXuLy"] == "Tiếp nhận hồ sơ"
    assert processing["NguoiXuLy"] == "Trần Thị Hoa"
    assert processing["ThoiDiemXuLy"] == changed.json()["NgayCapNhat"]
    for value in fake.values(STATUS_TOPIC):
        assert contract_errors("ho-so.trang-thai", value) == []
    published = http.get("/_sim/published", params={"topic": STATUS_TOPIC}).json()
    assert [p["state"] for p in published] == ["accepted"] * 3


def test_a_refused_status_change_is_not_published(setup: tuple[FakeHub, httpx.Client]) -> None:
    fake, http = setup
    code = http.post("/api/ho-so", json=application()).json()["MaHoSo"]
    bad = http.put(f"/api/ho-so/{code}/trang-thai", json={"TrangThaiHoSo": 4, "NguoiXuLy": ""})
    assert bad.status_code == 422
    assert [e["pointer"] for e in bad.json()["errors"]] == ["/NguoiXuLy"]
    wait_until(
        lambda: statuses(fake), timeout=10, interval=0.02, what="the first status message published"
    )
    assert statuses(fake) == [(code, 2)]


def test_a_birth_registration_read_from_the_group_completes_the_parents_dossier(
    setup: tuple[FakeHub, httpx.Client],
) -> None:
    fake, http = setup
    birth_dossier = http.post(
        "/api/ho-so", json=application(MaTTHC="1.001193", ChuHoSo=applicant(MOTHER))
    ).json()
    other_procedure = http.post(
        "/api/ho-so", json=application(MaTTHC="1.000894", ChuHoSo=applicant(MOTHER))
    ).json()
    message_id = fake.add_message(SUBSCRIPTION, registration())

    [seen] = wait_until(
        lambda: http.get("/_sim/khai-sinh").json(),
        timeout=10,
        interval=0.02,
        what="the registration read by the dossier system",
    )
    assert seen["so_dang_ky"] == "KS-2025-03390-000901"
    assert seen["message_id"] == message_id
    assert (seen["partition"], seen["offset"]) == (0, 0)
    assert seen["attached_to"] == [birth_dossier["MaHoSo"]]

    done = http.get(f"/api/ho-so/{birth_dossier['MaHoSo']}").json()
    assert done["TrangThaiHoSo"] == 9
    assert done["GiayKhaiSinh"]["SoDangKy"] == "KS-2025-03390-000901"
    assert done["GiayKhaiSinh"]["SoDinhDanh"] == "012225990901"
    assert http.get(f"/api/ho-so/{other_procedure['MaHoSo']}").json()["TrangThaiHoSo"] == 2
    wait_until(
        lambda: (birth_dossier["MaHoSo"], 9) in statuses(fake),
        timeout=10,
        interval=0.02,
        what="the dossier's status 9 published",
    )
    final = fake.values(STATUS_TOPIC)[-1]
    assert final["NoiDungXuLy"] == "Đã đăng ký khai sinh, số KS-2025-03390-000901"
    assert contract_errors("ho-so.trang-thai", final) == []

    wait_until(lambda: fake.commits, timeout=10, interval=0.02, what="a position committed")
    assert fake.commits[0] == (SUBSCRIPTION, {"0": 1})
    reader = http.get("/_sim/reader").json()
    assert reader["messages"] == 1 and reader["committed"] == {"0": 1}
    assert all(c["api_key"] == HUB_KEY for c in fake.calls)


def test_a_redelivered_registration_is_handled_once(setup: tuple[FakeHub, httpx.Client]) -> None:
    fake, http = setup
    http.post("/api/ho-so", json=application(MaTTHC="1.001193", ChuHoSo=applicant(MOTHER)))
    fake.add_message(SUBSCRIPTION, registration())
    wait_until(lambda: fake.commits, timeout=10, interval=0.02, what="a position committed")
    fake.add_message(SUBSCRIPTION, registration())  # the same registration, read again
    wait_until(
        lambda: len(fake.commits) == 2,
        timeout=10,
        interval=0.02,
        what="the second position committed",
    )
    assert len(http.get("/_sim/khai-sinh").json()) == 1
    assert [s for _, s in statuses(fake)].count(9) == 1


def test_a_registration_of_someone_without_a_dossier_is_recorded_only(
    setup: tuple[FakeHub, httpx.Client],
) -> None:
    fake, http = setup
    fake.add_message(SUBSCRIPTION, registration(mother="012190999998"))
    [seen] = wait_until(
        lambda: http.get("/_sim/khai-sinh").json(),
        timeout=10,
        interval=0.02,
        what="the registration read by the dossier system",
    )
    assert seen["attached_to"] == []


def test_the_reader_keeps_trying_until_the_subscription_exists() -> None:
    fake = FakeHub(api_keys={HUB_KEY})  # no subscription yet: 404
    with run_in_thread(fake.app()) as hub_url:
        app = create_app(hub_url=hub_url, hub_api_key=HUB_KEY, birth_subscription=SUBSCRIPTION)
        with run_in_thread(app) as url, httpx.Client(base_url=url, headers=KEY) as http:
            wait_until(
                lambda: http.get("/_sim/reader").json()["last_error"],
                timeout=10,
                interval=0.02,
                what="the reader to report an error",
            )
            assert "404" in http.get("/_sim/reader").json()["last_error"]
            fake.logs[SUBSCRIPTION] = []
            fake.add_message(SUBSCRIPTION, registration())
            wait_until(
                lambda: http.get("/_sim/khai-sinh").json(),
                timeout=15,
                interval=0.02,
                what="the message read once the subscription exists",
            )


def test_without_a_subscription_there_is_no_reader() -> None:
    with run_in_thread(create_app()) as url, httpx.Client(base_url=url) as http:
        assert http.get("/_sim/reader").status_code == 404
        assert http.get("/_sim/khai-sinh").json() == []
