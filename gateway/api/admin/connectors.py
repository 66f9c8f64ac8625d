"""/admin/connectors: administrators, or integrators for their own agency's connectors."""

from __future__ import annotations

from fastapi import APIRouter, Response

from gateway.api.admin.context import AdminRoute, ManagerContext
from gateway.api.deps import WritesRegistry
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
