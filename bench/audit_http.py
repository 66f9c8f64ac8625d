"""The same questions over HTTP: `lgsp serve` on the generated data, asked by an auditor.

The hub runs as in production (one worker; its subject key is the bench's, so identifiers hash
to the generated subjects) on the dataset's database: on start it records its own audit events
and signs a checkpoint, which adds a handful of records to the data. Calls go one at a time over
one kept-alive connection; the baseline is `GET /healthz`, the HTTP stack's floor.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

import httpx

from bench import audit_rows, hub
from bench.audit_query import Timing, timed


def _auditor_key(running: hub.Hub) -> str:
    with httpx.Client(base_url=running.url, headers={"X-API-Key": running.admin_key}) as admin:
        name = f"bench-auditor-{secrets.token_hex(3)}"  # the data, and its principals, are kept
        answer = admin.post("/admin/principals", json={"name": name, "role": "auditor"})
        if answer.status_code != 201:
            raise hub.BenchError(f"no auditor key: {answer.status_code} {answer.text[:500]}")
        return str(answer.json()["key"])


def measure(
    url: str, tmp: Path, *, venv: Path, identifiers: list[str], record_ids: list[str]
) -> dict[str, Timing]:
    os.environ["LGSP_SUBJECT_HMAC_KEY"] = audit_rows.SUBJECT_KEY.decode()
    with hub.running(tmp, venv=venv, database_url=url, workers=1) as running:
        key = _auditor_key(running)
        with httpx.Client(base_url=running.url, headers={"X-API-Key": key}, timeout=60) as client:

            def health(_: object) -> int:
                client.get("/healthz").raise_for_status()
                return 1

            def search(identifier: str) -> int:
                answer = client.get(
                    "/audit/exchanges", params={"subject": identifier, "limit": 100}
                )
                answer.raise_for_status()
                return len(answer.json()["items"])

            def proof(record_id: str) -> int:
                answer = client.get("/audit/proofs/inclusion", params={"record": record_id})
                answer.raise_for_status()
                return len(answer.json()["proof"])

            out = {}
            for name, label, items, call in (
                ("health", "GET /healthz", record_ids, health),
                ("search", "GET /audit/exchanges?subject=…&limit=100", identifiers, search),
                ("proof", "GET /audit/proofs/inclusion?record=…", record_ids, proof),
            ):
                for item in items[:20]:  # warm: connection, caches, the worker's imports
                    call(item)
                out[name] = timed(f"{label}, hot", items, call)
    return out
