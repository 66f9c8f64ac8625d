"""The synchronous exchange through real HTTP: consumer -> hub -> provider, and its audit record."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable
from typing import Any

import httpx

from simulators import citizens
from tests.integration.conftest import APPROVE, World, audit_records, auditor_key
from tests.wait import wait_until

ECHO_ROUTE = {"method": "POST", "path": "/echo/{item}", "upstream_path": "/echo/{item}"}
PERSON = citizens.demo_citizen()
OFFICER = next(o for o in citizens.officers() if o.co_quyen_dan_cu)
NO_RIGHTS = next(o for o in citizens.officers() if not o.co_quyen_dan_cu)

VERIFY_ROUTE: dict[str, Any] = {
    "method": "POST",
    "path": "/cong-dan/xac-thuc",
    "operation": "XacThucThongTinCongDan",
    "soap_action": "urn:vn:gov:csdlqgvdc:dancu:1.0#XacThucThongTinCongDan",
    "request_id_field": "ma_yeu_cau",
    "field_map": {
        "ma_yeu_cau": "MaYeuCau",
        "ma_can_bo": "MaCanBo",
        "so_dinh_danh": "SoDinhDanh",
        "ho_va_ten": "HoVaTen",
        "ngay_sinh": "NgaySinh",
        "ket_qua": "KetQua",
        "ly_do": "LyDo",
    },
    "request_schema": {
        "type": "object",
        "required": ["so_dinh_danh", "ho_va_ten", "ngay_sinh", "ma_can_bo"],
        "additionalProperties": False,
        "properties": {
            "so_dinh_danh": {"type": "string", "pattern": "^[0-9]{12}$"},
            "ho_va_ten": {"type": "string", "minLength": 1},
            "ngay_sinh": {"type": "string", "pattern": "^[0-9]{8}$"},
            "ma_can_bo": {"type": "string", "pattern": "^[0-9]{12}$"},
        },
    },
    "response_schema": {
        "type": "object",
        "required": ["ket_qua"],
        "properties": {
            "ket_qua": {"type": "boolean"},
            "ly_do": {"type": "string"},
            "ma_yeu_cau": {"type": "string"},
        },
    },
    "fault_status": {"CD_KHONG_TON_TAI": 404, "CB_KHONG_CO_QUYEN": 403},
}


def verify_body(**changes: str) -> dict[str, str]:
    body = {
        "so_dinh_danh": PERSON.so_dinh_danh,
        "ho_va_ten": PERSON.ho_va_ten,
        "ngay_sinh": PERSON.ngay_sinh.strftime("%Y%m%d"),
        "ma_can_bo": OFFICER.so_dinh_danh,
    }
    body.update(changes)
    return body


def population_world(
    make_world: Callable[..., World], population_url: str, soap_version: str = "1.1", **grant: Any
) -> World:
    return make_world(
        base_url=f"{population_url}/ws/dan-cu",
        kind="soap",
        options={
            "namespace": "urn:vn:gov:csdlqgvdc:dancu:1.0",
            "soap_version": soap_version,
            "headers": {"X-Road-Client": "VN/GOV/000.00.12.H12/LGSP"},
        },
        auth={"type": "basic", "username": "lgsp-laichau", "secret": "matkhau-demo"},
        routes=[VERIFY_ROUTE],
        personal_data=True,
        subject_pointer="/body/so_dinh_danh",
        grant={"purposes": ["xac-thuc-ho-so"], **grant},
        decision=APPROVE,
    )


def problem(answer: httpx.Response, status: int, kind: str) -> dict[str, Any]:
    assert answer.status_code == status, answer.text
    assert answer.headers["content-type"] == "application/problem+json"
    doc = answer.json()
    assert doc["type"].endswith("/" + kind), doc
    assert doc["status"] == status and doc["title"] and doc["detail"]
    assert doc["request_id"] == answer.headers["x-request-id"]
    assert "Traceback" not in answer.text
    return dict(doc)


# ---------------------------------------------------------------- the main path


def test_verify_citizen_through_soap_and_audit(hub, make_world, population_url, unique):
    world = population_world(make_world, population_url)
    rid = unique("req-verify")
    answer = world.call(
        "POST",
        "/cong-dan/xac-thuc",
        json=verify_body(),
        headers={
            "X-Purpose": "xac-thuc-ho-so",
            "X-Request-Id": rid,
            "traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
        },
    )
    assert answer.status_code == 200, answer.text
    assert answer.json() == {"ma_yeu_cau": rid, "ket_qua": True}
    assert answer.headers["x-request-id"] == rid

    seen = httpx.get(f"{population_url}/_sim/requests").json()
    (upstream,) = [r for r in seen if r.get("x_request_id") == rid]
    assert upstream["ma_yeu_cau"] == rid  # the request id became MaYeuCau
    assert upstream["x_road_client"] == "VN/GOV/000.00.12.H12/LGSP"

    (record,) = world.records(request_id=rid)
    expected_hash = hmac.new(
        hub.settings.subject_hmac_key.encode(), PERSON.so_dinh_danh.encode(), hashlib.sha256
    ).hexdigest()
    assert record["subject_hash"] == expected_hash
    assert PERSON.so_dinh_danh not in str(record)
    assert record["consumer"] == world.consumer and record["agency"] == world.agency
    assert (record["service"], record["version"]) == (world.service, "v1")
    assert record["route"] == "POST /cong-dan/xac-thuc"
    assert record["purpose"] == "xac-thuc-ho-so"
    assert record["grant_id"] == world.grant_id
    assert (record["provider_status"], record["hub_status"], record["attempts"]) == (200, 200, 1)
    assert record["trace_id"] == "0af7651916cd43dd8448eb211c80319c"
    assert record["response_sha256"] == hashlib.sha256(answer.content).hexdigest()
    assert record["request_size"] > 0 and record["latency_us"] > 0

    # The auditor finds it by the citizen's number; the hub hashes the number before looking.
    by_subject = audit_records(hub, subject=PERSON.so_dinh_danh, service=world.service)
    assert [r["id"] for r in by_subject] == [record["id"]]


def test_verify_mismatch_answers_false(make_world, population_url):
    world = population_world(make_world, population_url)
    answer = world.call(
        "POST",
        "/cong-dan/xac-thuc",
        json=verify_body(ho_va_ten="Nguyễn Văn Sai"),
        headers={"X-Purpose": "xac-thuc-ho-so"},
    )
    assert answer.status_code == 200, answer.text
    assert answer.json()["ket_qua"] is False


def test_soap_faults_become_problems(make_world, population_url):
    world = population_world(make_world, population_url)
    purpose = {"X-Purpose": "xac-thuc-ho-so"}
    unknown = world.call(
        "POST", "/cong-dan/xac-thuc", json=verify_body(so_dinh_danh="012099999999"), headers=purpose
    )
    assert problem(unknown, 404, "provider-fault")["fault"]["detail_code"] == "CD_KHONG_TON_TAI"
    officer = world.call(
        "POST",
        "/cong-dan/xac-thuc",
        json=verify_body(ma_can_bo=NO_RIGHTS.so_dinh_danh),
        headers=purpose,
    )
    assert problem(officer, 403, "provider-fault")["fault"]["detail_code"] == "CB_KHONG_CO_QUYEN"
    records = {r["hub_status"]: r for r in world.records()}
    assert records[404]["provider_status"] == 500 and records[403]["error"]


def test_headers_travel_upstream_and_fields_are_projected(make_world, upstream):
    world = make_world(
        base_url=upstream,
        routes=[
            {"method": "GET", "path": "/cong-dan/{id}", "upstream_path": "/citizen/{id}"},
            {"method": "POST", "path": "/echo/{item}", "upstream_path": "/echo/{item}"},
        ],
        grant={"fields": ["ho_va_ten", "dia_chi.ma_xa", "headers", "query", "body"]},
        decision=APPROVE,
    )
    answer = world.call("GET", "/cong-dan/012090001234")
    assert answer.status_code == 200, answer.text
    assert answer.json() == {"ho_va_ten": "Lò Văn Minh", "dia_chi": {"ma_xa": "03388"}}

    echo = world.call(
        "POST",
        "/echo/x?a=1",
        json={"k": "v"},
        headers={"traceparent": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"},
    )
    assert echo.status_code == 200, echo.text
    seen = echo.json()
    assert seen["query"] == {"a": "1"} and seen["body"] == '{"k":"v"}'
    headers = seen["headers"]
    assert headers["x-lgsp-consumer"] == world.consumer
    assert headers["x-lgsp-agency"] == world.agency
    assert headers["x-request-id"] == echo.headers["x-request-id"]
    trace = headers["traceparent"].split("-")
    assert trace[1] == "4bf92f3577b34da6a3ce929d0e0e4736" and trace[2] != "00f067aa0ba902b7"
    assert "x-api-key" not in headers  # the consumer's key never reaches the provider


# ---------------------------------------------------------------- who may call


def test_authentication_failures_are_401(make_world, upstream):
    world = make_world(base_url=upstream, routes=[ECHO_ROUTE], grant={}, decision=APPROVE)
    missing = world.call("POST", "/echo/a", key="", json={})
    assert problem(missing, 401, "unauthenticated")
    assert missing.headers["www-authenticate"].startswith("ApiKey")
    wrong = world.key[:-4] + ("AAAA" if not world.key.endswith("AAAA") else "BBBB")
    assert problem(world.call("POST", "/echo/a", key=wrong, json={}), 401, "invalid-key")
    assert problem(world.call("POST", "/echo/a", key="not-a-key", json={}), 401, "invalid-key")

    key_id = world.key.split(".")[0].removeprefix("lgsp_")
    with world.hub.admin() as admin:
        assert admin.delete(f"/admin/consumers/{world.consumer}/keys/{key_id}").status_code in (
            200,
            204,
        )
    assert problem(world.call("POST", "/echo/a", json={}), 401, "revoked-key")
    statuses = sorted(r["hub_status"] for r in world.records())
    assert statuses.count(401) >= 1  # refused calls are recorded too (with the consumer when known)


def test_a_management_key_is_told_it_is_not_a_consumer_key(make_world, upstream):
    world = make_world(base_url=upstream, routes=[ECHO_ROUTE], grant={}, decision=APPROVE)
    for key in (world.hub.admin_key, auditor_key(world.hub)):
        doc = problem(world.call("POST", "/echo/a", key=key, json={}), 401, "not-a-consumer-key")
        assert "management key" in doc["detail"]
    # A management key's id with a wrong secret says no more than any unknown key.
    forged = world.hub.admin_key[:-4] + (
        "AAAA" if not world.hub.admin_key.endswith("AAAA") else "BBBB"
    )
    assert problem(world.call("POST", "/echo/a", key=forged, json={}), 401, "invalid-key")
    with world.hub.client(world.hub.admin_key) as client:
        published = client.post("/topics/no-such-topic/messages", json={"value": {}})
    assert problem(published, 401, "not-a-consumer-key")


def test_unknown_service_version_route_and_method(make_world, upstream):
    world = make_world(base_url=upstream, routes=[ECHO_ROUTE], grant={}, decision=APPROVE)
    with world.hub.client(world.key) as client:
        assert problem(client.post("/api/no-such-service/v1/x", json={}), 404, "unknown-service")
        wrong_version = problem(
            client.post(f"/api/{world.service}/v9/echo/a", json={}), 404, "unknown-service"
        )
        assert "v1" in wrong_version["detail"]
    assert problem(world.call("POST", "/nothing-here", json={}), 404, "unknown-route")
    not_allowed = world.call("GET", "/echo/a")
    problem(not_allowed, 405, "method-not-allowed")
    assert not_allowed.headers["allow"] == "POST"


def test_grants_decide(make_world, upstream, unique):
    none = make_world(base_url=upstream, routes=[ECHO_ROUTE])
    assert problem(none.call("POST", "/echo/a", json={}), 403, "no-grant")

    pending = make_world(base_url=upstream, routes=[ECHO_ROUTE], grant={})
    assert problem(pending.call("POST", "/echo/a", json={}), 403, "grant-pending")

    refused = make_world(
        base_url=upstream,
        routes=[ECHO_ROUTE],
        grant={},
        decision={
            "decision": "refuse",
            "reason": "Không đúng chức năng, nhiệm vụ",
            "legal_basis": "Nghị định 47/2020/NĐ-CP, Điều 12",
        },
    )
    doc = problem(refused.call("POST", "/echo/a", json={}), 403, "grant-refused")
    assert doc["reason"] == "Không đúng chức năng, nhiệm vụ"
    assert doc["legal_basis"] == "Nghị định 47/2020/NĐ-CP, Điều 12"

    expired = make_world(
        base_url=upstream,
        routes=[ECHO_ROUTE],
        grant={"valid_from": "2020-01-01T00:00:00Z", "valid_until": "2021-01-01T00:00:00Z"},
        decision=APPROVE,
    )
    assert problem(expired.call("POST", "/echo/a", json={}), 403, "grant-not-in-force")

    other_version = make_world(
        base_url=upstream, routes=[ECHO_ROUTE], grant={"versions": ["v2"]}, decision=APPROVE
    )
    assert problem(other_version.call("POST", "/echo/a", json={}), 403, "no-grant")


def test_purpose_is_required_for_personal_data(make_world, population_url):
    world = population_world(make_world, population_url)
    assert problem(
        world.call("POST", "/cong-dan/xac-thuc", json=verify_body()), 403, "purpose-required"
    )
    doc = problem(
        world.call(
            "POST", "/cong-dan/xac-thuc", json=verify_body(), headers={"X-Purpose": "tiep-thi"}
        ),
        403,
        "purpose-not-granted",
    )
    assert "xac-thuc-ho-so" in doc["detail"]


# ---------------------------------------------------------------- what may be sent


def test_request_validation(hub, make_world, population_url):
    world = population_world(make_world, population_url)
    purpose = {"X-Purpose": "xac-thuc-ho-so"}
    malformed = world.call(
        "POST",
        "/cong-dan/xac-thuc",
        content=b'{"so_dinh_danh": ',
        headers={**purpose, "Content-Type": "application/json"},
    )
    assert "not valid JSON" in problem(malformed, 400, "malformed-json")["detail"]

    invalid = world.call(
        "POST",
        "/cong-dan/xac-thuc",
        headers=purpose,
        json={"so_dinh_danh": "12ab", "ho_va_ten": "", "extra": 1},
    )
    errors = problem(invalid, 422, "schema-violation")["errors"]
    pointers = {e["pointer"] for e in errors}
    assert {"/body/so_dinh_danh", "/body/ho_va_ten"} <= pointers
    assert any("ngay_sinh" in e["message"] for e in errors)  # missing required, at /body
    assert all(e["message"] for e in errors)

    wrong_type = world.call(
        "POST",
        "/cong-dan/xac-thuc",
        content=b"so_dinh_danh=1",
        headers={**purpose, "Content-Type": "application/x-www-form-urlencoded"},
    )
    problem(wrong_type, 415, "unsupported-media-type")

    huge = b'{"ho_va_ten": "' + b"a" * (hub.settings.max_body_bytes + 10) + b'"}'
    too_large = world.call(
        "POST",
        "/cong-dan/xac-thuc",
        content=huge,
        headers={**purpose, "Content-Type": "application/json"},
    )
    problem(too_large, 413, "body-too-large")

    empty = world.call("POST", "/cong-dan/xac-thuc", headers=purpose)
    problem(empty, 400, "body-required")
    # None of these reached the provider; each has its record.
    statuses = sorted(r["hub_status"] for r in world.records())
    assert statuses == [400, 400, 413, 415, 422]
    assert all(r["provider_status"] is None for r in world.records())


def test_query_parameters_are_validated(make_world, upstream):
    world = make_world(
        base_url=upstream,
        routes=[
            {
                "method": "GET",
                "path": "/tim",
                "upstream_path": "/echo/tim",
                "params_schema": {
                    "type": "object",
                    "required": ["so_dinh_danh"],
                    "properties": {"so_dinh_danh": {"pattern": "^[0-9]{12}$"}},
                },
            }
        ],
        grant={},
        decision=APPROVE,
    )
    errors = problem(world.call("GET", "/tim?so_dinh_danh=abc"), 422, "schema-violation")["errors"]
    assert errors[0]["pointer"] == "/params/so_dinh_danh"
    assert world.call("GET", "/tim?so_dinh_danh=012090001234").status_code == 200


# ---------------------------------------------------------------- when the provider fails


def test_provider_failures(
    make_world: Callable[..., World], upstream: str, closed_port_url: str
) -> None:
    def world_at(base: str, **route: Any) -> World:
        return make_world(
            base_url=base,
            routes=[{"method": "GET", "path": "/x", **route}],
            grant={},
            decision=APPROVE,
        )

    refused = world_at(closed_port_url)
    doc = problem(refused.call("GET", "/x"), 502, "provider-unreachable")
    assert doc["attempts"] == 3  # GET is idempotent: retried
    (record,) = refused.records()
    assert record["attempts"] == 3 and record["error"] and record["provider_status"] is None

    timeout = world_at(upstream, upstream_path="/slow", idempotent=False)
    problem(timeout.call("GET", "/x"), 504, "provider-timeout")
    assert timeout.records()[0]["attempts"] == 1  # declared not idempotent: never retried

    for code, status, kind in (
        (500, 502, "provider-bad-response"),
        (503, 503, "provider-unavailable"),
        (502, 502, "provider-unavailable"),
        (404, 404, "provider-rejected"),
    ):
        world = world_at(upstream, upstream_path=f"/status/{code}")
        doc = problem(world.call("GET", "/x"), status, kind)
        assert doc.get("provider_status") == code
        assert world.records()[0]["provider_status"] == code

    garbage = world_at(upstream, upstream_path="/garbage")
    assert "text/html" in problem(garbage.call("GET", "/x"), 502, "provider-bad-response")["detail"]
    problem(
        world_at(upstream, upstream_path="/bad-json").call("GET", "/x"),
        502,
        "provider-bad-response",
    )


def test_transient_failures_are_retried_and_counted(make_world, upstream, unique):
    world = make_world(
        base_url=upstream,
        routes=[{"method": "GET", "path": "/x", "upstream_path": f"/flaky/{unique('k')}"}],
        grant={},
        decision=APPROVE,
    )
    answer = world.call("GET", "/x")
    assert answer.status_code == 200, answer.text
    assert answer.json()["calls"] == 3
    assert world.records()[0]["attempts"] == 3


def test_provider_answer_outside_its_schema(make_world, upstream):
    world = make_world(
        base_url=upstream,
        routes=[
            {
                "method": "GET",
                "path": "/x",
                "upstream_path": "/wrong-shape",
                "response_schema": {
                    "type": "object",
                    "properties": {
                        "so_dinh_danh": {"type": "string"},
                        "ho_va_ten": {"type": "string"},
                    },
                },
            }
        ],
        grant={},
        decision=APPROVE,
    )
    doc = problem(world.call("GET", "/x"), 502, "provider-contract-violation")
    assert {e["pointer"] for e in doc["errors"]} == {"/so_dinh_danh", "/ho_va_ten"}
    assert "12345" not in str(doc)  # the provider's values are not echoed


# ---------------------------------------------------------------- other connectors and credentials


def test_rest_provider_behind_oauth2_client_credentials(hub, make_world):
    from simulators import civil_status
    from simulators.server import run_in_thread

    with run_in_thread(civil_status.create_app()) as civil:
        world = make_world(
            base_url=f"{civil}/api",
            auth={
                "type": "oauth2_client_credentials",
                "token_url": f"{civil}/oauth/token",
                "client_id": "lgsp-hub",
                "secret": "bi-mat-demo",
            },
            routes=[
                {
                    "method": "GET",
                    "path": "/khai-sinh/{so_dang_ky}",
                    "subject_pointer": "/path/so_dang_ky",
                },
                {
                    "method": "GET",
                    "path": "/khai-sinh",
                    "subject_pointer": "/query/so_dinh_danh",
                    "params_schema": {
                        "type": "object",
                        "required": ["so_dinh_danh"],
                        "properties": {"so_dinh_danh": {"pattern": "^[0-9]{12}$"}},
                    },
                },
            ],
            personal_data=True,
            grant={
                "purposes": ["giai-quyet-tthc"],
                "fields": ["items.so_dang_ky", "items.ho_va_ten", "total"],
            },
            decision=APPROVE,
        )
        child = next(
            c
            for c in citizens.citizens()
            if c.ngay_sinh.year >= 2000 and c.so_dinh_danh.startswith("012")
        )
        purpose = {"X-Purpose": "giai-quyet-tthc"}
        answers = [
            world.call("GET", f"/khai-sinh?so_dinh_danh={child.so_dinh_danh}", headers=purpose)
            for _ in range(5)
        ]
        assert all(a.status_code == 200 for a in answers), answers[0].text
        found = answers[0].json()
        assert found["total"] >= 1
        assert set(found["items"][0]) == {"so_dang_ky", "ho_va_ten"}  # projected
        one = world.call("GET", f"/khai-sinh/{found['items'][0]['so_dang_ky']}", headers=purpose)
        assert one.status_code == 200 and one.json() == {}  # a single record has no granted field
        missing = world.call("GET", "/khai-sinh/KS-0000-00000-000000", headers=purpose)
        assert problem(missing, 404, "provider-rejected")["provider_status"] == 404
        stats = httpx.get(f"{civil}/_sim/stats").json()
        assert stats["tokens_issued"] == 1  # one token, cached across calls
        subjects = {r["subject_hash"] for r in world.records(status=200)}
        assert hub.hub.runtime.subject_hash(child.so_dinh_danh) in subjects


def test_soap_1_2_provider(make_world, population_url, unique):
    world = population_world(make_world, population_url, soap_version="1.2")
    rid = unique("soap12")
    purpose = {"X-Purpose": "xac-thuc-ho-so", "X-Request-Id": rid}
    answer = world.call("POST", "/cong-dan/xac-thuc", json=verify_body(), headers=purpose)
    assert answer.status_code == 200, answer.text
    assert answer.json()["ket_qua"] is True
    log = httpx.get(f"{population_url}/_sim/requests").json()
    (entry,) = [e for e in log if e.get("x_request_id") == rid]
    assert entry["soap_version"] == "1.2" and entry["ma_yeu_cau"] == rid
    fault = world.call(
        "POST",
        "/cong-dan/xac-thuc",
        json=verify_body(so_dinh_danh="012099999999"),
        headers={"X-Purpose": "xac-thuc-ho-so"},
    )
    assert problem(fault, 404, "provider-fault")["fault"]["detail_code"] == "CD_KHONG_TON_TAI"


def test_wrong_provider_credentials_are_502(make_world, population_url):
    world = population_world(make_world, population_url)
    with world.hub.admin() as admin:
        answer = admin.patch(
            f"/admin/connectors/{world.connector}",
            json={"auth": {"type": "basic", "username": "lgsp-laichau", "secret": "sai-mat-khau"}},
        )
        assert answer.status_code == 200, answer.text
    refused = world.call(
        "POST", "/cong-dan/xac-thuc", json=verify_body(), headers={"X-Purpose": "xac-thuc-ho-so"}
    )
    doc = problem(refused, 502, "provider-auth-failed")
    assert "sai-mat-khau" not in refused.text and doc["provider_status"] == 401


def test_documents_too_deep_to_report_are_refused_cleanly(make_world, upstream):
    """A body nested ~1000 deep parses, but the validator cannot describe its errors: 422/400."""
    world = make_world(
        base_url=upstream,
        routes=[{"method": "POST", "path": "/x", "upstream_path": "/echo/x",
                 "request_schema": {"type": "object"}}],
        grant={}, decision=APPROVE,
    )  # fmt: skip
    deep = b"[" * 1000 + b"]" * 1000
    answer = world.call("POST", "/x", content=deep, headers={"Content-Type": "application/json"})
    doc = problem(answer, 400, "too-deep")
    assert "nested" in doc["detail"]


def test_provider_answer_too_deep_is_502(make_world, upstream):
    world = make_world(base_url=upstream,
                       routes=[{"method": "GET", "path": "/x", "upstream_path": "/deep"}],
                       grant={}, decision=APPROVE)  # fmt: skip
    doc = problem(world.call("GET", "/x"), 502, "provider-bad-response")
    assert "nested" in doc["detail"]


def test_nul_in_the_path_is_answered_and_recorded(hub, make_world, upstream, unique):
    """PostgreSQL cannot store NUL: the record is kept anyway (and no other batch fails)."""
    world = make_world(base_url=upstream, routes=[ECHO_ROUTE], grant={}, decision=APPROVE)
    rid = unique("nul")
    with world.hub.client(world.key) as client:
        answer = client.post("/api/svc%00x/v1/a", json={}, headers={"X-Request-Id": rid})
    problem(answer, 404, "unknown-service")
    (record,) = audit_records(hub, request_id=rid)
    assert record["service"] == "svc\ufffdx" and record["hub_status"] == 404


def test_a_connector_broken_behind_the_hubs_back_fails_alone(hub, make_world, population_url,
                                                              upstream):  # fmt: skip
    """A row changed in the database (bypassing validation) disables its services, only them."""
    from sqlalchemy import text

    broken = population_world(make_world, population_url)
    healthy = make_world(base_url=upstream, routes=[ECHO_ROUTE], grant={}, decision=APPROVE)
    with hub.hub.runtime.engine.begin() as connection:
        connection.execute(
            text("UPDATE connector SET options = '{}' WHERE name = :n"), {"n": broken.connector}
        )  # a SOAP connector without its namespace
        connection.execute(text("UPDATE registrystate SET revision = revision + 1"))
    wait_until(
        lambda: f"{broken.service}/v1" in httpx.get(f"{hub.url}/readyz").json()["unavailable"],
        timeout=5,
        interval=0.1,
        what="/readyz to list the service of the broken connector as unavailable",
    )

    answer = broken.call("POST", "/cong-dan/xac-thuc", json=verify_body(),
                         headers={"X-Purpose": "xac-thuc-ho-so"})  # fmt: skip
    problem(answer, 503, "service-unavailable")
    assert "namespace" not in answer.text  # the reason is for operators, not consumers
    assert healthy.call("POST", "/echo/a", json={}).status_code == 200

    # The registry can still be exported, the broken row as stored, and applying it back names
    # what is wrong; a PATCH through the API mends it.
    with hub.admin() as admin:
        exported = admin.get("/admin/export")
        assert exported.status_code == 200, exported.text
        [row] = [c for c in exported.json()["connectors"] if c["name"] == broken.connector]
        assert row["options"]["namespace"] is None
        refused = admin.post("/admin/apply", params={"dry_run": "true"}, json=exported.json())
        assert refused.status_code == 422, refused.text
        assert any(e["pointer"].startswith("/connectors/") for e in refused.json()["errors"])
        mended = admin.patch(
            f"/admin/connectors/{broken.connector}",
            json={"options": {"namespace": "urn:vn:gov:csdlqgvdc:dancu:1.0"}},
        )
        assert mended.status_code == 200, mended.text
