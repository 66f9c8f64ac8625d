"""Consumers' OAuth2 clients: issued with a secret shown once (stored as a peppered hash, like
API keys) or with the consumer's public keys (private_key_jwt), rotated, revoked by client id."""

from __future__ import annotations

import secrets

from sqlmodel import Session, col, select

from registry import keys
from registry.crud.errors import Conflict, NotFound
from registry.models import (
    PRIVATE_KEY_JWT,
    Consumer,
    OAuthClient,
    OAuthClientCreate,
    OAuthClientIssued,
)
from registry.types import utcnow

CLIENT_ID_PREFIX = "lgspc_"


def _secret(pepper: str) -> tuple[str, str]:
    secret = secrets.token_urlsafe(32)
    return secret, keys.hash_secret(secret, pepper=pepper)


def _issued(row: OAuthClient, secret: str | None) -> OAuthClientIssued:
    return OAuthClientIssued.model_validate({**row.model_dump(), "client_secret": secret})


def issue_client(
    *, session: Session, consumer: Consumer, data: OAuthClientCreate, pepper: str
) -> OAuthClientIssued:
    """A new client for `consumer`; its secret (if any) is in the answer and nowhere else."""
    assert consumer.id is not None
    secret, secret_hash = (None, None)
    if data.token_endpoint_auth_method != PRIVATE_KEY_JWT:
        secret, secret_hash = _secret(pepper)
    row = OAuthClient(
        consumer_id=consumer.id,
        client_id=CLIENT_ID_PREFIX + secrets.token_hex(8),
        label=data.label,
        token_endpoint_auth_method=data.token_endpoint_auth_method,
        secret_hash=secret_hash,
        jwks=data.jwks,
        jwks_uri=data.jwks_uri,
    )
    session.add(row)
    session.flush()
    return _issued(row, secret)


def list_clients(*, session: Session, consumer: Consumer) -> list[OAuthClient]:
    query = (
        select(OAuthClient)
        .where(OAuthClient.consumer_id == consumer.id)
        .order_by(col(OAuthClient.created_at), col(OAuthClient.id))
    )
    return list(session.exec(query))


def _get(session: Session, consumer: Consumer, client_id: str) -> OAuthClient:
    query = select(OAuthClient).where(
        OAuthClient.consumer_id == consumer.id, OAuthClient.client_id == client_id
    )
    row = session.exec(query).first()
    if row is None:
        raise NotFound(f"consumer {consumer.name} has no OAuth2 client {client_id!r}")
    if row.revoked_at is not None:
        raise Conflict(f"client {client_id} is revoked")
    return row


def rotate_client(
    *, session: Session, consumer: Consumer, client_id: str, pepper: str
) -> OAuthClientIssued:
    """A new secret at once (the old one stops working); shown in this answer only."""
    row = _get(session, consumer, client_id)
    if row.secret_hash is None:
        raise Conflict(
            f"client {client_id} authenticates with its own keys (private_key_jwt): the "
            "consumer rotates them at its jwks_uri, or a new client is issued"
        )
    secret, row.secret_hash = _secret(pepper)
    row.rotated_at = utcnow()
    session.add(row)
    session.flush()
    return _issued(row, secret)


def revoke_client(*, session: Session, consumer: Consumer, client_id: str) -> OAuthClient:
    """Revoked at once: no new tokens, and its live tokens are refused on the data plane."""
    row = _get(session, consumer, client_id)
    row.revoked_at = utcnow()
    session.add(row)
    session.flush()
    return row
