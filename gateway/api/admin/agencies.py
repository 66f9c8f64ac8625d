"""/admin/agencies: administrators write, every manager reads."""

from __future__ import annotations

from fastapi import APIRouter, Response

from gateway.api.admin.context import AdminContext, AdminRoute, ManagerContext
from gateway.api.deps import WritesRegistry
from registry.crud import agencies as crud
from registry.models import AgencyCreate, AgencyPublic, AgencyUpdate

router = APIRouter(prefix="/agencies", tags=["agencies"], route_class=AdminRoute)


@router.post("", response_model=AgencyPublic, status_code=201, dependencies=[WritesRegistry])
def create_agency(ctx: AdminContext, data: AgencyCreate) -> AgencyPublic:
    """Register an agency (cơ quan) by its agency code."""
    agency, changes = crud.create_agency(session=ctx.session, data=data)
    ctx.record("create", "agency", agency.code, changes)
    ctx.commit()
    return AgencyPublic.model_validate(agency)


@router.get("", response_model=list[AgencyPublic])
def list_agencies(ctx: ManagerContext) -> list[AgencyPublic]:
    """All agencies, by code."""
    return [AgencyPublic.model_validate(a) for a in crud.list_agencies(session=ctx.session)]


@router.get("/{code}", response_model=AgencyPublic)
def get_agency(ctx: ManagerContext, code: str) -> AgencyPublic:
    """One agency."""
    return AgencyPublic.model_validate(crud.get_agency(session=ctx.session, code=code))


@router.patch("/{code}", response_model=AgencyPublic, dependencies=[WritesRegistry])
def update_agency(ctx: AdminContext, code: str, data: AgencyUpdate) -> AgencyPublic:
    """Change an agency's name or description."""
    agency = crud.get_agency(session=ctx.session, code=code)
    changes = crud.update_agency(session=ctx.session, agency=agency, data=data)
    if changes:
        ctx.record("update", "agency", code, changes)
        ctx.commit()
    return AgencyPublic.model_validate(agency)


@router.delete("/{code}", status_code=204, response_class=Response, dependencies=[WritesRegistry])
def delete_agency(ctx: AdminContext, code: str) -> Response:
    """Delete an agency that no longer owns anything."""
    agency = crud.get_agency(session=ctx.session, code=code)
    crud.delete_agency(session=ctx.session, agency=agency)
    ctx.record("delete", "agency", code, {})
    ctx.commit()
    return Response(status_code=204)
