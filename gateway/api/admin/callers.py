"""/admin/services/{name}[/{version}]/callers: who still calls a service, from the audit log."""

from __future__ import annotations

from datetime import datetime, timedelta

from fastapi import APIRouter, Query
from pydantic import BaseModel

from audit import queries
from gateway.api.admin.context import AdminRoute, ManagerContext
from registry.crud import access
from registry.crud import services as crud
from registry.crud.errors import NotFound
from registry.types import utcnow

router = APIRouter(prefix="/services", tags=["services"], route_class=AdminRoute)

MAX_DAYS = 3660


class CallerPublic(BaseModel):
    consumer: str
    version: str
    calls: int
    refusals: int  # answered 4xx by the hub itself, before any provider was asked
    first_call: datetime
    last_call: datetime


class CallersPublic(BaseModel):
    service: str
    version: str | None  # None: every version
    days: int
    since: datetime
    callers: list[CallerPublic]


Days = Query(default=30, ge=1, le=MAX_DAYS, description="The window, in days up to now")


def _callers(ctx: ManagerContext, name: str, version: str | None, days: int) -> CallersPublic:
    if version is not None:
        found = [crud.get_service(session=ctx.session, name=name, version=version)]
    else:
        found = crud.list_services(session=ctx.session, name=name)
        if not found:
            raise NotFound.of("service", name)
    agencies = {s.agency_code for s in found}
    for agency in sorted(agencies):
        access.require_agency(ctx.actor, agency, f"service {name}")
    since = utcnow() - timedelta(days=days)
    versions = [s.version for s in found]  # the registry's: a deleted version is not listed
    rows = queries.callers(ctx.session, service=name, versions=versions, since=since)
    return CallersPublic(
        service=name,
        version=version,
        days=days,
        since=since,
        callers=[CallerPublic.model_validate(r, from_attributes=True) for r in rows],
    )


@router.get("/{name}/callers", response_model=CallersPublic)
def service_callers(ctx: ManagerContext, name: str, days: int = Days) -> CallersPublic:
    """Per consumer and version: calls, refusals, first and last call over the last `days`."""
    return _callers(ctx, name, None, days)


@router.get("/{name}/{version}/callers", response_model=CallersPublic)
def version_callers(
    ctx: ManagerContext, name: str, version: str, days: int = Days
) -> CallersPublic:
    """Per consumer: calls, refusals, first and last call to this version over the last `days`."""
    return _callers(ctx, name, version, days)
