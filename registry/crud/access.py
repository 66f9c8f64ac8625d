"""Who may touch which registry object: administrators everything, integrators their agency's."""

from __future__ import annotations

from typing import Protocol

from registry.crud.errors import Forbidden
from registry.types import Role


class Caller(Protocol):
    """The calling principal, as the registry needs to see it (gateway.api.deps.Actor fits)."""

    @property
    def name(self) -> str: ...

    @property
    def role(self) -> Role: ...

    @property
    def agency_code(self) -> str | None: ...


def require_admin(caller: Caller, doing: str) -> None:
    if caller.role is not Role.ADMINISTRATOR:
        raise Forbidden(f"{doing} needs the administrator role; the key has {caller.role.value}")


def require_agency(caller: Caller, agency_code: str, what: str) -> None:
    """Refuse unless the caller administers everything or belongs to `agency_code`."""
    if caller.role is Role.ADMINISTRATOR:
        return
    if caller.role is Role.INTEGRATOR and caller.agency_code == agency_code:
        return
    raise Forbidden(
        f"{what} belongs to agency {agency_code}; an integrator of "
        f"{caller.agency_code or 'no agency'} may manage only its own agency's objects"
    )


def agency_scope(caller: Caller) -> str | None:
    """The one agency whose objects the caller sees, or None for all of them."""
    return None if caller.role is Role.ADMINISTRATOR else caller.agency_code or "-"
