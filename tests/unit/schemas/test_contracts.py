"""The bundled contracts of the simulated systems (gateway/demo/schemas): registrable schemas,
their sample documents judged alike by both validators, and the JSON the simulators and the hub
really exchange passing them."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any
from xml.etree.ElementTree import Element, SubElement

import jsonschema
import pytest
import yaml
from starlette.testclient import TestClient

from connectors.soap.coerce import coerce
from connectors.soap.xml import element_to_json
from schemas.checks import problems
from schemas.validation import compile_validator, pointer, reference_validator
from simulators import citizens, civil_status, dossier, population, portal

FOLDER = Path(__file__).parents[3] / "gateway" / "demo" / "schemas"
MANIFEST = Path(__file__).parents[3] / "gateway" / "demo" / "manifest.yaml"
SUBJECTS = sorted(p.stem for p in FOLDER.glob("*.json") if p.name != "examples.json")
EXAMPLES: dict[str, Any] = json.loads((FOLDER / "examples.json").read_text(encoding="utf-8"))
VALID = [(s, i) for s in SUBJECTS for i in range(len(EXAMPLES[s]["valid"]))]
INVALID = [(s, i) for s in SUBJECTS for i in range(len(EXAMPLES[s]["invalid"]))]


@cache
def contract(subject: str) -> Any:
    return json.loads((FOLDER / f"{subject}.json").read_text(encoding="utf-8"))


@cache
def validators(subject: str) -> tuple[Any, Any]:
    schema = contract(subject)
    return compile_validator(schema), reference_validator(schema)


def pointers(subject: str, document: Any) -> tuple[set[str], set[str]]:
    compiled, reference = validators(subject)
    return (
        {pointer(*e.instance_path) for e in compiled.iter_errors(document)},
        {pointer(*e.absolute_path) for e in reference.iter_errors(document)},
    )


def assert_valid(subject: str, document: Any) -> None:
    assert pointers(subject, document) == (set(), set()), (subject, document)


def test_the_expected_contracts_are_bundled() -> None:
    assert SUBJECTS == [
        "dan-cu.cong-dan",
        "dan-cu.xac-thuc-ket-qua",
        "dan-cu.xac-thuc-yeu-cau",
        "edxml.envelope",
        "edxml.status",
        "ho-so.ho-so",
        "ho-so.trang-thai",
        "ho-tich.khai-sinh",
    ]
    assert {k for k in EXAMPLES if not k.startswith("$")} == set(SUBJECTS)


@pytest.mark.parametrize("subject", SUBJECTS)
def test_each_contract_is_a_registrable_draft_2020_12_schema(subject: str) -> None:
    schema = contract(subject)
    jsonschema.Draft202012Validator.check_schema(schema)
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert schema["title"] and schema["description"]
    assert problems(schema) == []
    assert EXAMPLES[subject]["valid"] and EXAMPLES[subject]["invalid"]


@pytest.mark.parametrize(("subject", "index"), VALID)
def test_valid_examples_pass_both_validators(subject: str, index: int) -> None:
    assert_valid(subject, EXAMPLES[subject]["valid"][index])


@pytest.mark.parametrize(("subject", "index"), INVALID)
def test_invalid_examples_fail_at_their_pointer_under_both_validators(
    subject: str, index: int
) -> None:
    case = EXAMPLES[subject]["invalid"][index]
    compiled, reference = pointers(subject, case["document"])
    assert compiled == reference == {case["pointer"]}, case["why"]


# What the simulators and the hub really exchange ----------------------------------------------


@cache
def dan_cu_routes() -> dict[str, Any]:
    manifest = yaml.safe_load(MANIFEST.read_text(encoding="utf-8"))
    service = next(s for s in manifest["services"] if s["name"] == "dan-cu")
    return {route["operation"]: route for route in service["routes"]}


def _soap_reply(operation: str, **fields: str) -> Any:
    """A population-database operation run in process, read back as the hub's connector does."""
    route = dan_cu_routes()[operation]
    request = Element(f"{{{population.NAMESPACE}}}{operation}")
    for name, value in fields.items():
        SubElement(request, f"{{{population.NAMESPACE}}}{name}").text = value
    answer = population.OPERATIONS[operation](request)
    return element_to_json(answer, {xml: name for name, xml in route["field_map"].items()})


OFFICER = "012185000101"


def test_the_population_databases_records_pass_the_citizen_contract() -> None:
    for person in citizens.citizens():
        reply = _soap_reply(
            population.LOOKUP, MaYeuCau="r-1", MaCanBo=OFFICER, SoDinhDanh=person.so_dinh_danh
        )
        assert_valid("dan-cu.cong-dan", reply["cong_dan"])


def test_verification_requests_and_answers_pass_their_contracts() -> None:
    person = citizens.demo_citizen()
    request = {
        "so_dinh_danh": person.so_dinh_danh,
        "ho_va_ten": person.ho_va_ten,
        "ngay_sinh": person.ngay_sinh.strftime("%Y%m%d"),
        "ma_can_bo": OFFICER,
    }
    assert_valid("dan-cu.xac-thuc-yeu-cau", request)
    for name in (person.ho_va_ten, "Lò Văn Mình"):
        reply = _soap_reply(
            population.VERIFY,
            MaYeuCau="r-2",
            MaCanBo=OFFICER,
            SoDinhDanh=person.so_dinh_danh,
            HoVaTen=name,
            NgaySinh=request["ngay_sinh"],
        )
        assert_valid("dan-cu.xac-thuc-ket-qua", coerce(reply, contract("dan-cu.xac-thuc-ket-qua")))


def test_the_contracts_are_at_least_as_strict_as_the_manifests_inline_schemas() -> None:
    verify, lookup = dan_cu_routes()[population.VERIFY], dan_cu_routes()[population.LOOKUP]
    inline_request = compile_validator(verify["request_schema"])
    inline_answer = compile_validator(verify["response_schema"])
    inline_record = compile_validator(lookup["response_schema"])
    assert all(inline_request.is_valid(d) for d in EXAMPLES["dan-cu.xac-thuc-yeu-cau"]["valid"])
    assert all(inline_answer.is_valid(d) for d in EXAMPLES["dan-cu.xac-thuc-ket-qua"]["valid"])
    assert all(
        inline_record.is_valid({"cong_dan": d}) for d in EXAMPLES["dan-cu.cong-dan"]["valid"]
    )


def test_the_dossier_systems_dossiers_pass_the_dossier_contract() -> None:
    person = citizens.demo_citizen()
    application = {
        "MaTTHC": "1.001193",
        "MaLinhVuc": "HOTICH",
        "KenhNop": 2,
        "MaXa": "03390",
        "TrichYeu": "Đăng ký khai sinh",
        "ChuHoSo": {
            "HoVaTen": person.ho_va_ten,
            "SoDinhDanh": person.so_dinh_danh,
            "NgaySinh": person.ngay_sinh.strftime("%Y%m%d"),
        },
    }
    with TestClient(dossier.create_app(api_key=None)) as client:
        created = client.post("/api/ho-so", json=application)
        assert created.status_code == 201, created.text
        assert_valid("ho-so.ho-so", created.json())
        code = created.json()["MaHoSo"]
        updated = client.put(f"/api/ho-so/{code}/trang-thai", json={"TrangThaiHoSo": 4})
        assert updated.status_code == 200, updated.text
        assert_valid("ho-so.ho-so", updated.json())


def test_the_portal_accepts_every_valid_dossier_and_status_update() -> None:
    with TestClient(portal.create_app()) as client:
        session = client.post(
            "/api/token", json={"username": "laichau-mc", "password": "matkhau-dvcqg"}
        ).json()["session"]
        auth = {"Authorization": f"Bearer {session}"}
        for service, subject in (
            (portal.SYNC, "ho-so.ho-so"),
            (portal.PROGRESS, "ho-so.trang-thai"),
        ):
            sent = client.post(
                f"/api/{service}", json={"data": EXAMPLES[subject]["valid"]}, headers=auth
            )
            assert sent.status_code == 200, sent.text


def test_the_birth_register_passes_the_birth_registration_contract() -> None:
    with TestClient(civil_status.create_app()) as client:
        token = client.post(
            "/oauth/token",
            data={
                "grant_type": "client_credentials",
                "client_id": "lgsp-hub",
                "client_secret": "bi-mat-demo",
            },
        ).json()["access_token"]
        auth = {"Authorization": f"Bearer {token}"}
        listed = client.get("/api/khai-sinh", headers=auth).json()["items"]
        assert listed
        mother = next(c for c in citizens.citizens() if c.gioi_tinh == 2)
        birth = {
            "ho_va_ten": "Lò Thị Ánh",
            "gioi_tinh": 2,
            "ngay_sinh": "20250702",
            "noi_sinh_ma_xa": "03388",
            "me_so_dinh_danh": mother.so_dinh_danh,
        }
        created = client.post("/api/khai-sinh", json=birth, headers=auth)
        assert created.status_code == 201, created.text
    for entry in [*listed, created.json()]:
        assert_valid("ho-tich.khai-sinh", entry)
