"""/admin/grants: requests, decisions with reasons, terms changes, who may do what."""

from __future__ import annotations

from typing import Any

import pytest

from tests.integration.admin.conftest import Base, Registry, ok, problem

REFUSAL = {"decision": "refuse", "reason": "Không cần thiết", "legal_basis": "Nghị định 47/2020"}


def test_grant_request_decision_and_terms(reg: Registry, base: Base) -> None:
    consumer = reg.consumer(base.agency)["name"]
    terms = {"consumer": consumer, "service": base.service, "purposes": ["xac-thuc"],
             "fields": ["ho_va_ten"], "valid_until": "2999-01-01T00:00:00"}  # fmt: skip
    grant = ok(reg.client.post("/admin/grants", json=terms), 201)
    url = f"/admin/grants/{grant['id']}"
    assert grant["status"] == "requested" and grant["requested_by"].startswith("bootstrap-")
    assert grant["versions"] == ["*"]
    problem(reg.client.post("/admin/grants", json=terms), 409)

    approved = ok(reg.client.post(f"{url}/decision", json={"decision": "approve"}))
    assert approved["status"] == "approved" and approved["decided_by"] == grant["requested_by"]
    assert approved["decided_at"] is not None
    listed = ok(
        reg.client.get("/admin/grants", params={"consumer": consumer, "status": "approved"})
    )
    assert [g["id"] for g in listed] == [grant["id"]]

    # New terms need a new decision.
    changed = ok(reg.client.patch(url, json={"purposes": ["xac-thuc", "thong-ke"]}))
    assert changed["status"] == "requested" and changed["decided_by"] is None
    unchanged = ok(reg.client.patch(url, json={"purposes": ["xac-thuc", "thong-ke"]}))
    assert unchanged["status"] == "requested"

    refused = ok(reg.client.post(f"{url}/decision", json=REFUSAL))
    assert refused["status"] == "refused" and refused["legal_basis"] == REFUSAL["legal_basis"]
    assert ok(reg.client.get(url))["reason"] == REFUSAL["reason"]
    records = reg.changes()
    actions = [r["action"] for r in records if r["object_key"] == f"{consumer}/{base.service}"]
    assert actions[:4] == ["refuse", "update", "approve", "create"]

    assert reg.client.delete(url).status_code == 204
    problem(reg.client.get(url), 404)


def test_every_decision_stays_in_the_grant_history(reg: Registry, base: Base) -> None:
    """A refusal approved later keeps its reason and legal basis (in the history)."""
    consumer = reg.consumer(base.agency)["name"]
    grant = ok(
        reg.client.post(
            "/admin/grants",
            json={"consumer": consumer, "service": base.service, "purposes": ["xac-thuc"]},
        ),
        201,
    )
    url = f"/admin/grants/{grant['id']}"
    assert grant["history"] == []
    ok(reg.client.post(f"{url}/decision", json=REFUSAL))
    approval = {"decision": "approve", "reason": "Bổ sung hồ sơ", "legal_basis": "Luật Dữ liệu"}
    approved = ok(reg.client.post(f"{url}/decision", json=approval))
    assert (approved["status"], approved["reason"]) == ("approved", "Bổ sung hồ sơ")
    changed = ok(reg.client.patch(url, json={"purposes": ["xac-thuc", "thong-ke"]}))

    history = ok(reg.client.get(url))["history"]
    assert [(h["status"], h["reason"], h["legal_basis"]) for h in history] == [
        ("refused", REFUSAL["reason"], REFUSAL["legal_basis"]),
        ("approved", "Bổ sung hồ sơ", "Luật Dữ liệu"),
        ("requested", "terms changed: purposes", None),
    ]
    assert {h["decided_by"] for h in history} == {grant["requested_by"]}
    assert [h["decided_at"] for h in history] == sorted(h["decided_at"] for h in history)
    assert changed["history"] == history
    listed = ok(reg.client.get("/admin/grants", params={"consumer": consumer}))
    assert [g["history"] for g in listed] == [history]


@pytest.mark.parametrize(
    ("decision", "pointer"),
    [
        ({"decision": "refuse"}, "/reason"),
        ({"decision": "refuse", "reason": "x"}, "/legal_basis"),
        ({"decision": "refuse", "reason": "x", "legal_basis": "  "}, "/legal_basis"),
        ({"decision": "maybe"}, "/decision"),
        ({}, "/decision"),
    ],
)
def test_refusal_needs_reason_and_legal_basis(
    reg: Registry, base: Base, decision: dict[str, Any], pointer: str
) -> None:
    consumer = reg.consumer(base.agency)["name"]
    grant = ok(reg.client.post("/admin/grants", json={"consumer": consumer,
                                                      "service": base.service}), 201)  # fmt: skip
    problem(reg.client.post(f"/admin/grants/{grant['id']}/decision", json=decision), 422, pointer)
    assert ok(reg.client.get(f"/admin/grants/{grant['id']}"))["status"] == "requested"


@pytest.mark.parametrize(
    ("fields", "pointer"),
    [
        ({"consumer": "nobody-at-all"}, "/consumer"),
        ({"service": "no-such-svc"}, "/service"),
        ({"versions": ["1"]}, "/versions"),
        ({"versions": []}, "/versions"),
        ({"purposes": ["Bad Purpose"]}, "/purposes"),
        ({"fields": ["a..b"]}, "/fields"),
        (
            {"valid_from": "2030-01-01T00:00:00Z", "valid_until": "2029-01-01T00:00:00"},
            "/valid_until",
        ),
        ({"valid_until": "tomorrow"}, "/valid_until"),
        ({"status": "approved"}, "/status"),
    ],
)
def test_grant_field_rules(reg: Registry, base: Base, fields: dict[str, Any], pointer: str) -> None:
    body = {"consumer": base.consumer, "service": base.service, **fields}
    problem(reg.client.post("/admin/grants", json=body), 422, pointer)


def test_grant_patch_rules(reg: Registry, base: Base) -> None:
    consumer = reg.consumer(base.agency)["name"]
    grant = ok(reg.client.post("/admin/grants", json={"consumer": consumer,
                                                      "service": base.service}), 201)  # fmt: skip
    url = f"/admin/grants/{grant['id']}"
    problem(reg.client.patch(url, json={"versions": ["x"]}), 422, "/versions")
    problem(reg.client.patch(url, json={"status": "approved"}), 422, "/status")
    problem(reg.client.patch(url, json={"valid_from": "2030-01-01T00:00:00Z",
                                        "valid_until": "2020-01-01T00:00:00Z"}), 422)  # fmt: skip
    problem(reg.client.get("/admin/grants/abc"), 422, "/path/grant_id")
    problem(reg.client.get("/admin/grants/99999999999999999999"), 422, "/path/grant_id")
    problem(reg.client.get("/admin/grants/2147483647"), 404)


def test_integrators_request_for_their_consumers_only(reg: Registry, base: Base) -> None:
    ours = reg.agency()
    mine, theirs = reg.consumer(ours)["name"], reg.consumer(base.agency)["name"]
    foreign = ok(reg.client.post("/admin/grants", json={"consumer": theirs,
                                                        "service": base.service}), 201)  # fmt: skip
    with reg.as_key(reg.principal("integrator", ours)) as client:
        grant = ok(client.post("/admin/grants", json={"consumer": mine,
                                                      "service": base.service}), 201)  # fmt: skip
        problem(client.post("/admin/grants", json={"consumer": theirs,
                                                   "service": base.service}), 403)  # fmt: skip
        problem(client.post(f"/admin/grants/{grant['id']}/decision",
                            json={"decision": "approve"}), 403)  # fmt: skip
        problem(client.get(f"/admin/grants/{foreign['id']}"), 403)
        problem(client.patch(f"/admin/grants/{foreign['id']}", json={"purposes": []}), 403)
        assert [g["id"] for g in ok(client.get("/admin/grants"))] == [grant["id"]]
        ok(client.patch(f"/admin/grants/{grant['id']}", json={"purposes": ["tra-cuu"]}))
        assert client.delete(f"/admin/grants/{grant['id']}").status_code == 204
