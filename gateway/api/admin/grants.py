"""/admin/grants: integrators request for their agency's consumers; administrators decide."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Response

from gateway.api.admin.context import AdminContext, AdminRoute, Context, ManagerContext
from gateway.api.deps import WritesRegistry
from registry.crud import access
from registry.crud import grants as crud
from registry.crud.consumers import find_consumer
from registry.crud.errors import Forbidden
from registry.crud.services import list_services
from registry.models import Grant, GrantCreate, GrantDecision, GrantPublic, GrantUpdate
from registry.types import GrantStatus, Role

router = APIRouter(prefix="/grants", tags=["grants"], route_class=AdminRoute)

GrantId = Annotated[int, Path(ge=1, le=2**31 - 1)]


def _guard(ctx: Context, grant: Grant, *, write: bool) -> None:
    """Integrators act on the grants of their agency's consumers, and see those on its services."""
    if ctx.actor.role is Role.ADMINISTRATOR:
        return
    consumer = find_consumer(session=ctx.session, name=grant.consumer)
    if consumer is not None and consumer.agency_code == ctx.actor.agency_code:
        return
    if not write and list_services(
        session=ctx.session, name=grant.service, agency_code=ctx.actor.agency_code
    ):
        return
    raise Forbidden(
        f"grant {grant.id} is for consumer {grant.consumer} of another agency; an integrator "
        "may manage only its own agency's grants"
    )


def _public(ctx: Context, grant: Grant) -> GrantPublic:
    [shown] = crud.public(session=ctx.session, grants=[grant])
    return shown


@router.post("", response_model=GrantPublic, status_code=201, dependencies=[WritesRegistry])
def request_grant(ctx: ManagerContext, data: GrantCreate) -> GrantPublic:
    """Request a sharing agreement for a consumer on a service (status `requested`)."""
    consumer = crud.grant_consumer(ctx.session, data.consumer)
    access.require_agency(ctx.actor, consumer.agency_code, f"consumer {consumer.name}")
    grant, changes = crud.create_grant(session=ctx.session, data=data, requested_by=ctx.actor.name)
    ctx.record("create", "grant", crud.key(grant), changes)
    ctx.commit()
    return _public(ctx, grant)


@router.get("", response_model=list[GrantPublic])
def list_grants(
    ctx: ManagerContext,
    consumer: str | None = None,
    service: str | None = None,
    status: GrantStatus | None = None,
) -> list[GrantPublic]:
    """Grants the caller may see, optionally by consumer, service or status."""
    found = crud.list_grants(
        session=ctx.session,
        consumer=consumer,
        service=service,
        status=status,
        agency_code=access.agency_scope(ctx.actor),
    )
    return crud.public(session=ctx.session, grants=found)


@router.get("/{grant_id}", response_model=GrantPublic)
def get_grant(ctx: ManagerContext, grant_id: GrantId) -> GrantPublic:
    """One grant with its decision and the history of its decisions."""
    grant = crud.get_grant(session=ctx.session, grant_id=grant_id)
    _guard(ctx, grant, write=False)
    return _public(ctx, grant)


@router.patch("/{grant_id}", response_model=GrantPublic, dependencies=[WritesRegistry])
def update_grant(ctx: ManagerContext, grant_id: GrantId, data: GrantUpdate) -> GrantPublic:
    """Change a grant's terms; a decided grant goes back to `requested`."""
    grant = crud.get_grant(session=ctx.session, grant_id=grant_id)
    _guard(ctx, grant, write=True)
    changes = crud.update_grant(
        session=ctx.session, grant=grant, data=data, changed_by=ctx.actor.name
    )
    if changes:
        ctx.record("update", "grant", crud.key(grant), changes)
        ctx.commit()
    return _public(ctx, grant)


@router.delete(
    "/{grant_id}", status_code=204, response_class=Response, dependencies=[WritesRegistry]
)
def delete_grant(ctx: ManagerContext, grant_id: GrantId) -> Response:
    """End a sharing agreement."""
    grant = crud.get_grant(session=ctx.session, grant_id=grant_id)
    _guard(ctx, grant, write=True)
    crud.delete_grant(session=ctx.session, grant=grant)
    ctx.record("delete", "grant", crud.key(grant), {})
    ctx.commit()
    return Response(status_code=204)


@router.post("/{grant_id}/decision", response_model=GrantPublic, dependencies=[WritesRegistry])
def decide_grant(ctx: AdminContext, grant_id: GrantId, data: GrantDecision) -> GrantPublic:
    """Approve, or refuse with a reason and its legal basis (administrators only)."""
    grant = crud.get_grant(session=ctx.session, grant_id=grant_id)
    changes = crud.decide_grant(
        session=ctx.session, grant=grant, decision=data, decided_by=ctx.actor.name
    )
    action = "approve" if data.decision == "approve" else "refuse"
    ctx.record(action, "grant", crud.key(grant), changes)
    ctx.commit()
    return _public(ctx, grant)
