"""Liveness and readiness for operators."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from sqlalchemy import select, text

from audit.models import AuditCheckpoint
from connectors.http_connector import HttpConnector
from gateway.api.deps import RuntimeDep
from gateway.runtime import Runtime
from messaging.set_aside import listing
from registry.types import as_utc

router = APIRouter(tags=["operations"])


@router.get("/healthz")
def healthz() -> dict[str, str]:
    """The process is alive."""
    return {"status": "ok"}


@router.get("/readyz", response_model=None)
def readyz(runtime: RuntimeDep) -> dict[str, Any] | JSONResponse:
    """The hub can serve: database reachable, registry loaded. A stopped audit tree, or messaging
    set aside or failing, leaves it serving (200) with `status` "degraded" and why. Providers'
    health is shown under `connectors` and never makes the hub unready or degraded."""
    try:
        with runtime.engine.connect() as connection:
            tree = connection.execute(text("SELECT size FROM audit_tree WHERE id = 1")).scalar()
            checkpoints = AuditCheckpoint.__table__  # type: ignore[attr-defined]
            checkpoint = connection.execute(
                select(checkpoints.c.size, checkpoints.c.time)
                .order_by(checkpoints.c.id.desc())
                .limit(1)
            ).first()
        set_aside = listing(runtime.engine)
    except Exception as exc:
        return JSONResponse(
            {"status": "unavailable", "database": f"unreachable: {type(exc).__name__}"},
            status_code=503,
        )
    halted = runtime.audit_log.halted
    messaging = _messaging(runtime, set_aside)
    return {
        # Degraded, not unready: answers are still recorded before they leave; only the tree
        # (proofs, checkpoints) or some topics wait, and every replica would fail readiness alike.
        "status": "degraded" if halted or messaging["status"] == "degraded" else "ready",
        "registry_revision": runtime.snapshot.revision,
        "services": len(runtime.snapshot.services),
        "unavailable": {f"{n}/{v}": why for (n, v), why in runtime.snapshot.unavailable.items()},
        "audit": {
            "batches": runtime.writer.batches,
            "records": runtime.writer.records,
            # An operator alerts when the signed size stops following the tree's.
            "tree_size": tree,
            "checkpoint_size": checkpoint.size if checkpoint else None,
            "checkpoint_time": as_utc(checkpoint.time) if checkpoint else None,
            "integration_stopped": halted,  # why the tree stopped growing, if it did
        },
        "messaging": messaging,
        # A provider that is down is its connector's problem, not this replica's: taking the hub
        # out of the load balancer would stop every other service too, and no restart cures it.
        "connectors": _connectors(runtime),
    }


def _connectors(runtime: Runtime) -> dict[str, dict[str, Any]]:
    """Each connector's health as this process checks it (`checked` false: no health_path)
    and its circuit breaker here (connectors/health.py, connectors/breaker.py)."""
    checked = runtime.health.summary()
    out: dict[str, dict[str, Any]] = {}
    for name, connector in sorted(runtime.connectors().items()):
        health = checked.get(name)
        breaker = connector.breaker.state.value if isinstance(connector, HttpConnector) else None
        out[name] = {
            "checked": health is not None,
            "state": health["state"] if health else "unknown",
            "since": health["since"] if health else None,
            "last_error": health["last_error"] if health else None,
            "breaker": breaker,
        }
    return out


def _messaging(runtime: Runtime, set_aside: list[dict[str, Any]]) -> dict[str, Any]:
    """The relay (counters of this process; `here`: whether it runs here) and what is set aside
    after a terminal broker error (every replica reads the same rows)."""
    relay = runtime.relay
    topics: list[dict[str, Any]] = []
    subscriptions: list[dict[str, Any]] = []
    for item in set_aside:
        kind, name = item.pop("kind"), item.pop("name")
        (topics if kind == "topic" else subscriptions).append({kind: name, **item})
    degraded = bool(set_aside) or relay.failing_since is not None
    return {
        "status": "degraded" if degraded else "ok",
        "relay": {
            "here": relay.leading,
            "relayed": relay.relayed,
            "failures": relay.failures,
            "failing_since": relay.failing_since,
            "last_failure": relay.last_failure,
        },
        # Their messages wait in the outbox, nothing is lost; tried again with backoff and on
        # every registry change.
        "set_aside_topics": topics,
        "set_aside_subscriptions": subscriptions,
    }
