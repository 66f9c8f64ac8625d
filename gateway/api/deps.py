"""Shared FastAPI dependencies, as Annotated aliases: settings, session, the calling principal."""

from __future__ import annotations

import base64
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request
from sqlmodel import Session

from gateway.problems import Problem
from gateway.runtime import Runtime
from gateway.settings import Settings
from registry import principals
from registry.types import Role


def get_runtime(request: Request) -> Runtime:
    runtime: Runtime = request.app.state.runtime
    return runtime


RuntimeDep = Annotated[Runtime, Depends(get_runtime)]


def get_settings(runtime: RuntimeDep) -> Settings:
    return runtime.settings


SettingsDep = Annotated[Settings, Depends(get_settings)]


def get_session(runtime: RuntimeDep) -> Iterator[Session]:
    with Session(runtime.engine) as session:
        yield session


SessionDep = Annotated[Session, Depends(get_session)]


@dataclass(frozen=True, slots=True)
class Actor:
    """Who is calling the management or audit API."""

    name: str
    role: Role
    agency_code: str | None

    def may_manage_agency(self, agency_code: str) -> bool:
        return self.role is Role.ADMINISTRATOR or (
            self.role is Role.INTEGRATOR and self.agency_code == agency_code
        )


def _presented_key(request: Request) -> str | None:
    key = request.headers.get("x-api-key")
    if key:
        return key
    auth = request.headers.get("authorization", "")
    if auth[:7].lower() == "bearer ":
        return auth[7:].strip()
    if auth[:6].lower() == "basic ":
        # Schema-registry clients send `user:key` (the user name is not checked).
        try:
            decoded = base64.b64decode(auth[6:].strip(), validate=True).decode()
        except (ValueError, UnicodeDecodeError):
            return None
        return decoded.partition(":")[2] or None
    return None


def get_actor(request: Request, session: SessionDep, settings: SettingsDep) -> Actor:
    presented = _presented_key(request)
    if not presented:
        raise Problem(
            401,
            "unauthenticated",
            "Authentication required",
            "send a management key in the X-API-Key header",
            headers={"WWW-Authenticate": 'ApiKey header="X-API-Key"'},
        )
    principal = principals.authenticate(session, presented=presented, pepper=settings.key_pepper)
    if principal is None:
        raise Problem(
            401,
            "invalid-key",
            "Invalid key",
            "the key is unknown, malformed or revoked",
            headers={"WWW-Authenticate": 'ApiKey header="X-API-Key"'},
        )
    return Actor(name=principal.name, role=principal.role, agency_code=principal.agency_code)


ActorDep = Annotated[Actor, Depends(get_actor)]


def require_roles(*roles: Role) -> Callable[[Actor], Actor]:
    """A dependency admitting only the given roles."""

    def check(actor: ActorDep) -> Actor:
        if actor.role not in roles:
            allowed = ", ".join(r.value for r in roles)
            raise Problem(
                403,
                "forbidden-role",
                "Role not allowed",
                f"this operation needs the role {allowed}; the key has {actor.role.value}",
            )
        return actor

    return check


AdminDep = Annotated[Actor, Depends(require_roles(Role.ADMINISTRATOR))]
ManagerDep = Annotated[Actor, Depends(require_roles(Role.ADMINISTRATOR, Role.INTEGRATOR))]
AuditorDep = Annotated[Actor, Depends(require_roles(Role.AUDITOR))]


def request_id(request: Request) -> str | None:
    rid: str | None = request.scope.get("state", {}).get("request_id")
    return rid


RequestIdDep = Annotated[str | None, Depends(request_id)]


def _writes_registry(request: Request) -> None:
    # Read by the Hub when the answer starts: it reloads this replica's snapshot first.
    request.scope.setdefault("state", {})["writes_registry"] = True


WritesRegistry = Depends(_writes_registry)
"""On a route that changes the registry: its change is live on this replica before the answer
leaves (read-your-writes); other replicas see it within LGSP_REGISTRY_POLL_SECONDS."""
