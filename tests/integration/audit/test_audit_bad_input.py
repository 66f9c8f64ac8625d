"""Bad input to the auditors' API: always a 4xx problem+json that points at the culprit, never
a 500 (both backends: PostgreSQL refuses what SQLite lets through, e.g. NUL or BIGINT
overflow)."""

from __future__ import annotations

import base64
from typing import Any

import pytest

from tests.integration.conftest import auditor_key

HUGE = 10**20  # beyond BIGINT
BIGINT = 2**63 - 1
INTEGER = 2**31 - 1
PERSON = "001234567890"


def b64(raw: str) -> str:
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


GET_CASES: list[tuple[str, dict[str, Any], str]] = [
    ("/audit/checkpoints", {"size": HUGE}, "/query/size"),
    ("/audit/checkpoints", {"size": BIGINT + 1}, "/query/size"),
    ("/audit/checkpoints", {"size": "x"}, "/query/size"),
    ("/audit/checkpoints", {"limit": HUGE}, "/query/limit"),
    ("/audit/checkpoints", {"cursor": "9" * 30}, "/query/cursor"),
    ("/audit/checkpoints", {"cursor": "\x00"}, "/query/cursor"),
    ("/audit/checkpoints", {"cursor": str(INTEGER + 1)}, "/query/cursor"),
    ("/audit/proofs/inclusion", {"record": "x", "size": HUGE}, "/query/size"),
    ("/audit/proofs/inclusion", {"record": "a\x00b"}, "/query/record"),
    ("/audit/proofs/inclusion", {"record": "x" * 5000}, "/query/record"),
    ("/audit/proofs/consistency", {"from": 1, "to": HUGE}, "/query/to"),
    ("/audit/proofs/consistency", {"from": HUGE, "to": 2}, "/query/from"),
    ("/audit/proofs/consistency", {"from": 1}, "/query/to"),
    ("/audit/exchanges", {"grant_id": HUGE}, "/query/grant_id"),
    ("/audit/exchanges", {"grant_id": INTEGER + 1}, "/query/grant_id"),
    ("/audit/exchanges", {"status": HUGE}, "/query/status"),
    ("/audit/exchanges", {"status_class": HUGE}, "/query/status_class"),
    ("/audit/exchanges", {"limit": HUGE}, "/query/limit"),
    ("/audit/exchanges", {"cursor": b64(f"s:{HUGE}")}, "/query/cursor"),
    ("/audit/exchanges", {"cursor": b64("s:-5")}, "/query/cursor"),
    ("/audit/exchanges", {"cursor": "!!"}, "/query/cursor"),
    ("/audit/exchanges", {"consumer": "a\x00b"}, "/query/consumer"),
    ("/audit/exchanges", {"subject": "a\x00b"}, "/query/subject"),
    ("/audit/exchanges", {"trace_id": "\x00"}, "/query/trace_id"),
    ("/audit/exchanges", {"actor": "x\x00"}, "/query/actor"),
    ("/audit/exchanges", {"kind": "nope"}, "/query/kind"),
    ("/audit/exchanges", {"since": "99999-01-01T00:00:00Z"}, "/query/since"),
    ("/audit/exchanges", {"since": "0001-01-01T00:00:00+05:00"}, "/query/since"),
    ("/audit/exchanges", {"until": "9999-12-31T23:59:59-05:00"}, "/query/until"),
    ("/audit/exchanges", {"since": "2024-01-01T00:00:00+99:00"}, "/query/since"),
    ("/audit/exchanges", {"since": "2025-01-02", "until": "2025-01-01"}, "/query/until"),
    ("/audit/exchanges/a%00b", {}, "/path/record_id"),
    ("/audit/exchanges/counts", {"by": "day", "grant_id": HUGE}, "/query/grant_id"),
    ("/audit/exchanges/counts", {"by": "day", "service": "s\x00"}, "/query/service"),
    ("/audit/exchanges/counts", {"by": "nope"}, "/query/by"),
    ("/audit/exchanges/counts", {}, "/query/by"),
    ("/audit/exchanges/export", {"grant_id": HUGE}, "/query/grant_id"),
    ("/audit/exchanges/export", {"purpose": "p\x00"}, "/query/purpose"),
    ("/audit/exchanges/export", {"format": "xml"}, "/query/format"),
    ("/audit/exchanges/export", {"since": "0001-01-01T00:00:00+01:00"}, "/query/since"),
    (f"/audit/subjects/{PERSON}", {"limit": HUGE}, "/query/limit"),
    (f"/audit/subjects/{PERSON}", {"cursor": "!!"}, "/query/cursor"),
    (f"/audit/subjects/{PERSON}", {"cursor": b64(f"r:{HUGE}:1")}, "/query/cursor"),
    (f"/audit/subjects/{PERSON}", {"cursor": b64(f"r:0:{HUGE}")}, "/query/cursor"),
    (f"/audit/subjects/{PERSON}", {"cursor": b64("r:-1:-1")}, "/query/cursor"),
    (f"/audit/subjects/{PERSON}", {"since": "0001-01-01T00:00:00+05:00"}, "/query/since"),
    (f"/audit/subjects/{PERSON}", {"format": "xml"}, "/query/format"),
    ("/audit/subjects/12345", {}, "/path/identifier"),
    ("/audit/subjects/0012345678%0090", {}, "/path/identifier"),
    # A misspelt filter is refused, not ignored (ignored, it would return every record).
    ("/audit/exchanges", {"servise": "dan-cu"}, "/query/servise"),
    ("/audit/exchanges/counts", {"by": "day", "consumr": "x"}, "/query/consumr"),
    ("/audit/exchanges/export", {"format": "csv", "sice": "2026-01-01"}, "/query/sice"),
    (f"/audit/subjects/{PERSON}", {"fromat": "pdf"}, "/query/fromat"),
    ("/audit/checkpoints", {"sizes": 3}, "/query/sizes"),
    ("/audit/keys", {"all": "1"}, "/query/all"),
]


POST_CASES: list[tuple[Any, str]] = [
    ([PERSON], ""),
    ("just a string", ""),
    (None, ""),
    ({}, "/identifier"),
    ({"identifier": 12}, "/identifier"),
    ({"identifier": PERSON + "\x00"}, "/identifier"),
    ({"identifier": "x" * 100_000}, "/identifier"),
    ({"identifier": PERSON, "limit": HUGE}, "/limit"),
    ({"identifier": PERSON, "limit": "many"}, "/limit"),
    ({"identifier": PERSON, "cursor": 5}, "/cursor"),
    ({"identifier": PERSON, "cursor": "!!"}, "/cursor"),
    ({"identifier": PERSON, "cursor": b64(f"r:{HUGE}:{HUGE}")}, "/cursor"),
    ({"identifier": PERSON, "since": "0001-01-01T00:00:00+05:00"}, "/since"),
    ({"identifier": PERSON, "since": "yesterday"}, "/since"),
    ({"identifier": PERSON, "format": "xml"}, "/format"),
    ({"identifier": PERSON, "extra": 1}, "/extra"),
]


def problem(answer: Any, pointer: str) -> None:
    assert answer.status_code < 500, answer.text
    assert 400 <= answer.status_code, answer.text
    assert answer.headers["content-type"].startswith("application/problem+json"), answer.text
    body = answer.json()
    assert body["status"] == answer.status_code
    pointers = [e["pointer"] for e in body.get("errors", [])]
    assert pointer in pointers, body


def test_bad_queries(hub: Any) -> None:
    with hub.client(auditor_key(hub)) as auditor:
        for path, params, pointer in GET_CASES:
            answer = auditor.get(path, params=params)
            try:
                problem(answer, pointer)
            except AssertionError as exc:
                raise AssertionError(f"GET {path} {params!r}: {exc}") from None


def test_bad_bodies(hub: Any) -> None:
    with hub.client(auditor_key(hub)) as auditor:
        for body, pointer in POST_CASES:
            answer = auditor.post("/audit/subjects", json=body)
            try:
                problem(answer, pointer)
            except AssertionError as exc:
                raise AssertionError(f"POST {body!r:.80}: {exc}") from None


def test_an_unknown_parameter_is_named_with_what_the_endpoint_takes(hub: Any) -> None:
    with hub.client(auditor_key(hub)) as auditor:
        answer = auditor.get("/audit/exchanges", params={"service": "dan-cu", "servise": "x"})
    assert answer.status_code == 422
    body = answer.json()
    assert "servise" in body["detail"] and "service" in body["detail"]
    assert [e["pointer"] for e in body["errors"]] == ["/query/servise"]


def test_admin_lists_refuse_unknown_parameters_too(hub: Any) -> None:
    with hub.admin() as admin:
        answer = admin.get("/admin/grants", params={"consumr": "x"})
        assert answer.status_code == 422
        assert [e["pointer"] for e in answer.json()["errors"]] == ["/query/consumr"]
        assert admin.get("/admin/grants", params={"consumer": "x"}).status_code == 200


def test_malformed_json(hub: Any) -> None:
    with hub.client(auditor_key(hub)) as auditor:
        answer = auditor.post(
            "/audit/subjects", content=b"{not json", headers={"content-type": "application/json"}
        )
        assert answer.status_code < 500, answer.text
        assert answer.headers["content-type"].startswith("application/problem+json")


@pytest.mark.parametrize("value", [BIGINT, INTEGER])
def test_the_largest_values_still_answer(hub: Any, value: int) -> None:
    """At the caps themselves the hub answers (nothing matches), it does not overflow."""
    with hub.client(auditor_key(hub)) as auditor:
        assert auditor.get("/audit/checkpoints", params={"size": BIGINT}).status_code == 404
        listed = auditor.get("/audit/checkpoints", params={"cursor": str(INTEGER)})
        assert listed.status_code == 200, listed.text
        for path, params in (
            ("/audit/proofs/inclusion", {"record": "x", "size": BIGINT}),
            ("/audit/proofs/consistency", {"from": 1, "to": BIGINT}),
            ("/audit/proofs/consistency", {"from": BIGINT, "to": BIGINT}),
        ):
            answer = auditor.get(path, params=params)
            assert 400 <= answer.status_code < 500, answer.text
            assert answer.headers["content-type"].startswith("application/problem+json")
        found = auditor.get("/audit/exchanges", params={"grant_id": INTEGER})
        assert found.status_code == 200, found.text
        assert found.json()["items"] == []
        cursor = auditor.get("/audit/exchanges", params={"cursor": b64(f"s:{value}")})
        assert cursor.status_code == 200, cursor.text
