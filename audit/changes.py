"""Registry changes as audit records: who changed what, written in the change's transaction."""

from __future__ import annotations

from typing import Any

from sqlmodel import Session

from audit.records import ExchangeRecord, RecordKind

SECRET_FIELDS = frozenset({"secret", "key", "key_hash", "password", "client_secret", "api_key"})


def scrub(details: Any) -> Any:
    """Drop secret-bearing fields at any depth: secrets are never recorded."""
    if isinstance(details, dict):
        return {k: ("***" if k in SECRET_FIELDS else scrub(v)) for k, v in details.items()}
    if isinstance(details, list):
        return [scrub(v) for v in details]
    return details


def record_change(
    session: Session,
    *,
    actor: str,
    action: str,
    object_type: str,
    object_key: str,
    details: dict[str, Any] | None = None,
    request_id: str | None = None,
) -> ExchangeRecord:
    """Add a registry-change record to the session; it commits with the change itself.

    A change to a topic or a subscription also fills that column, so auditors find operators'
    actions (pause, replay, redeliver) beside the deliveries they affected.
    """
    record = ExchangeRecord(
        topic=object_key if object_type == "topic" else None,
        subscription=object_key if object_type == "subscription" else None,
        kind=RecordKind.REGISTRY_CHANGE,
        actor=actor,
        action=action,
        object_type=object_type,
        object_key=object_key,
        details=scrub(details) if details is not None else None,
        request_id=request_id,
    )
    session.add(record)
    return record
