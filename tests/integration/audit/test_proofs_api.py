"""The integrity API over HTTP: keys, signed checkpoints, inclusion and consistency proofs.

An auditor checks what the hub answers with nothing but the RFC 9162 and C2SP rules: the record
as /audit/exchanges shows it hashes to the proven leaf, the proof leads to the signed root, and
the signature is by a key /audit/keys lists.
"""

from __future__ import annotations

import base64
from collections.abc import Callable
from typing import Any

import httpx

from audit import merkle
from audit.canonical import leaf_hash
from audit.notes import Checkpoint, Verifier, open_note
from tests.integration.conftest import APPROVE, World, auditor_key
from tests.wait import wait_until

ROUTE = {"method": "GET", "path": "/cong-dan/{id}", "upstream_path": "/citizen/{id}"}


def _b64(value: str) -> bytes:
    return base64.b64decode(value)


def _checkpoint(auditor: httpx.Client, size: int) -> dict[str, Any] | None:
    """The latest signed checkpoint, if it covers at least `size` records."""
    answer = auditor.get("/audit/checkpoints/latest")
    if answer.status_code == 200 and answer.json()["size"] >= size:
        checkpoint: dict[str, Any] = answer.json()
        return checkpoint
    return None


def _world(make_world: Callable[..., World], upstream: str) -> World:
    return make_world(
        base_url=upstream, routes=[ROUTE], grant={}, decision=APPROVE,
        personal_data=False, subject_pointer="/path/id",
    )  # fmt: skip


def test_a_record_is_proven_in_a_signed_checkpoint(hub, make_world, upstream):
    world = _world(make_world, upstream)
    assert world.call("GET", "/cong-dan/012090001234").status_code == 200
    with hub.client(auditor_key(hub)) as auditor:
        [record] = auditor.get("/audit/exchanges", params={"service": world.service}).json()[
            "items"
        ]
        keys = auditor.get("/audit/keys").json()["keys"]
        assert keys and all(k["vkey"].startswith(f"{k['name']}+{k['key_id']}+") for k in keys)
        verifiers = [Verifier.from_vkey(k["vkey"]) for k in keys]

        def proven() -> dict[str, Any] | None:
            answer = auditor.get("/audit/proofs/inclusion", params={"record": record["id"]})
            if answer.status_code == 200:
                found: dict[str, Any] = answer.json()
                return found
            # Until a checkpoint covers it: 409 with a problem saying to retry.
            assert answer.status_code == 409, answer.text
            assert answer.headers["content-type"] == "application/problem+json"
            return None

        proof = wait_until(
            proven, timeout=20, interval=0.3, what="an inclusion proof of the record"
        )

        body, signed_by = open_note(proof["checkpoint"]["note"], verifiers)
        checkpoint = Checkpoint.parse(body)
        assert signed_by and checkpoint.size == proof["tree_size"]
        assert checkpoint.root == _b64(proof["checkpoint"]["root"])
        # The record as the auditors' API shows it is what the leaf commits to.
        assert leaf_hash(record) == _b64(proof["leaf_hash"])
        assert merkle.verify_inclusion(
            leaf_hash(record),
            proof["leaf_index"],
            checkpoint.size,
            [_b64(p) for p in proof["proof"]],
            checkpoint.root,
        )
        # The note alone, for tools that speak C2SP.
        note = auditor.get("/audit/checkpoints/latest", headers={"Accept": "text/plain"})
        assert note.headers["content-type"].startswith("text/plain")
        assert open_note(note.text, verifiers)[1]


def test_consistency_between_two_checkpoints(hub, make_world, upstream):
    world = _world(make_world, upstream)
    with hub.client(auditor_key(hub)) as auditor:
        world.call("GET", "/cong-dan/012090001111")
        first = wait_until(
            lambda: _checkpoint(auditor, 1),
            timeout=20,
            interval=0.2,
            what="a signed checkpoint of at least 1 record",
        )
        world.call("GET", "/cong-dan/012090002222")
        second = wait_until(
            lambda: _checkpoint(auditor, first["size"] + 1),
            timeout=20,
            interval=0.2,
            what=f"a signed checkpoint of more than {first['size']} records",
        )
        by_size = auditor.get("/audit/checkpoints", params={"size": first["size"]}).json()
        assert by_size["items"][0]["root"] == first["root"]
        answer = auditor.get(
            "/audit/proofs/consistency", params={"from": first["size"], "to": second["size"]}
        )
        assert answer.status_code == 200, answer.text
        proof = answer.json()
        assert (proof["root_from"], proof["root_to"]) == (first["root"], second["root"])
        assert merkle.verify_consistency(
            first["size"],
            second["size"],
            _b64(first["root"]),
            _b64(second["root"]),
            [_b64(p) for p in proof["proof"]],
        )
        page = auditor.get("/audit/checkpoints", params={"limit": 2}).json()
        sizes = [c["size"] for c in page["items"]]
        assert sizes == sorted(sizes, reverse=True) and page["next_cursor"]


def test_bad_questions_get_problems_not_errors(hub):
    with hub.client(auditor_key(hub)) as auditor:
        for path, params, status in (
            ("/audit/proofs/inclusion", {"record": "no-such-record"}, 404),
            ("/audit/proofs/inclusion", {}, 422),
            ("/audit/proofs/consistency", {"from": 5, "to": 2}, 422),
            ("/audit/proofs/consistency", {"from": 1, "to": 10**12}, 422),
            ("/audit/proofs/consistency", {"from": "x", "to": 2}, 422),
            ("/audit/checkpoints", {"size": 10**12}, 404),
            ("/audit/checkpoints", {"cursor": "zz"}, 422),
        ):
            answer = auditor.get(path, params=params)
            assert answer.status_code == status, (path, params, answer.text)
            assert answer.headers["content-type"] == "application/problem+json"
            assert answer.json()["detail"]
    with hub.admin() as admin:
        assert admin.get("/audit/checkpoints/latest").status_code == 403
    with hub.client() as anonymous:
        assert anonymous.get("/audit/keys").status_code == 401


def test_readiness_shows_how_far_the_signed_log_follows_the_tree(hub, make_world, upstream):
    world = _world(make_world, upstream)
    world.call("GET", "/cong-dan/012090003333")
    with hub.client(auditor_key(hub)) as auditor:
        latest = wait_until(
            lambda: _checkpoint(auditor, 1),
            timeout=20,
            interval=0.2,
            what="a signed checkpoint of at least 1 record",
        )
    with hub.client() as anyone:
        audit = anyone.get("/readyz").json()["audit"]
    assert audit["checkpoint_size"] >= latest["size"] and audit["tree_size"] >= latest["size"]
    assert audit["checkpoint_time"].endswith("Z") or audit["checkpoint_time"].endswith("+00:00")
