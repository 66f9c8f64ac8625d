"""/admin/principals: management keys, issued and revoked by administrators."""

from __future__ import annotations

from fastapi import APIRouter

from gateway.api.admin.context import AdminContext, AdminRoute
from gateway.api.deps import SettingsDep, WritesRegistry
from registry import revision
from registry.crud import principals as crud
from registry.models import PrincipalCreate, PrincipalIssued, PrincipalPublic

router = APIRouter(prefix="/principals", tags=["principals"], route_class=AdminRoute)


@router.post("", response_model=PrincipalIssued, status_code=201, dependencies=[WritesRegistry])
def create_principal(
    ctx: AdminContext, settings: SettingsDep, data: PrincipalCreate
) -> PrincipalIssued:
    """Issue a management key with a role; the key is shown in this answer only."""
    issued = crud.issue_principal(session=ctx.session, data=data, pepper=settings.key_pepper)
    details = {k: [None, v] for k, v in data.model_dump(mode="json").items() if v is not None}
    ctx.record("create", "principal", issued.name, {**details, "key_id": [None, issued.key_id]})
    ctx.commit()
    return issued


@router.get("", response_model=list[PrincipalPublic])
def list_principals(ctx: AdminContext) -> list[PrincipalPublic]:
    """All principals, revoked ones included."""
    return [PrincipalPublic.model_validate(p) for p in crud.list_principals(session=ctx.session)]


@router.delete("/{name}", response_model=PrincipalPublic, dependencies=[WritesRegistry])
def revoke_principal(ctx: AdminContext, name: str) -> PrincipalPublic:
    """Revoke a principal's key (never the last active administrator's)."""
    revision.bump(ctx.session)  # takes the registry lock first: two revocations never race
    principal = crud.get_principal(session=ctx.session, name=name)
    crud.revoke_principal(session=ctx.session, principal=principal)
    ctx.record("revoke", "principal", name, {"revoked": [False, True]})
    ctx.commit()
    return PrincipalPublic.model_validate(principal)
