"""`lgsp demo`'s three asynchronous flows end to end: the printed tour's commands set each off,
the receiving simulators show what arrived, and the hub's audit log shows how."""

from __future__ import annotations

import json
import os
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from starlette.testclient import TestClient

from gateway.demo import DEMO_SECRETS, MANIFEST, MANIFEST_PORT_BASE, SIMULATORS
from simulators import citizens, runner
from tests.integration.simulators.fakes import signed_headers
from tests.integration.test_demo import _commands, running_demo
from tests.kafka import running_broker
from tests.wait import wait_until

UBND, STP = "000.00.12.H12", "000.00.15.H12"
FLOW_TIMEOUT = 30.0  # publish -> relay -> broker -> delivery, on a loaded test machine


def values_of(document: Any, key: str) -> Iterator[Any]:
    """Every value of `key` anywhere in a JSON document."""
    if isinstance(document, dict):
        for name, value in document.items():
            if name == key:
                yield value
            yield from values_of(value, key)
    elif isinstance(document, list):
        for item in document:
            yield from values_of(item, key)


@pytest.fixture
def demo(
    tmp_path: Path, request: pytest.FixtureRequest
) -> Iterator[tuple[str, dict[str, str], list[str], dict[str, str]]]:
    """The running demo: (hub URL, simulator URLs, the tour's curl commands, its exports).

    On its embedded broker by default; parametrized with "kafka", on a real Kafka-protocol
    broker (tansu), through the same LGSP_* settings an operator would set.
    """
    backend = getattr(request, "param", "database")
    env = dict(os.environ)
    if backend == "kafka":
        broker = request.getfixturevalue("kafka_bootstrap")
        env |= {"LGSP_BROKER": "kafka", "LGSP_KAFKA_BOOTSTRAP": broker}
    names = ("population", "dossier", "civil-status", "portal", "documents")
    with running_demo(tmp_path / "demo", env) as running:
        env_vars, commands = _commands(running.tour)
        curls = [c for _, c in commands if c.startswith("curl")]
        sims = {name: f"http://127.0.0.1:{running.sim_base + i}" for i, name in enumerate(names)}
        yield running.hub_url, sims, curls, env_vars


@pytest.fixture(scope="module")
def kafka_bootstrap() -> Iterator[str]:
    with running_broker() as broker:
        yield broker.bootstrap


@pytest.mark.slow
@pytest.mark.parametrize("demo", ["database", "kafka"], indirect=True)
def test_the_three_flows_run_end_to_end(
    demo: tuple[str, dict[str, str], list[str], dict[str, str]],
) -> None:
    hub, sims, curls, env = demo
    run_env = {**os.environ, **env}

    def run(command: str) -> Any:
        done = subprocess.run(
            ["bash", "-c", command], env=run_env, capture_output=True, text=True, timeout=60
        )
        assert done.returncode == 0, (command, done.stderr)
        return json.loads(done.stdout)

    def one(*parts: str, method: str = "GET") -> str:
        """The tour's one command with `method` that contains every part."""
        verb = [c for c in curls if (f"-X {method}" in c if method != "GET" else "-X " not in c)]
        [command] = [c for c in verb if all(p in c for p in parts)]
        return command

    http = httpx.Client(timeout=10)
    auditor = {"X-API-Key": env["AUDITOR_KEY"]}

    def audit(**query: str) -> list[dict[str, Any]]:
        answer = http.get(f"{hub}/audit/exchanges", params=query, headers=auditor)
        assert answer.status_code == 200, answer.text
        items: list[dict[str, Any]] = answer.json()["items"]
        return items

    # 1. dossier.status: the dossier system -> the hub -> the national portal (push) ----------
    dossier = run(curls[0])  # the tour's first command: a dossier, verified through the hub
    code = dossier["MaHoSo"]
    changed = run(one(f"/api/ho-so/{code}/trang-thai", method="PUT"))
    assert changed["TrangThaiHoSo"] == 4

    wait_until(
        lambda: (
            [
                c["TrangThaiHoSo"]
                for c in http.get(f"{sims['portal']}/_sim/ho-so/{code}").json().get("LichSu", [])
            ]
            == [2, 4]
        ),
        timeout=FLOW_TIMEOUT,
        interval=0.2,
        what="the portal to hold the dossier's statuses 2 and 4",
    )
    published = run(one(f"{sims['dossier']}/_sim/published"))
    assert [p["state"] for p in published] == ["accepted", "accepted"]
    message_ids = [p["message_id"] for p in published]
    portal_view = run(one(f"{sims['portal']}/_sim/ho-so/{code}"))
    # The webhook-id of each push is the hub's message id.
    assert [c["webhook_id"] for c in portal_view["LichSu"]] == message_ids
    pushes = run(one(f"{sims['portal']}/_sim/webhooks"))
    assert {(p["topic"], p["subscription"]) for p in pushes} == {
        ("dossier.status", "dvcqg-trang-thai-ho-so")
    }
    assert {p["outcome"] for p in pushes} <= {"applied", "duplicate"}

    trail = audit(message_id=message_ids[1])
    assert {r["kind"] for r in trail} >= {"publish", "delivery"}, trail
    deliveries = [r for r in trail if r["kind"] == "delivery"]
    assert {(r["topic"], r["subscription"]) for r in deliveries} == {
        ("dossier.status", "dvcqg-trang-thai-ho-so")
    }

    # 2. civil.birth-registered: -> population database (push) and dossier system (group) ----
    applied = run(one("/api/ho-so", "Đăng ký khai sinh cho con", method="POST"))
    assert applied["TrangThaiHoSo"] == 2  # the mother was verified through the hub
    registered = run(one("/api/khai-sinh", "Authorization: Bearer", method="POST"))
    child = registered["so_dinh_danh"]
    lookup = one("/cong-dan/tra-cuu", method="POST")
    assert child in lookup  # the tour named the number before it was assigned

    wait_until(
        lambda: [
            b
            for b in run(one(f"{sims['population']}/_sim/khai-sinh"))
            if b["so_dinh_danh"] == child
        ],
        timeout=FLOW_TIMEOUT,
        interval=0.2,
        what="the population database to record the newborn",
    )
    [read] = wait_until(
        lambda: run(one(f"{sims['dossier']}/_sim/khai-sinh")),
        timeout=FLOW_TIMEOUT,
        interval=0.2,
        what="the dossier system's group reader to get the registration",
    )
    assert read["so_dang_ky"] == registered["so_dang_ky"]
    assert read["attached_to"] == [applied["MaHoSo"]]
    wait_until(
        lambda: (
            [
                c["TrangThaiHoSo"]
                for c in http.get(f"{sims['portal']}/_sim/ho-so/{applied['MaHoSo']}")
                .json()
                .get("LichSu", [])
            ]
            == [2, 9]
        ),
        timeout=FLOW_TIMEOUT,
        interval=0.2,
        what="the completed birth dossier (9) to reach the portal",
    )
    found = run(lookup)
    assert found["cong_dan"]["so_dinh_danh"] == child
    # The reader commits after handling what it read (at least once): lag 0 follows shortly.
    wait_until(
        lambda: (
            (
                lags := list(
                    values_of(run(one("/admin/subscriptions/mot-cua-khai-sinh/positions")), "lag")
                )
            )
            and all(lag == 0 for lag in lags)
        ),
        timeout=FLOW_TIMEOUT,
        interval=0.2,
        what="the group reader to commit its position (lag 0)",
    )
    published_birth = audit(message_id=read["message_id"])
    assert "publish" in {r["kind"] for r in published_birth}, published_birth

    # 3. edxml.documents and edxml.status, between two agencies' document systems ------------
    sent = run(one(f"/api/{UBND}/van-ban-di", method="POST"))
    doc_id = sent["DocumentId"]

    def statuses_seen_by_the_sender() -> list[str]:
        mine = run(one(f"{sims['documents']}/api/{UBND}/van-ban-di"))["items"]
        [document] = [d for d in mine if d["DocumentId"] == doc_id]
        return [s["StatusCode"] for s in document["TrangThai"].get(STP, [])]

    wait_until(
        lambda: statuses_seen_by_the_sender() == ["01", "03"],
        timeout=FLOW_TIMEOUT,
        interval=0.2,
        what="statuses 01 and 03 back at the sender",
    )
    [incoming] = run(one(f"/api/{STP}/van-ban-den"))["items"]
    assert incoming["DocumentId"] == doc_id
    assert incoming["SoDen"] == 1
    done = run(one(f"/api/{STP}/van-ban-den/1/trang-thai", method="POST"))
    assert done["TrangThai"]["StatusCode"] == "06"
    wait_until(
        lambda: statuses_seen_by_the_sender() == ["01", "03", "06"],
        timeout=FLOW_TIMEOUT,
        interval=0.2,
        what="status 06 back at the sender",
    )

    def stp_status_lags() -> list[int | None]:
        answer = http.get(
            f"{hub}/admin/subscriptions/qlvb-stp-trang-thai/positions",
            headers={"X-API-Key": env["LGSP_KEY"]},
        )
        assert answer.status_code == 200, answer.text
        return [p["lag"] for p in answer.json()["partitions"]]

    # The status subscriptions filter on the document's sender: once STP's own has read past
    # every status (its stored positions at the log's end), it got none of them.
    wait_until(
        lambda: all(lag == 0 for lag in stp_status_lags()),
        timeout=FLOW_TIMEOUT,
        interval=0.2,
        what="STP's status subscription to read past every status (lag 0)",
    )
    log = http.get(f"{sims['documents']}/_sim/webhooks").json()
    endpoints = {(e["endpoint"], e["outcome"]) for e in log}
    assert (f"/webhooks/{STP}/van-ban", "applied") in endpoints
    assert (f"/webhooks/{UBND}/trang-thai", "applied") in endpoints
    assert not [e for e in log if e["endpoint"] == f"/webhooks/{STP}/trang-thai"]

    # Every other command of the tour answers JSON, and none of them a problem.
    for command in curls[9:]:  # after the consumer's (tests/integration/test_demo.py)
        if "-X " in command:
            continue  # the flows' triggers, run above
        if re.search(r"/audit/(keys|checkpoints|proofs)", command):
            continue  # the audit log's proofs: tests/integration/test_demo.py
        answer = run(command)  # every one answers JSON
        assert not (isinstance(answer, dict) and answer.get("status", 0) >= 400), (command, answer)
    last_trail = run(one("audit/exchanges?message_id="))["items"]
    assert {"publish", "delivery"} <= {r["kind"] for r in last_trail}
    http.close()


def test_the_tour_names_the_birth_dossier_applicant_as_a_known_citizen() -> None:
    """The birth flow needs a mother the population database knows (checked without a hub)."""
    from gateway.demo import _messaging_tour

    urls = {n: f"http://sim-{n}" for n in ("population", "dossier", "civil-status", "portal")}
    tour = _messaging_tour("http://hub", {**urls, "documents": "http://sim-documents"}, citizens)
    numbers = {c.so_dinh_danh for c in citizens.citizens()}
    assert '"me_so_dinh_danh": "' in tour
    mother = tour.split('"me_so_dinh_danh": "')[1][:12]
    assert mother in numbers


@pytest.mark.parametrize(
    "subscription",
    [
        s["name"]
        for s in yaml.safe_load(MANIFEST.read_text("utf-8"))["subscriptions"]
        if s["delivery"] == "push"
    ],
)
def test_each_push_subscription_reaches_a_simulator_that_knows_its_secret(
    subscription: str,
) -> None:
    """The manifest's connector, path and secret agree with the simulator on that port."""
    manifest = yaml.safe_load(MANIFEST.read_text("utf-8"))
    [push] = [s for s in manifest["subscriptions"] if s["name"] == subscription]
    [connector] = [c for c in manifest["connectors"] if c["name"] == push["connector"]]
    url = httpx.URL(connector["base_url"] + push["path"])
    simulator = SIMULATORS[(url.port or 0) - MANIFEST_PORT_BASE]
    [secret] = [DEMO_SECRETS[s["env"]] for s in push["secrets"]]
    body = json.dumps({"not": "a message of the topic"})
    with TestClient(runner.build(simulator)) as client:
        forged = client.post(url.path, content=body, headers=signed_headers("whsec_QUJD", body))
        signed = client.post(url.path, content=body, headers=signed_headers(secret, body))
    assert forged.status_code == 401, forged.text  # the endpoint exists and checks signatures
    assert signed.status_code in (200, 422), signed.text  # and the demo's secret is its own
