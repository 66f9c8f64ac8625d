"""/admin/services: a connector's services, managed by its agency's integrators and admins."""

from __future__ import annotations

from fastapi import APIRouter, Query, Response

from gateway.api.admin.context import AdminRoute, ManagerContext
from gateway.api.deps import SettingsDep, WritesRegistry
from gateway.catalog.lifecycle import guard_retirement, retiring
from registry.crud import access
from registry.crud import services as crud
from registry.models import ServiceCreate, ServicePublic, ServiceUpdate
from registry.types import ServiceStatus

router = APIRouter(prefix="/services", tags=["services"], route_class=AdminRoute)


@router.post("", response_model=ServicePublic, status_code=201, dependencies=[WritesRegistry])
def create_service(ctx: ManagerContext, data: ServiceCreate) -> ServicePublic:
    """Publish a service on a connector; its agency is the connector's."""
    connector = crud.connector_for(ctx.session, data)
    access.require_agency(ctx.actor, connector.agency_code, f"connector {connector.name}")
    service, changes = crud.create_service(session=ctx.session, data=data)
    ctx.record("create", "service", crud.key(service), changes)
    ctx.commit()
    return ServicePublic.model_validate(service)


@router.get("", response_model=list[ServicePublic])
def list_services(
    ctx: ManagerContext, status: ServiceStatus | None = None, name: str | None = None
) -> list[ServicePublic]:
    """Services the caller may manage, optionally by status or name."""
    found = crud.list_services(
        session=ctx.session, status=status, name=name, agency_code=access.agency_scope(ctx.actor)
    )
    return [ServicePublic.model_validate(s) for s in found]


@router.get("/{name}/{version}", response_model=ServicePublic)
def get_service(ctx: ManagerContext, name: str, version: str) -> ServicePublic:
    """One version of a service."""
    service = crud.get_service(session=ctx.session, name=name, version=version)
    access.require_agency(ctx.actor, service.agency_code, f"service {crud.key(service)}")
    return ServicePublic.model_validate(service)


@router.patch("/{name}/{version}", response_model=ServicePublic, dependencies=[WritesRegistry])
def update_service(
    ctx: ManagerContext,
    settings: SettingsDep,
    name: str,
    version: str,
    data: ServiceUpdate,
    force: bool = Query(
        default=False,
        description="Retire the version even though consumers called it recently",
    ),
) -> ServicePublic:
    """Change a service, or move it along its lifecycle with `status` (retiring a version
    called in the last LGSP_RETIREMENT_GUARD_DAYS days needs `force=true`)."""
    service = crud.get_service(session=ctx.session, name=name, version=version)
    what = f"service {crud.key(service)}"
    access.require_agency(ctx.actor, service.agency_code, what)
    forced = None
    if retiring(data.status, service.status):
        forced = guard_retirement(
            ctx.session, name=name, version=version, days=settings.retirement_guard_days,
            force=force,
        )  # fmt: skip
    changes = crud.update_service(session=ctx.session, service=service, data=data)
    access.require_agency(ctx.actor, service.agency_code, what)  # a new connector's agency
    if changes and forced:
        changes["forced_retirement"] = {"callers": [c.consumer for c in forced]}
    if changes:
        ctx.record("update", "service", crud.key(service), changes)
        ctx.commit()
    return ServicePublic.model_validate(service)


@router.delete(
    "/{name}/{version}", status_code=204, response_class=Response, dependencies=[WritesRegistry]
)
def delete_service(ctx: ManagerContext, name: str, version: str) -> Response:
    """Delete a draft or retired service version."""
    service = crud.get_service(session=ctx.session, name=name, version=version)
    access.require_agency(ctx.actor, service.agency_code, f"service {crud.key(service)}")
    crud.delete_service(session=ctx.session, service=service)
    ctx.record("delete", "service", f"{name}/{version}", {})
    ctx.commit()
    return Response(status_code=204)
