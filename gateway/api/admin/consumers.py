"""/admin/consumers, their API keys and OAuth2 clients: administrators write; integrators read
their agency's."""

from __future__ import annotations

from fastapi import APIRouter, Response

from gateway.api.admin.context import AdminContext, AdminRoute, ManagerContext
from gateway.api.deps import SettingsDep, WritesRegistry
from registry.crud import access, apikeys, oauth_clients
from registry.crud import consumers as crud
from registry.models import (
    ApiKeyCreate,
    ApiKeyIssued,
    ApiKeyPublic,
    ConsumerCreate,
    ConsumerPublic,
    ConsumerUpdate,
    OAuthClientCreate,
    OAuthClientIssued,
    OAuthClientPublic,
)

router = APIRouter(prefix="/consumers", tags=["consumers"], route_class=AdminRoute)


@router.post("", response_model=ConsumerPublic, status_code=201, dependencies=[WritesRegistry])
def create_consumer(ctx: AdminContext, data: ConsumerCreate) -> ConsumerPublic:
    """Register an application of an agency that calls shared services."""
    consumer, changes = crud.create_consumer(session=ctx.session, data=data)
    ctx.record("create", "consumer", consumer.name, changes)
    ctx.commit()
    return ConsumerPublic.model_validate(consumer)


@router.get("", response_model=list[ConsumerPublic])
def list_consumers(ctx: ManagerContext) -> list[ConsumerPublic]:
    """Consumers the caller may see, by name."""
    found = crud.list_consumers(session=ctx.session, agency_code=access.agency_scope(ctx.actor))
    return [ConsumerPublic.model_validate(c) for c in found]


@router.get("/{name}", response_model=ConsumerPublic)
def get_consumer(ctx: ManagerContext, name: str) -> ConsumerPublic:
    """One consumer."""
    consumer = crud.get_consumer(session=ctx.session, name=name)
    access.require_agency(ctx.actor, consumer.agency_code, f"consumer {name}")
    return ConsumerPublic.model_validate(consumer)


@router.patch("/{name}", response_model=ConsumerPublic, dependencies=[WritesRegistry])
def update_consumer(ctx: AdminContext, name: str, data: ConsumerUpdate) -> ConsumerPublic:
    """Change a consumer's title, description, or whether it is active."""
    consumer = crud.get_consumer(session=ctx.session, name=name)
    changes = crud.update_consumer(session=ctx.session, consumer=consumer, data=data)
    if changes:
        ctx.record("update", "consumer", name, changes)
        ctx.commit()
    return ConsumerPublic.model_validate(consumer)


@router.delete("/{name}", status_code=204, response_class=Response, dependencies=[WritesRegistry])
def delete_consumer(ctx: AdminContext, name: str) -> Response:
    """Delete a consumer without grants, and its keys."""
    consumer = crud.get_consumer(session=ctx.session, name=name)
    crud.delete_consumer(session=ctx.session, consumer=consumer)
    ctx.record("delete", "consumer", name, {})
    ctx.commit()
    return Response(status_code=204)


@router.post(
    "/{name}/keys", response_model=ApiKeyIssued, status_code=201, dependencies=[WritesRegistry]
)
def issue_key(
    ctx: AdminContext, settings: SettingsDep, name: str, data: ApiKeyCreate
) -> ApiKeyIssued:
    """Issue an API key; the whole key is shown in this answer only."""
    consumer = crud.get_consumer(session=ctx.session, name=name)
    issued = apikeys.issue_api_key(
        session=ctx.session, consumer=consumer, data=data, pepper=settings.key_pepper
    )
    details = {"key_id": [None, issued.key_id], "label": [None, issued.label]}
    ctx.record("issue_key", "consumer", name, details)
    ctx.commit()
    return issued


@router.get("/{name}/keys", response_model=list[ApiKeyPublic])
def list_keys(ctx: AdminContext, name: str) -> list[ApiKeyPublic]:
    """A consumer's keys (ids and dates, never the keys or their hashes)."""
    consumer = crud.get_consumer(session=ctx.session, name=name)
    found = apikeys.list_api_keys(session=ctx.session, consumer=consumer)
    return [ApiKeyPublic.model_validate(k) for k in found]


@router.delete("/{name}/keys/{key_id}", response_model=ApiKeyPublic, dependencies=[WritesRegistry])
def revoke_key(ctx: AdminContext, name: str, key_id: str) -> ApiKeyPublic:
    """Revoke one key at once; the consumer's other keys keep working."""
    consumer = crud.get_consumer(session=ctx.session, name=name)
    row = apikeys.revoke_api_key(session=ctx.session, consumer=consumer, key_id=key_id)
    ctx.record("revoke_key", "consumer", name, {"key_id": [key_id, None]})
    ctx.commit()
    return ApiKeyPublic.model_validate(row)


@router.post(
    "/{name}/oauth-clients",
    response_model=OAuthClientIssued,
    status_code=201,
    dependencies=[WritesRegistry],
)
def issue_client(
    ctx: AdminContext, settings: SettingsDep, name: str, data: OAuthClientCreate
) -> OAuthClientIssued:
    """Issue an OAuth2 client (client credentials); its secret is shown in this answer only."""
    consumer = crud.get_consumer(session=ctx.session, name=name)
    issued = oauth_clients.issue_client(
        session=ctx.session, consumer=consumer, data=data, pepper=settings.key_pepper
    )
    details = {
        "client_id": [None, issued.client_id],
        "token_endpoint_auth_method": [None, issued.token_endpoint_auth_method],
    }
    ctx.record("issue_oauth_client", "consumer", name, details)
    ctx.commit()
    return issued


@router.get("/{name}/oauth-clients", response_model=list[OAuthClientPublic])
def list_clients(ctx: AdminContext, name: str) -> list[OAuthClientPublic]:
    """A consumer's OAuth2 clients (ids, methods and dates, never secrets or their hashes)."""
    consumer = crud.get_consumer(session=ctx.session, name=name)
    found = oauth_clients.list_clients(session=ctx.session, consumer=consumer)
    return [OAuthClientPublic.model_validate(c, from_attributes=True) for c in found]


@router.post(
    "/{name}/oauth-clients/{client_id}/rotate",
    response_model=OAuthClientIssued,
    dependencies=[WritesRegistry],
)
def rotate_client(
    ctx: AdminContext, settings: SettingsDep, name: str, client_id: str
) -> OAuthClientIssued:
    """Give a client a new secret (the old one stops working); shown in this answer only."""
    consumer = crud.get_consumer(session=ctx.session, name=name)
    issued = oauth_clients.rotate_client(
        session=ctx.session, consumer=consumer, client_id=client_id, pepper=settings.key_pepper
    )
    ctx.record("rotate_oauth_client", "consumer", name, {"client_id": [client_id, client_id]})
    ctx.commit()
    return issued


@router.delete(
    "/{name}/oauth-clients/{client_id}",
    response_model=OAuthClientPublic,
    dependencies=[WritesRegistry],
)
def revoke_client(ctx: AdminContext, name: str, client_id: str) -> OAuthClientPublic:
    """Revoke a client at once: no new tokens, and its tokens are refused from now on."""
    consumer = crud.get_consumer(session=ctx.session, name=name)
    row = oauth_clients.revoke_client(session=ctx.session, consumer=consumer, client_id=client_id)
    ctx.record("revoke_oauth_client", "consumer", name, {"client_id": [client_id, None]})
    ctx.commit()
    return OAuthClientPublic.model_validate(row, from_attributes=True)
