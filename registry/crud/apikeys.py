"""Consumers' API keys: issued shown once, stored as a peppered hash, revoked by key id.

A consumer may hold several active keys at once, so keys rotate without downtime.
"""

from __future__ import annotations

from sqlmodel import Session, col, select

from registry import keys
from registry.crud.errors import Conflict, Invalid, NotFound
from registry.models import ApiKey, ApiKeyCreate, ApiKeyIssued, Consumer
from registry.types import utcnow


def issue_api_key(
    *, session: Session, consumer: Consumer, data: ApiKeyCreate, pepper: str
) -> ApiKeyIssued:
    """A new key for `consumer`; the whole key is in the answer and nowhere else."""
    if data.expires_at is not None and data.expires_at <= utcnow():
        raise Invalid.at("/expires_at", "must be in the future")
    assert consumer.id is not None
    issued = keys.issue_key(pepper=pepper)
    row = ApiKey(
        consumer_id=consumer.id,
        key_id=issued.key_id,
        key_hash=issued.key_hash,
        label=data.label,
        expires_at=data.expires_at,
    )
    session.add(row)
    session.flush()
    return ApiKeyIssued.model_validate({**row.model_dump(), "key": issued.key})


def list_api_keys(*, session: Session, consumer: Consumer) -> list[ApiKey]:
    query = (
        select(ApiKey)
        .where(ApiKey.consumer_id == consumer.id)
        .order_by(col(ApiKey.created_at), col(ApiKey.id))
    )
    return list(session.exec(query))


def revoke_api_key(*, session: Session, consumer: Consumer, key_id: str) -> ApiKey:
    query = select(ApiKey).where(ApiKey.consumer_id == consumer.id, ApiKey.key_id == key_id)
    row = session.exec(query).first()
    if row is None:
        raise NotFound(f"consumer {consumer.name} has no key {key_id!r}")
    if row.revoked_at is not None:
        raise Conflict(f"key {key_id} is already revoked")
    row.revoked_at = utcnow()
    session.add(row)
    session.flush()
    return row
