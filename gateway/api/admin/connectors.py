"""/admin/connectors: administrators, or integrators for their own agency's connectors."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Response

from connectors.http_connector import HttpConnector
from gateway.api.admin.context import AdminRoute, ManagerContext
from gateway.api.deps import RuntimeDep, WritesRegistry
from registry.crud import access
from registry.crud import connectors as crud
from registry.models import ConnectorCreate, ConnectorPublic, ConnectorUpdate

router = APIRouter(prefix="/connectors", tags=["connectors"], route_class=AdminRoute)


@router.post("", response_model=ConnectorPublic, status_code=201, dependencies=[WritesRegistry])
def create_connector(ctx: ManagerContext, data: ConnectorCreate) -> ConnectorPublic:
    """Register how the hub reaches a provider system; `auth.secret` is write-only."""
    access.require_agency(ctx.actor, data.agency_code, f"connector {data.name}")
    connector, changes = crud.create_connector(session=ctx.session, data=data)
    ctx.record("create", "connector", connector.name, changes)
    ctx.commit()
    return connector.to_public()


@router.get("", response_model=list[ConnectorPublic])
def list_connectors(ctx: ManagerContext) -> list[ConnectorPublic]:
    """Connectors the caller may manage, by name."""
    scope = access.agency_scope(ctx.actor)
    return [c.to_public() for c in crud.list_connectors(session=ctx.session, agency_code=scope)]


@router.get("/{name}", response_model=ConnectorPublic)
def get_connector(ctx: ManagerContext, name: str) -> ConnectorPublic:
    """One connector, without its secret (`auth.secret_set` says whether one is stored)."""
    connector = crud.get_connector(session=ctx.session, name=name)
    access.require_agency(ctx.actor, connector.agency_code, f"connector {name}")
    return connector.to_public()


@router.get("/{name}/health")
def connector_health(ctx: ManagerContext, runtime: RuntimeDep, name: str) -> dict[str, Any]:
    """The provider's health as this hub process sees it: active checks and circuit breaker."""
    connector = crud.get_connector(session=ctx.session, name=name)
    access.require_agency(ctx.actor, connector.agency_code, f"connector {name}")
    report = runtime.health.report(name)
    live = runtime.connectors().get(name)
    breaker = None
    if isinstance(live, HttpConnector):
        state = live.breaker.snapshot()
        breaker = {
            "state": state.state.value,
            "recent_failures": state.recent_failures,
            "opened": state.opened,
            "retry_after": state.retry_after,
        }
    return {
        "connector": name,
        "checked": report is not None,  # false: no health_path, or not loaded here yet
        "state": report["state"] if report else "unknown",
        "since": report["since"] if report else None,
        "last_error": report["last_error"] if report else None,
        "urls": report["urls"] if report else [],
        "history": report["history"] if report else [],
        "breaker": breaker,
    }


@router.patch("/{name}", response_model=ConnectorPublic, dependencies=[WritesRegistry])
def update_connector(ctx: ManagerContext, name: str, data: ConnectorUpdate) -> ConnectorPublic:
    """Change a connector; a given `auth` replaces the whole block, no `auth` keeps it."""
    connector = crud.get_connector(session=ctx.session, name=name)
    access.require_agency(ctx.actor, connector.agency_code, f"connector {name}")
    changes = crud.update_connector(session=ctx.session, connector=connector, data=data)
    if changes:
        ctx.record("update", "connector", name, changes)
        ctx.commit()
    return connector.to_public()


@router.delete("/{name}", status_code=204, response_class=Response, dependencies=[WritesRegistry])
def delete_connector(ctx: ManagerContext, name: str) -> Response:
    """Delete a connector no service uses any more."""
    connector = crud.get_connector(session=ctx.session, name=name)
    access.require_agency(ctx.actor, connector.agency_code, f"connector {name}")
    crud.delete_connector(session=ctx.session, connector=connector)
    ctx.record("delete", "connector", name, {})
    ctx.commit()
    return Response(status_code=204)
