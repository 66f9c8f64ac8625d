"""Management principals: keys with a role, issued once, revoked rather than deleted."""

from __future__ import annotations

from sqlmodel import Session, col, func, select

from registry import principals
from registry.crud.errors import Conflict, Invalid, NotFound
from registry.models import Agency, Principal, PrincipalCreate, PrincipalIssued
from registry.types import Role


def find_principal(*, session: Session, name: str) -> Principal | None:
    return session.exec(select(Principal).where(Principal.name == name)).first()


def get_principal(*, session: Session, name: str) -> Principal:
    principal = find_principal(session=session, name=name)
    if principal is None:
        raise NotFound.of("principal", name)
    return principal


def list_principals(*, session: Session) -> list[Principal]:
    return list(session.exec(select(Principal).order_by(col(Principal.name))))


def issue_principal(*, session: Session, data: PrincipalCreate, pepper: str) -> PrincipalIssued:
    """A new principal; its key is in the answer only, stored as a peppered hash."""
    if find_principal(session=session, name=data.name) is not None:
        raise Conflict(f"principal {data.name} already exists")
    if data.agency_code is not None and session.get(Agency, data.agency_code) is None:
        raise Invalid.at("/agency_code", f"there is no agency {data.agency_code}")
    principal, key = principals.create_principal(session=session, data=data, pepper=pepper)
    return PrincipalIssued.model_validate({**principal.model_dump(), "key": key})


def revoke_principal(*, session: Session, principal: Principal) -> Principal:
    """Revoke a key, but never the last active administrator's: nobody could manage the hub."""
    if principal.revoked_at is not None:
        raise Conflict(f"principal {principal.name} is already revoked")
    if principal.role is Role.ADMINISTRATOR:
        active = session.exec(
            select(func.count())
            .select_from(Principal)
            .where(Principal.role == Role.ADMINISTRATOR, col(Principal.revoked_at).is_(None))
        ).one()
        if active <= 1:
            raise Conflict(
                f"{principal.name} is the last active administrator; issue another "
                "administrator key before revoking this one"
            )
    return principals.revoke_principal(session=session, principal=principal)
