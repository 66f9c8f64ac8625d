"""Liveness and readiness for operators."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from sqlalchemy import text

from gateway.deps import RuntimeDep

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
            connection.execute(text("SELECT 1"))
    except Exception as exc:
        return JSONResponse(
            {"status": "unavailable", "database": f"unreachable: {type(exc).__name__}"},
            status_code=503,
        )
    return {
        "status": "ready",
        "registry_revision": runtime.snapshot.revision,
        "services": len(runtime.snapshot.services),
        "unavailable": {f"{n}/{v}": why for (n, v), why in runtime.snapshot.unavailable.items()},
        "audit": {"batches": runtime.writer.batches, "records": runtime.writer.records},
    }
