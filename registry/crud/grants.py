"""Grants (sharing agreements): requested, then approved or refused by an administrator.

One grant per consumer and service. Changing the terms of a decided grant sends it back to
`requested`: an approval covers the terms it was given for, not later ones.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import ValidationError, model_validator
from sqlmodel import Session, col, select

from registry.crud.access import Caller
from registry.crud.consumers import find_consumer
from registry.crud.diff import created, diff
from registry.crud.errors import Conflict, Forbidden, Invalid, NotFound
from registry.models import (
    Consumer,
    Grant,
    GrantCreate,
    GrantDecision,
    GrantDecisionPublic,
    GrantDecisionRow,
    GrantPublic,
    GrantUpdate,
    Service,
)
from registry.types import GrantStatus, Role, Text, as_utc, utcnow

TERMS = (
    "versions",
    "purposes",
    "fields",
    "valid_from",
    "valid_until",
    "description",
    "rate_limit",
    "quota",
)
DECISION = ("status", "reason", "legal_basis")


class GrantSpec(GrantCreate):
    """A grant as a manifest states it: its terms and, optionally, the decision on them."""

    status: GrantStatus | None = None  # absent: requested, or as decided if the terms hold
    reason: Text | None = None
    legal_basis: Text | None = None

    @model_validator(mode="after")
    def _refusal_is_reasoned(self) -> GrantSpec:
        if self.status is GrantStatus.REFUSED and not (
            self.reason and self.reason.strip() and self.legal_basis and self.legal_basis.strip()
        ):
            raise ValueError("a refused grant must carry a reason and a legal basis")
        return self

    def terms(self) -> GrantCreate:
        return GrantCreate.model_validate(self.model_dump(include={"consumer", "service", *TERMS}))


def key(grant: Grant | GrantCreate) -> str:
    return f"{grant.consumer}/{grant.service}"


def spec(grant: Grant) -> dict[str, Any]:
    """The grant as a manifest writes it."""
    data = grant.model_dump(include={"consumer", "service", *TERMS, *DECISION})
    return GrantSpec.model_validate(data).model_dump(mode="json")


def _terms(data: dict[str, Any]) -> dict[str, Any]:
    return {k: data.get(k) for k in TERMS}


def find_grant(*, session: Session, consumer: str, service: str) -> Grant | None:
    query = select(Grant).where(Grant.consumer == consumer, Grant.service == service)
    return session.exec(query).first()


def get_grant(*, session: Session, grant_id: int) -> Grant:
    grant = session.get(Grant, grant_id)
    if grant is None:
        raise NotFound(f"there is no grant {grant_id}")
    return grant


def list_grants(
    *,
    session: Session,
    consumer: str | None = None,
    service: str | None = None,
    status: GrantStatus | None = None,
    agency_code: str | None = None,
) -> list[Grant]:
    query = select(Grant).order_by(col(Grant.id))
    if consumer is not None:
        query = query.where(Grant.consumer == consumer)
    if service is not None:
        query = query.where(Grant.service == service)
    if status is not None:
        query = query.where(Grant.status == status)
    if agency_code is not None:
        ours = select(Consumer.name).where(Consumer.agency_code == agency_code)
        theirs = select(Service.name).where(Service.agency_code == agency_code)
        query = query.where(col(Grant.consumer).in_(ours) | col(Grant.service).in_(theirs))
    return list(session.exec(query))


def grant_consumer(session: Session, name: str) -> Consumer:
    consumer = find_consumer(session=session, name=name)
    if consumer is None:
        raise Invalid.at("/consumer", f"there is no consumer {name}")
    return consumer


def create_grant(
    *, session: Session, data: GrantCreate, requested_by: str
) -> tuple[Grant, dict[str, Any]]:
    grant_consumer(session, data.consumer)
    if session.exec(select(Service.id).where(Service.name == data.service)).first() is None:
        raise Invalid.at("/service", f"there is no service {data.service}")
    existing = find_grant(session=session, consumer=data.consumer, service=data.service)
    if existing is not None:
        raise Conflict(
            f"consumer {data.consumer} already has grant {existing.id} on service "
            f"{data.service}; change its terms instead"
        )
    fields = data.model_dump(exclude={"valid_from", "valid_until"})
    grant = Grant(
        **fields,
        valid_from=as_utc(data.valid_from),
        valid_until=as_utc(data.valid_until),
        requested_by=requested_by,
    )
    session.add(grant)
    session.flush()
    return grant, created({**data.model_dump(mode="json"), "status": "requested"})


def _add_history(
    session: Session,
    grant: Grant,
    *,
    by: str,
    at: datetime,
    reason: str | None = None,
    legal_basis: str | None = None,
) -> None:
    """A decision on `grant` (its status now) in its history."""
    assert grant.id is not None  # flushed: created before any decision
    session.add(
        GrantDecisionRow(
            grant_id=grant.id,
            status=grant.status,
            reason=reason,
            legal_basis=legal_basis,
            decided_by=by,
            decided_at=at,
        )
    )


HISTORY_CHUNK = 500  # grant ids per query (SQLite's bound-parameter limit is far above)


def history(*, session: Session, grant_ids: list[int]) -> dict[int, list[GrantDecisionPublic]]:
    """Each grant's decisions, oldest first."""
    found: dict[int, list[GrantDecisionPublic]] = {i: [] for i in grant_ids}
    if not grant_ids:
        return found
    for start in range(0, len(grant_ids), HISTORY_CHUNK):
        chunk = grant_ids[start : start + HISTORY_CHUNK]
        rows = session.exec(
            select(GrantDecisionRow)
            .where(col(GrantDecisionRow.grant_id).in_(chunk))
            .order_by(col(GrantDecisionRow.id))
        )
        for row in rows:
            found[row.grant_id].append(GrantDecisionPublic.model_validate(row))
    return found


def public(*, session: Session, grants: list[Grant]) -> list[GrantPublic]:
    """Grants as the API shows them: the terms, the latest decision and every earlier one."""
    decisions = history(session=session, grant_ids=[g.id for g in grants if g.id is not None])
    return [
        GrantPublic.model_validate(g, update={"history": decisions.get(g.id or 0, [])})
        for g in grants
    ]


def set_terms(
    *, session: Session, grant: Grant, data: GrantCreate, changed_by: str
) -> dict[str, Any]:
    """Give `grant` these terms; a decided grant whose terms change goes back to `requested`
    (kept in its history: the earlier decision covered the earlier terms)."""
    old = spec(grant)
    new = data.model_dump(mode="json")
    changes = diff(_terms(old), _terms(new))
    if not changes:
        return changes
    for name in TERMS:
        setattr(grant, name, getattr(data, name))
    # Kept as JSON: the terms as they were stated (burst absent stays absent).
    rate, quota = data.rate_limit, data.quota
    grant.rate_limit = rate.model_dump(exclude_unset=True) if rate is not None else None
    grant.quota = quota.model_dump() if quota is not None else None
    grant.valid_from = as_utc(data.valid_from)
    grant.valid_until = as_utc(data.valid_until)
    if grant.status is not GrantStatus.REQUESTED:
        why = f"terms changed: {', '.join(sorted(changes))}"
        changes["status"] = [grant.status.value, GrantStatus.REQUESTED.value]
        _reopen(session, grant, by=changed_by, why=why)
    session.add(grant)
    session.flush()
    return changes


def _reopen(session: Session, grant: Grant, *, by: str, why: str) -> None:
    grant.status = GrantStatus.REQUESTED
    grant.decided_by = grant.decided_at = grant.reason = grant.legal_basis = None
    _add_history(session, grant, by=by, at=utcnow(), reason=why)


def update_grant(
    *, session: Session, grant: Grant, data: GrantUpdate, changed_by: str
) -> dict[str, Any]:
    merged = {**spec(grant), **data.model_dump(exclude_unset=True)}
    try:
        full = GrantCreate.model_validate({k: merged[k] for k in ("consumer", "service", *TERMS)})
    except ValidationError as exc:
        raise Invalid.from_validation(exc) from None
    return set_terms(session=session, grant=grant, data=full, changed_by=changed_by)


def decide_grant(
    *, session: Session, grant: Grant, decision: GrantDecision, decided_by: str
) -> dict[str, Any]:
    """Approve or refuse; the decision, its author and time are recorded on the grant and added
    to its history (an earlier refusal keeps its reason and legal basis there)."""
    before = _decision(grant)
    approve = decision.decision == "approve"
    grant.status = GrantStatus.APPROVED if approve else GrantStatus.REFUSED
    grant.reason = decision.reason
    grant.legal_basis = decision.legal_basis
    grant.decided_by = decided_by
    grant.decided_at = now = utcnow()
    session.add(grant)
    _add_history(
        session,
        grant,
        by=decided_by,
        at=now,
        reason=decision.reason,
        legal_basis=decision.legal_basis,
    )
    session.flush()
    return diff(before, _decision(grant))


def _decision(grant: Grant) -> dict[str, Any]:
    return {"status": grant.status.value, "reason": grant.reason, "legal_basis": grant.legal_basis}


def settle(*, session: Session, grant: Grant, spec: GrantSpec, caller: Caller) -> dict[str, Any]:
    """Bring the grant's decision to the one `spec` states (no status: leave it as it is)."""
    if spec.status is None:
        return {}
    before = _decision(grant)
    requested = spec.status is GrantStatus.REQUESTED
    target = {
        "status": spec.status.value,
        "reason": None if requested else spec.reason,
        "legal_basis": None if requested else spec.legal_basis,
    }
    if target == before:
        return {}
    if requested:
        _reopen(session, grant, by=caller.name, why="set to requested by a manifest")
        session.add(grant)
        session.flush()
    else:
        if caller.role is not Role.ADMINISTRATOR:
            message = f"only an administrator may set a grant's status to {spec.status.value}"
            raise Forbidden(message, errors=[{"pointer": "/status", "message": message}])
        decision = GrantDecision(
            decision="approve" if spec.status is GrantStatus.APPROVED else "refuse",
            reason=spec.reason,
            legal_basis=spec.legal_basis,
        )
        decide_grant(session=session, grant=grant, decision=decision, decided_by=caller.name)
    return diff(before, _decision(grant))


def delete_grant(*, session: Session, grant: Grant) -> None:
    session.delete(grant)
    session.flush()
