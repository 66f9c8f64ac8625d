"""Liveness and readiness for operators."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from sqlalchemy import select, text

from audit.models import AuditCheckpoint
from gateway.deps import RuntimeDep
from registry.types import as_utc

router = APIRouter(tags=["operations"])


@router.get("/healthz")
def healthz() -> dict[str, str]:
    """The process is alive."""
    return {"status": "ok"}


@router.get("/readyz", response_model=None)
def readyz(runtime: RuntimeDep) -> dict[str, Any] | JSONResponse:
    """The hub can serve: database reachable, registry loaded."""
    try:
        with runtime.engine.connect() as connection:
            tree = connection.execute(text("SELECT size FROM audit_tree WHERE id = 1")).scalar()
            checkpoints = AuditCheckpoint.__table__  # type: ignore[attr-defined]
            checkpoint = connection.execute(
                select(checkpoints.c.size, checkpoints.c.time)
                .order_by(checkpoints.c.id.desc())
                .limit(1)
            ).first()
    except Exception as exc:
        return JSONResponse(
            {"status": "unavailable", "database": f"unreachable: {type(exc).__name__}"},
            status_code=503,
        )
    halted = runtime.audit_log.halted
    return {
        # Degraded, not unready: answers are still recorded before they leave; only the
        # tree (proofs, checkpoints) waits, and every replica would fail readiness alike.
        "status": "degraded" if halted else "ready",
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
    }
