"""The dossier system simulator over real HTTP, alone and verifying applicants through a hub."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import datetime
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from simulators import citizens
from simulators.dossier import create_app
from simulators.server import run_in_thread

KEY = {"X-API-Key": "dossier-demo-key"}
CODE = re.compile(r"^H12\.99-[0-9]{6}-[0-9]{4}$")


def application(**overrides: Any) -> dict[str, Any]:
    demo = citizens.demo_citizen()
    body: dict[str, Any] = {
        "MaTTHC": "1.001612",
        "MaLinhVuc": "G09-TP-HT",
        "KenhNop": 2,
        "MaXa": "03388",
        "ChuHoSo": {
            "HoVaTen": demo.ho_va_ten,
            "SoDinhDanh": demo.so_dinh_danh,
            "NgaySinh": "19900517",
        },
        "TrichYeu": "Đăng ký khai sinh",
    }
    body.update(overrides)
    return body


@pytest.fixture(scope="module")
def standalone() -> Iterator[httpx.Client]:
    with run_in_thread(create_app()) as url, httpx.Client(base_url=url, headers=KEY) as client:
        yield client


class FakeHub:
    """A stand-in hub: answers the verify call and keeps what it received."""

    def __init__(self) -> None:
        self.calls: list[dict[str, Any]] = []
        self.status = 200
        self.answer: dict[str, Any] = {"ket_qua": True}

    def app(self) -> Starlette:
        async def verify(request: Request) -> Response:
            self.calls.append(
                {
                    "headers": dict(request.headers),
                    "json": await request.json(),
                    "path": request.url.path,
                }
            )
            media = "application/json" if self.status == 200 else "application/problem+json"
            return JSONResponse(self.answer, status_code=self.status, media_type=media)

        return Starlette(
            routes=[Route("/api/dan-cu/v1/cong-dan/xac-thuc", verify, methods=["POST"])]
        )


@pytest.fixture(scope="module")
def fake_hub() -> Iterator[tuple[FakeHub, str]]:
    hub = FakeHub()
    with run_in_thread(hub.app()) as url:
        yield hub, url


@pytest.fixture
def via_hub(fake_hub: tuple[FakeHub, str]) -> Iterator[tuple[FakeHub, httpx.Client]]:
    hub, hub_url = fake_hub
    hub.calls.clear()
    hub.status, hub.answer = 200, {"ket_qua": True}
    app = create_app(hub_url=hub_url, hub_api_key="hub-key-of-dossier", purpose="tiep-nhan-ho-so")
    with run_in_thread(app) as url, httpx.Client(base_url=url, headers=KEY) as client:
        yield hub, client


def test_submit_without_hub_registers_the_dossier(standalone: httpx.Client) -> None:
    response = standalone.post("/api/ho-so", json=application())
    assert response.status_code == 201
    dossier = response.json()
    assert CODE.match(dossier["MaHoSo"])
    assert dossier["TrangThaiHoSo"] == 1
    assert dossier["XacThucDanCu"] is None
    assert dossier["TenXa"] == "Phường Đoàn Kết"
    received = datetime.strptime(dossier["NgayTiepNhan"], "%Y%m%d%H%M%S")
    due = datetime.strptime(dossier["NgayHenTra"], "%Y%m%d%H%M%S")
    assert 5 <= (due - received).days <= 9
    assert due.weekday() < 5
    assert standalone.get(f"/api/ho-so/{dossier['MaHoSo']}").json() == dossier


def test_codes_are_serial(standalone: httpx.Client) -> None:
    first = standalone.post("/api/ho-so", json=application()).json()["MaHoSo"]
    second = standalone.post("/api/ho-so", json=application()).json()["MaHoSo"]
    assert int(second[-4:]) == int(first[-4:]) + 1


def test_list_by_applicant(standalone: httpx.Client) -> None:
    other = citizens.citizens()[3]
    owner = {
        "HoVaTen": other.ho_va_ten,
        "SoDinhDanh": other.so_dinh_danh,
        "NgaySinh": other.ngay_sinh.strftime("%Y%m%d"),
    }
    created = standalone.post("/api/ho-so", json=application(ChuHoSo=owner)).json()
    listed = standalone.get("/api/ho-so", params={"so_dinh_danh": other.so_dinh_danh}).json()
    assert listed["items"] == [created]
    assert listed["total"] == 1
    assert standalone.get("/api/ho-so", params={"so_dinh_danh": "123"}).status_code == 422


def test_status_update(standalone: httpx.Client) -> None:
    code = standalone.post("/api/ho-so", json=application()).json()["MaHoSo"]
    response = standalone.put(f"/api/ho-so/{code}/trang-thai", json={"TrangThaiHoSo": 4})
    assert response.status_code == 200
    assert response.json()["TrangThaiHoSo"] == 4
    assert standalone.get(f"/api/ho-so/{code}").json()["TrangThaiHoSo"] == 4


@pytest.mark.parametrize("status", [0, 11, "4", None, True])
def test_status_update_rejects_unknown_codes(standalone: httpx.Client, status: object) -> None:
    code = standalone.post("/api/ho-so", json=application()).json()["MaHoSo"]
    response = standalone.put(f"/api/ho-so/{code}/trang-thai", json={"TrangThaiHoSo": status})
    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["errors"][0]["pointer"] == "/TrangThaiHoSo"


def test_unknown_dossier_is_404(standalone: httpx.Client) -> None:
    assert standalone.get("/api/ho-so/H12.99-000000-9999").status_code == 404
    response = standalone.put("/api/ho-so/H12.99-000000-9999/trang-thai", json={"TrangThaiHoSo": 2})
    assert response.status_code == 404


def test_validation_lists_every_bad_field(standalone: httpx.Client) -> None:
    bad = application(
        KenhNop=4, MaXa="99999", ChuHoSo={"HoVaTen": "", "SoDinhDanh": "12", "NgaySinh": "19901317"}
    )
    del bad["MaTTHC"]
    response = standalone.post("/api/ho-so", json=bad)
    assert response.status_code == 422
    problem = response.json()
    assert response.headers["content-type"] == "application/problem+json"
    assert problem["status"] == 422
    assert {"type", "title", "detail"} <= problem.keys()
    assert {e["pointer"] for e in problem["errors"]} == {
        "/MaTTHC",
        "/KenhNop",
        "/MaXa",
        "/ChuHoSo/HoVaTen",
        "/ChuHoSo/SoDinhDanh",
        "/ChuHoSo/NgaySinh",
    }


def test_malformed_json_is_400(standalone: httpx.Client) -> None:
    response = standalone.post(
        "/api/ho-so", content=b"{", headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 400


@pytest.mark.parametrize("headers", [{}, {"X-API-Key": "wrong"}])
def test_api_key_is_required(standalone: httpx.Client, headers: dict[str, str]) -> None:
    response = httpx.get(standalone.base_url.join("/api/ho-so"), headers=headers)
    assert response.status_code == 401
    assert standalone.get("/healthz").status_code == 200


def test_verified_applicant_is_received(via_hub: tuple[FakeHub, httpx.Client]) -> None:
    hub, client = via_hub
    response = client.post("/api/ho-so", json=application())
    assert response.status_code == 201
    dossier = response.json()
    assert dossier["TrangThaiHoSo"] == 2
    assert len(hub.calls) == 1
    call = hub.calls[0]
    assert call["path"] == "/api/dan-cu/v1/cong-dan/xac-thuc"
    assert call["headers"]["x-api-key"] == "hub-key-of-dossier"
    assert call["headers"]["x-purpose"] == "tiep-nhan-ho-so"
    request_id = call["headers"]["x-request-id"]
    assert request_id
    assert call["json"] == {
        "so_dinh_danh": "012090001234",
        "ho_va_ten": "Lò Văn Minh",
        "ngay_sinh": "19900517",
        "ma_can_bo": "012185000101",  # the receiving officer, with rights to the population DB
    }
    assert dossier["XacThucDanCu"] == {"KetQua": True, "MaYeuCau": request_id}


def test_unverified_applicant_is_not_received(via_hub: tuple[FakeHub, httpx.Client]) -> None:
    hub, client = via_hub
    hub.answer = {"ket_qua": False, "ly_do": "KHONG_KHOP"}
    dossier = client.post("/api/ho-so", json=application()).json()
    assert dossier["TrangThaiHoSo"] == 3
    assert dossier["XacThucDanCu"]["KetQua"] is False
    assert dossier["XacThucDanCu"]["LyDo"] == "KHONG_KHOP"


def test_each_verification_has_its_own_request_id(via_hub: tuple[FakeHub, httpx.Client]) -> None:
    hub, client = via_hub
    client.post("/api/ho-so", json=application())
    client.post("/api/ho-so", json=application())
    ids = {c["headers"]["x-request-id"] for c in hub.calls}
    assert len(ids) == 2


def test_hub_error_becomes_502_naming_it(via_hub: tuple[FakeHub, httpx.Client]) -> None:
    hub, client = via_hub
    hub.status = 403
    hub.answer = {"type": "about:blank", "title": "No grant for this purpose", "status": 403}
    response = client.post("/api/ho-so", json=application())
    assert response.status_code == 502
    assert response.headers["content-type"] == "application/problem+json"
    assert "403" in response.json()["detail"]
    assert "No grant for this purpose" in response.json()["detail"]
    assert client.get("/api/ho-so").json()["total"] == 0


def test_unreachable_hub_is_502() -> None:
    with run_in_thread(Starlette()) as gone:
        pass  # the port is closed again: nothing listens there any more
    app = create_app(hub_url=gone, hub_api_key="k")
    with run_in_thread(app) as url, httpx.Client(base_url=url, headers=KEY) as client:
        response = client.post("/api/ho-so", json=application())
    assert response.status_code == 502
    assert response.json()["title"] == "Hub unreachable"


def test_requests_are_recorded(standalone: httpx.Client) -> None:
    standalone.delete("/_sim/requests")
    standalone.get(
        "/api/ho-so", headers={"X-Request-Id": "rid-7", "X-LGSP-Consumer": "000.00.12.H12"}
    )
    [entry] = standalone.get("/_sim/requests").json()
    assert entry["x_request_id"] == "rid-7"
    assert entry["x_lgsp_consumer"] == "000.00.12.H12"
    assert entry["path"] == "/api/ho-so"
