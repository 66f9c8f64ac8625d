"""Shared FastAPI dependencies, as Annotated aliases: settings, session, the calling principal."""

from __future__ import annotations

import base64
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request, Security
from fastapi.openapi.models import OAuthFlowClientCredentials, OAuthFlows
from fastapi.routing import APIRoute
from fastapi.security import APIKeyHeader, HTTPBasic, HTTPBearer, OAuth2
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


# The ways a key may be sent, declared for the OpenAPI document (so that /docs can send one); the
# key itself is read by `_presented_key`, one way for all three.
MANAGEMENT_KEY = APIKeyHeader(
    name="X-API-Key",
    scheme_name="ManagementKey",
    description="An administrator's, integrator's or auditor's key: lgsp_<id>.<secret>",
    auto_error=False,
)
MANAGEMENT_BEARER = HTTPBearer(
    scheme_name="ManagementBearer",
    description="The same management key, as a bearer token",
    auto_error=False,
)


class _SchemaRegistryBasic(HTTPBasic):
    """Declares HTTP Basic (how Confluent's clients send credentials); reads nothing itself."""

    async def __call__(self, request: Request) -> None:  # type: ignore[override]
        return None


SCHEMA_REGISTRY_BASIC = _SchemaRegistryBasic(
    scheme_name="SchemaRegistryBasic",
    description="For schema-registry clients: any user name, the management key as password",
    auto_error=False,
)
CONSUMER_KEY = APIKeyHeader(
    name="X-API-Key",
    scheme_name="ConsumerKey",
    description="A consumer application's API key (the topic API and the data plane)",
    auto_error=False,
)
CONSUMER_TOKEN = OAuth2(
    flows=OAuthFlows(clientCredentials=OAuthFlowClientCredentials(tokenUrl="/oauth2/token")),
    scheme_name="ConsumerToken",
    description="A consumer application's access token (RFC 9068 JWT from POST /oauth2/token), "
    "sent as Authorization: Bearer; its scope names the service versions it may call",
    auto_error=False,
)


def get_actor(
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    _key: Annotated[str | None, Security(MANAGEMENT_KEY)],
    _bearer: Annotated[object, Security(MANAGEMENT_BEARER)],
    _basic: Annotated[None, Security(SCHEMA_REGISTRY_BASIC)],
) -> Actor:
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


_DECLARED: dict[int, frozenset[str]] = {}


def _declared_query(route: APIRoute) -> frozenset[str]:
    """Every query parameter the route or its dependencies declare (by the name sent)."""
    names = _DECLARED.get(id(route))
    if names is None:
        found: set[str] = set()
        pending = [route.dependant]
        while pending:
            dependant = pending.pop()
            found.update(p.alias for p in dependant.query_params)
            pending.extend(dependant.dependencies)
        names = _DECLARED[id(route)] = frozenset(found)
    return names


def _known_query_only(request: Request) -> None:
    route = request.scope.get("route")
    if not isinstance(route, APIRoute):
        return
    declared = _declared_query(route)
    unknown = [name for name in request.query_params if name not in declared]
    if unknown:
        takes = ", ".join(sorted(declared)) or "no query parameters"
        raise Problem(
            422,
            "validation-error",
            "Invalid input",
            f"unknown query parameter {', '.join(sorted(set(unknown)))} (this endpoint takes: "
            f"{takes})",
            errors=[
                {"pointer": f"/query/{name}", "message": f"unknown parameter; known: {takes}"}
                for name in sorted(set(unknown))
            ],
        )


KnownQueryOnly = Depends(_known_query_only)
"""On a router: a query parameter the route does not declare is a 422 naming it, not ignored
(a misspelt filter must not silently widen a search)."""
