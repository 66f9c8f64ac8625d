"""Topics and subscriptions in manifests: applied after grants, idempotent, secrets kept out of
answers, records and exports; `lgsp apply` resolves {env: NAME} secrets of subscriptions."""

from __future__ import annotations

import copy
import io
import json
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from gateway.cli import manifests as manifest_client
from tests.integration import sealed
from tests.integration.admin.conftest import UPSTREAM, Registry, ok, problem
from tests.integration.admin.test_subscriptions import unsubscribe, whsec
from tests.integration.admin.test_topics import STATUS, rid
from tests.integration.conftest import random_agency


@pytest.fixture(autouse=True)
def _cleanup(reg: Registry) -> Iterator[None]:
    """Delete the subscriptions on the topics a test made, so no delivery keeps running."""
    yield
    for found in ok(reg.client.get("/admin/topics")):
        if found["name"] in MADE:
            unsubscribe(reg, found["name"])
    MADE.clear()


MADE: set[str] = set()


def manifest(reg: Registry) -> dict[str, Any]:
    agency, other = random_agency(), random_agency()
    subject, topic = reg.unique("ho-so.trang-thai"), f"ho-so.t{secrets.token_hex(4)}"
    MADE.add(topic)
    portal, app, reader = reg.unique("cong-dvc"), reg.unique("mot-cua"), reg.unique("dvcqg")
    return {
        "apiVersion": "lgsp.laichau.gov.vn/v1",
        "kind": "Manifest",
        "agencies": [{"code": agency, "name": "Sở Nội vụ"}, {"code": other, "name": "Bộ"}],
        "schemas": [{"subject": subject, "versions": [{"version": 1, "schema": STATUS}]}],
        "connectors": [{"name": portal, "agency_code": other, "kind": "rest",
                        "base_url": UPSTREAM}],
        "consumers": [{"name": app, "agency_code": agency, "title": "Một cửa"},
                      {"name": reader, "agency_code": other, "title": "Cổng DVC quốc gia"}],
        "topics": [{"name": topic, "agency_code": agency, "title": "Trạng thái hồ sơ",
                    "schema": {"subject": subject, "version": 1}, "key_pointer": "/MaHoSo",
                    "publishers": [app], "subscribers": [reader]}],
        "subscriptions": [
            {"name": reg.unique("dvcqg-push"), "topic": topic, "consumer": reader,
             "delivery": "push", "connector": portal, "path": "/hooks/ho-so",
             "filter": {"pointer": "/TrangThai", "values": [3, 4, 10]}},
            {"name": reg.unique("mot-cua-group"), "topic": topic, "consumer": app,
             "delivery": "group"},
        ],
    }  # fmt: skip


def apply(reg: Registry, doc: dict[str, Any], **kw: Any) -> Any:
    return reg.client.post("/admin/apply", json=doc, **kw)


def stored_secrets(reg: Registry, name: str) -> list[str]:
    return sealed.subscription_secrets(reg.hub.hub.runtime.engine, name)


def test_topics_and_subscriptions_apply_after_grants_idempotently(reg: Registry) -> None:
    doc = manifest(reg)
    topic, push = doc["topics"][0]["name"], doc["subscriptions"][0]["name"]
    done = ok(apply(reg, doc))
    kinds = [o["kind"] for o in done["objects"] if o["action"] == "create"]
    assert kinds[-3:] == ["topic", "subscription", "subscription"]
    found = ok(reg.client.get(f"/admin/topics/{topic}"))
    assert found["schema"] == doc["topics"][0]["schema"] and found["publishers"] == [
        doc["consumers"][0]["name"]
    ]
    sub = ok(reg.client.get(f"/admin/subscriptions/{push}"))
    assert sub["secrets_set"] == 1 and sub["filter"]["values"] == [3, 4, 10]
    generated = stored_secrets(reg, push)
    assert generated[0].startswith("whsec_")

    headers = rid()
    again = ok(apply(reg, doc, headers=headers))
    assert {o["action"] for o in again["objects"]} == {"unchanged"}
    assert reg.changes(request_id=headers["X-Request-Id"]) == []
    assert stored_secrets(reg, push) == generated  # absent secrets keep the stored ones

    changed = copy.deepcopy(doc)
    changed["topics"][0]["title"] = "Tiến độ hồ sơ"
    changed["subscriptions"][0]["filter"]["values"] = [10]
    headers = rid()
    result = ok(apply(reg, changed, headers=headers))
    updates = {(o["kind"], o["key"]): o["changes"] for o in result["objects"]
               if o["action"] == "update"}  # fmt: skip
    assert updates == {
        ("topic", topic): {"title": ["Trạng thái hồ sơ", "Tiến độ hồ sơ"]},
        ("subscription", push): {"filter": [{"pointer": "/TrangThai", "values": [3, 4, 10]},
                                            {"pointer": "/TrangThai", "values": [10]}]},
    }  # fmt: skip
    recorded = {(r["object_type"], r["action"]) for r in reg.changes(
        request_id=headers["X-Request-Id"])}  # fmt: skip
    assert recorded == {("topic", "update"), ("subscription", "update")}


def test_subscription_secrets_in_manifests(reg: Registry) -> None:
    doc = manifest(reg)
    push = doc["subscriptions"][0]["name"]
    first, second = whsec(), whsec()
    doc["subscriptions"][0]["secrets"] = [first]
    created = ok(apply(reg, doc))
    assert stored_secrets(reg, push) == [first]
    assert first not in json.dumps(created)

    doc["subscriptions"][0]["secrets"] = [second, first]
    headers = rid()
    result = ok(apply(reg, doc, headers=headers))
    (update,) = [o for o in result["objects"] if o["action"] == "update"]
    assert update["changes"] == {"secrets": ["(hidden)", "(changed)"]}
    assert stored_secrets(reg, push) == [second, first]
    text = json.dumps(result) + json.dumps(reg.changes(request_id=headers["X-Request-Id"]))
    assert first not in text and second not in text
    # The same secrets again, or none: unchanged.
    assert {o["action"] for o in ok(apply(reg, doc))["objects"]} == {"unchanged"}
    del doc["subscriptions"][0]["secrets"]
    assert {o["action"] for o in ok(apply(reg, doc))["objects"]} == {"unchanged"}

    bad = copy.deepcopy(doc)
    bad["subscriptions"][0]["secrets"] = [{"env": "WEBHOOK_SECRET"}]
    problem(apply(reg, bad), 422, "/subscriptions/0/secrets/0")
    bad["subscriptions"][0]["secrets"] = [first, "plain-text"]
    problem(apply(reg, bad), 422, "/subscriptions/0/secrets/1")
    bad["subscriptions"][0]["secrets"] = None
    bad["subscriptions"][1]["secrets"] = [first]
    problem(apply(reg, bad), 422, "/subscriptions/1/secrets")
    assert stored_secrets(reg, push) == [second, first]


def test_refusals_point_into_the_manifest(reg: Registry) -> None:
    doc = manifest(reg)
    agency = doc["agencies"][0]["code"]
    cases: list[tuple[str, Any, str]] = [
        ("topics", {"schema": {"subject": "no-such-subject", "version": 1}}, "/topics/0/schema"),
        ("topics", {"name": "Bad.Topic"}, "/topics/0/name"),
        ("topics", {"publishers": ["no-such-app-m1"]}, "/topics/0/publishers/0"),
        ("subscriptions", {"topic": "no.such-topic"}, "/subscriptions/0/topic"),
        ("subscriptions", {"connector": None}, "/subscriptions/0/connector"),
        ("subscriptions", {"filter": {"pointer": "x", "values": [1]}},
         "/subscriptions/0/filter/pointer"),
    ]  # fmt: skip
    for kind, fields, pointer in cases:
        bad = copy.deepcopy(doc)
        bad[kind][0] |= fields
        problem(apply(reg, bad), 422, pointer)
    bad = copy.deepcopy(doc)
    bad["subscriptions"].append(bad["subscriptions"][0])
    problem(apply(reg, bad), 422, "/subscriptions/2")
    bad = copy.deepcopy(doc)
    bad["topics"][0]["subscribers"] = []
    problem(apply(reg, bad), 403, "/subscriptions/0/consumer")
    problem(reg.client.get(f"/admin/agencies/{agency}"), 404)  # nothing was applied

    ok(apply(reg, doc))
    for kind, fields, pointer in [
        ("topics", {"partitions": 6}, "/topics/0/partitions"),
        ("topics", {"key_pointer": "/Khac"}, "/topics/0/key_pointer"),
        ("subscriptions", {"delivery": "group", "connector": None},
         "/subscriptions/0/delivery"),
        ("subscriptions", {"topic": doc["topics"][0]["name"] + "x"}, "/subscriptions/0/topic"),
    ]:  # fmt: skip
        bad = copy.deepcopy(doc)
        bad[kind][0] |= fields
        problem(apply(reg, bad), 422, pointer)


def test_export_round_trip_without_secrets(reg: Registry) -> None:
    doc = manifest(reg)
    secret = whsec()
    doc["subscriptions"][0]["secrets"] = [secret]
    ok(apply(reg, doc))
    exported = ok(reg.client.get("/admin/export"))
    (topic,) = [t for t in exported["topics"] if t["name"] == doc["topics"][0]["name"]]
    assert topic == {k: v for k, v in doc["topics"][0].items()}
    names = {s["name"]: s for s in exported["subscriptions"]}
    push = names[doc["subscriptions"][0]["name"]]
    assert "secrets" not in push and push["filter"] == doc["subscriptions"][0]["filter"]
    assert secret not in json.dumps(exported) and "whsec_" not in json.dumps(exported)
    for connector in exported["connectors"]:  # other tests' connectors: keep their secrets
        connector.get("auth", {}).pop("secret", None)
    result = ok(apply(reg, exported))
    assert result["summary"]["create"] == result["summary"]["update"] == 0
    assert stored_secrets(reg, push["name"]) == [secret]


def test_integrators_apply_their_agency_subscriptions(reg: Registry) -> None:
    doc = manifest(reg)
    ok(apply(reg, doc))
    other = doc["agencies"][1]["code"]
    key = reg.principal("integrator", other)
    mine = {**doc, "agencies": [], "schemas": [], "consumers": [], "connectors": [], "topics": []}
    with reg.as_key(key) as client:
        changed = copy.deepcopy(mine)
        changed["subscriptions"][0]["path"] = "/v2"
        changed["subscriptions"] = changed["subscriptions"][:1]
        result = ok(client.post("/admin/apply", json=changed))
        assert [o["action"] for o in result["objects"]] == ["update"]
        problem(client.post("/admin/apply", json=mine), 403, "/subscriptions/1")
        problem(client.post("/admin/apply", json={**mine, "subscriptions": [],
                                                  "topics": doc["topics"]}), 403,
                "/topics/0")  # fmt: skip
        exported = ok(client.get("/admin/export"))
    assert [s["name"] for s in exported["subscriptions"]] == [doc["subscriptions"][0]["name"]]
    assert exported["topics"] == []


def test_lgsp_apply_resolves_subscription_secrets(
    reg: Registry, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    doc = manifest(reg)
    push = doc["subscriptions"][0]["name"]
    secret = whsec()
    doc["subscriptions"][0]["secrets"] = [{"env": "DVCQG_WEBHOOK_SECRET"}]
    path = tmp_path / "messaging.yaml"
    path.write_text(yaml.safe_dump(doc, allow_unicode=True), encoding="utf-8")

    def run() -> tuple[int, str]:
        out = io.StringIO()
        code = manifest_client.apply(
            hub_url=reg.hub.url, key=reg.hub.admin_key, path=path, dry_run=False, out=out
        )
        return code, out.getvalue()

    monkeypatch.delenv("DVCQG_WEBHOOK_SECRET", raising=False)
    code, text = run()
    assert code == 2 and "/subscriptions/0/secrets/0" in text and "DVCQG_WEBHOOK_SECRET" in text
    monkeypatch.setenv("DVCQG_WEBHOOK_SECRET", secret)
    code, text = run()
    assert code == 0 and f"+ subscription {push} (create)" in text and secret not in text
    assert stored_secrets(reg, push) == [secret]
    code, text = run()
    assert code == 0 and f"= subscription {push} (unchanged)" in text
